"""The suite's Paddle training and evaluation against PyTorch + HuggingFace transformers, same data, not run in CI.

    CLUE_DATA_DIR=../shared/clue_data .venv/bin/python benchmarks/bench_vs_pytorch.py [--repeats 3]

PyTorch lives in its own environment (never in requirements.txt), named by --torch_python
(default /work/venv-torch/bin/python). To make it:

    python3 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /work/venv-torch/bin/pip install transformers numpy

(where that index is out of reach, `pip install torch` from PyPI: larger, it brings the CUDA
libraries along; on a machine that keeps a CPU wheel in its pip find-links folder,
`pip install "torch==2.13.0+cpu"` takes that one.)

Two BERT sizes over the bert-base-chinese vocabulary (21128 tokens, max position 512, 15 TNEWS
labels): tiny (2 layers, hidden 64, 2 heads, intermediate 128) and small (4 layers, hidden 312,
12 heads, intermediate 1200). Real TNEWS dev text is tokenised once with the suite's pipeline
(classification.load_split + encode, max_seq_length 128). Training batches of 32 follow the
order of the suite's sampler (training.shuffled_batches, epoch 0) over the first steps x 32 dev
examples; evaluation batches are the length-sorted ones of runner.forward_sorted over the last
--eval_examples dev examples. Every batch is padded to its longest by the suite's collate
(DataCollatorWithPadding) and saved to one .npz that both sides read, so both compute on the
very same arrays. Both start from the same weights: the Paddle model (random, paddle.seed(0)) is
converted to HuggingFace names (Linear weights transposed); the loss of the first batch with
dropout off and the evaluation logits before training are compared between the two.

Paddle, each model in a fresh process: training.build_optimizer (AdamW, linear warmup 10% then
decay, global-norm clipping 1.0; the classifier script's defaults: lr 1e-4, eps 1e-6, no weight
decay) and training.train_loop(..., seed=42) with training.cross_entropy_loss over a BatchLoader
yielding the saved batches; evaluation is runner.forward_sorted(model, lengths, 32, collate)
with collate handing out the saved batch of those indices.
PyTorch, each model in a fresh process: transformers.BertForSequenceClassification (hidden and
attention dropout 0.1, the library's default attention implementation), torch.optim.AdamW with
the same parameter groups and get_linear_schedule_with_warmup, clip_grad_norm_(1.0), the same
batches (attention mask = input_ids != pad, which Paddle's BERT derives itself), evaluation under
torch.no_grad(); torch.set_num_threads(OMP_NUM_THREADS), the thread count cluebench gives Paddle.

Each side: one warm-up run, then the best of --repeats (training restarts from the initial
weights each time); evaluation likewise (its warm-up is the comparison before training). With the
defaults (100 tiny steps, 15 small, 2000 evaluation examples) it is sized for about 5 minutes on
a quiet 2-core machine (a busy one took 12); each process's time goes to stderr. Peak RSS is each process's own. Both sides use
OMP_NUM_THREADS threads (cluebench sets it to the core count unless it is set already), so
`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_vs_pytorch.py` compares one thread each.
A shared machine's speed wanders by 10-40% from minute to minute: --rounds 5 runs the Paddle and the
PyTorch child in turn five times, prints each side's median and every round's ratio.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from bench_models import BENCH_LABELS as LABEL, BENCH_MODELS as CONFIGS

BATCH, MAX_SEQ, NUM_LABELS = 32, 128, 15
# The classifier script's defaults (classification/run_clue_classifier.py).
HYPER = dict(
    learning_rate=1e-4, warmup_steps=0, warmup_proportion=0.1, weight_decay=0.0, adam_epsilon=1e-6, max_grad_norm=1.0
)
BATCH_KEYS = ("input_ids", "token_type_ids", "labels")


def peak_rss_mib():
    """This process's own peak RSS (VmHWM; ru_maxrss would carry the parent's peak over fork and exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def no_decay(name):
    """Parameters AdamW leaves undecayed on both sides (the suite's rule: bias and norm parameters)."""
    return any(k in name.lower() for k in ("bias", "norm"))


def paddle_to_hf(state):
    """A PaddleNLP BertForSequenceClassification state dict (numpy) under HuggingFace's names.

    Paddle's Linear keeps its weight as [in, out], torch's as [out, in]."""
    renames = [
        ("bert.embeddings.layer_norm.", "bert.embeddings.LayerNorm."),
        (".self_attn.q_proj.", ".attention.self.query."),
        (".self_attn.k_proj.", ".attention.self.key."),
        (".self_attn.v_proj.", ".attention.self.value."),
        (".self_attn.out_proj.", ".attention.output.dense."),
        (".norm1.", ".attention.output.LayerNorm."),
        (".linear1.", ".intermediate.dense."),
        (".linear2.", ".output.dense."),
        (".norm2.", ".output.LayerNorm."),
        ("bert.encoder.layers.", "bert.encoder.layer."),
    ]
    out = {}
    for name, value in state.items():
        hf = name
        for old, new in renames:
            hf = hf.replace(old, new)
        if value.ndim == 2 and "embeddings" not in name:
            value = value.T
        out[hf] = value.copy()
    return out


# --------------------------------------------------------------------------------------------- parent
def prepare(opts, work):
    """Tokenise TNEWS dev once; per model: initial weights (Paddle folder + HF npz) and the batches npz."""
    import cluebench  # noqa: F401  before paddle
    from cluebench.tasks import classification as clue
    from cluebench.train import loop as training

    import numpy as np
    import paddle
    import paddlenlp
    from paddlenlp.data import DataCollatorWithPadding
    from paddlenlp.transformers import AutoModelForSequenceClassification, BertConfig, BertModel, BertTokenizer

    data = os.environ["CLUE_DATA_DIR"]
    tokenizer = BertTokenizer(os.path.join(data, "vocab", "bert-base-chinese-vocab.txt"))
    dev, _ = clue.load_split("tnews", "dev", data)
    longest = max(opts.steps.values()) * BATCH
    if longest + opts.eval_examples > len(dev):
        sys.exit(f"--steps x {BATCH} + --eval_examples exceeds the {len(dev)} TNEWS dev examples")
    features = clue.encode(tokenizer, dev[:longest] + dev[-opts.eval_examples :], MAX_SEQ)  # tokenised once
    train_features, eval_features = features[:longest], features[longest:]
    collate = DataCollatorWithPadding(tokenizer, return_tensors="np")  # the suite's collate

    eval_lengths = np.array([len(f["input_ids"]) for f in eval_features])
    eval_batches = {}
    for i, index in enumerate(training.length_sorted_batches(eval_lengths, BATCH)):  # forward_sorted's batches
        batch = collate([eval_features[j] for j in index])
        eval_batches.update(
            {
                f"eval{i}_index": np.asarray(index),
                f"eval{i}_input_ids": batch["input_ids"],
                f"eval{i}_token_type_ids": batch["token_type_ids"],
            }
        )
    eval_labels = np.array([f["labels"] for f in eval_features])

    info = {
        "versions": {"paddle": paddle.__version__, "paddlenlp": paddlenlp.__version__},
        "pad_token_id": tokenizer.pad_token_id,
        "vocab_size": len(tokenizer.vocab),
    }
    for name in opts.models:
        steps = opts.steps[name]
        loader = training.shuffled_batches(steps * BATCH, BATCH, None)  # the suite's sampler
        loader.batch_sampler.set_epoch(0)  # the order train_loop's first epoch draws
        arrays = {}
        for i, indices in enumerate(loader.batch_sampler):
            batch = collate([train_features[j] for j in indices])
            arrays.update({f"train{i}_{k}": batch[k] for k in BATCH_KEYS})
        arrays.update(
            eval_batches,
            eval_lengths=eval_lengths,
            eval_labels=eval_labels,
            steps=np.array(steps),
            eval_n=np.array(len(eval_batches) // 3),
        )
        np.savez(os.path.join(work, f"{name}_batches.npz"), **arrays)

        paddle.seed(0)
        folder = os.path.join(work, f"{name}_paddle")
        with tempfile.TemporaryDirectory() as base:
            BertModel(
                BertConfig(vocab_size=len(tokenizer.vocab), max_position_embeddings=512, **CONFIGS[name])
            ).save_pretrained(base)
            model = AutoModelForSequenceClassification.from_pretrained(base, num_classes=NUM_LABELS)
        model.save_pretrained(folder)
        state = {k: v.numpy() for k, v in model.state_dict().items()}
        np.savez(os.path.join(work, f"{name}_hf_weights.npz"), **paddle_to_hf(state))
        c = model.config
        eps = {layer._epsilon for layer in model.sublayers() if isinstance(layer, paddle.nn.LayerNorm)}
        assert len(eps) == 1, eps
        hf_config = dict(
            vocab_size=c.vocab_size,
            hidden_size=c.hidden_size,
            num_hidden_layers=c.num_hidden_layers,
            num_attention_heads=c.num_attention_heads,
            intermediate_size=c.intermediate_size,
            hidden_act=c.hidden_act,
            hidden_dropout_prob=c.hidden_dropout_prob,
            attention_probs_dropout_prob=c.attention_probs_dropout_prob,
            max_position_embeddings=c.max_position_embeddings,
            type_vocab_size=c.type_vocab_size,
            layer_norm_eps=eps.pop(),
            pad_token_id=c.pad_token_id,
            num_labels=NUM_LABELS,
        )
        with open(os.path.join(work, f"{name}_hf_config.json"), "w") as f:
            json.dump(hf_config, f)
        info[name] = {
            "params_m": sum(v.size for v in state.values()) / 1e6,
            "steps": steps,
            "train_tokens_padded": int(sum(arrays[f"train{i}_input_ids"].size for i in range(steps))),
        }
    return info


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def median_result(results):
    """One child's result with each speed replaced by its median over rounds (the losses are the same in all)."""
    speeds = ("train_steps_s", "train_ex_s", "eval_ex_s", "peak_rss_mib")
    return dict(results[0], **{key: statistics.median(r[key] for r in results) for key in speeds})


def run_child(cmd, what):
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{what} failed:\n{proc.stderr[-3000:]}")
    print(f"{what}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=("prepare", "paddle", "paddle-eager", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument(
        "--torch_python",
        default="/work/venv-torch/bin/python",
        help="python of an environment with torch, transformers and numpy",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="Paddle then PyTorch this many times, taking turns: medians and each round's ratio",
    )
    parser.add_argument("--tiny_steps", type=int, default=100)
    parser.add_argument("--small_steps", type=int, default=15)
    parser.add_argument("--eval_examples", type=int, default=2000)
    parser.add_argument("--models", default="tiny,small", help="comma-separated: tiny, small")
    opts = parser.parse_args()
    opts.models = [m for m in opts.models.split(",") if m]
    if not set(opts.models) <= set(CONFIGS):
        sys.exit(f"--models: choose among {', '.join(CONFIGS)}")
    if opts.rounds < 1 or opts.repeats < 1:
        sys.exit("--rounds and --repeats: at least 1")
    opts.steps = {"tiny": opts.tiny_steps, "small": opts.small_steps}
    if opts.child == "prepare":
        print(json.dumps(prepare(opts, opts.work)))
        return
    if opts.child:
        if opts.child == "torch":
            print(json.dumps(torch_child(opts.model, opts.work, opts.repeats)))
        else:  # the scripts' default (--to_static true), or the eager path
            print(json.dumps(paddle_child(opts.model, opts.work, opts.repeats, static=opts.child == "paddle")))
        return

    import cluebench  # noqa: F401  sets OMP_NUM_THREADS (imports no paddle), which every child inherits

    if "CLUE_DATA_DIR" not in os.environ:
        sys.exit("set CLUE_DATA_DIR to the real CLUE files (e.g. ../shared/clue_data)")
    probe = "import json, torch, transformers; print(json.dumps([torch.__version__, transformers.__version__]))"
    try:
        proc = subprocess.run([opts.torch_python, "-c", probe], capture_output=True, text=True)
    except OSError as error:
        sys.exit(
            f"no PyTorch python at {opts.torch_python} ({error.strerror}); make it as this file's docstring "
            "says, or name another with --torch_python"
        )
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        sys.exit(f"{opts.torch_python} cannot import torch and transformers ({last}); see this file's docstring")
    torch_version, transformers_version = json.loads(proc.stdout.strip().splitlines()[-1])

    import numpy as np

    with tempfile.TemporaryDirectory(prefix="bench_vs_pytorch_") as work:
        # Paddle is imported in children only: each process's peak RSS is its own, and this one's output clean.
        info = run_child(
            [sys.executable, __file__, "--child", "prepare", "--work", work] + sys.argv[1:], "preparing the batches"
        )
        threads = os.environ["OMP_NUM_THREADS"]
        rows, per_round = {}, {}
        for name in opts.models:
            common = [__file__, "--model", name, "--work", work, "--repeats", str(opts.repeats)]
            eager_r = run_child([sys.executable] + common + ["--child", "paddle-eager"], f"{name}, Paddle eager")
            rounds = []  # taking turns, so that a slow spell of a shared machine falls on both sides
            for number in range(1, opts.rounds + 1):
                rounds.append(
                    (
                        run_child(
                            [sys.executable] + common + ["--child", "paddle"], f"{name}, Paddle (round {number})"
                        ),
                        run_child(
                            [opts.torch_python] + common + ["--child", "torch"], f"{name}, PyTorch (round {number})"
                        ),
                    )
                )
            logits = {fw: np.load(os.path.join(work, f"{name}_{fw}_init_logits.npy")) for fw in ("paddle", "torch")}
            paddle_r, torch_r = (median_result([r[side] for r in rounds]) for side in (0, 1))
            rows[name] = (paddle_r, torch_r, float(np.abs(logits["paddle"] - logits["torch"]).max()), eager_r)
            per_round[name] = rounds

    header = ("model", "framework", "train steps/s", "train ex/s", "eval ex/s", "peak RSS MiB")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, (p, t, _, e) in rows.items():
        for fw, r in (
            ("Paddle (suite, --to_static true)", p),
            ("Paddle (--to_static false, eager)", e),
            ("PyTorch (HF)", t),
        ):
            print(
                f"| {LABEL[name]} | {fw} | {r['train_steps_s']:.2f} | {r['train_ex_s']:.1f} | {r['eval_ex_s']:.1f} | "
                f"{r['peak_rss_mib']:.0f} |"
            )
        print(
            f"| {LABEL[name]} | ratio torch/paddle | {t['train_steps_s'] / p['train_steps_s']:.2f}x | "
            f"{t['train_ex_s'] / p['train_ex_s']:.2f}x | {t['eval_ex_s'] / p['eval_ex_s']:.2f}x | |"
        )
    if opts.rounds > 1:
        print(f"\nEach round's ratio torch/paddle (the table above: each side's median over {opts.rounds} rounds)\n")
        print("| model | round | train steps/s | eval ex/s |")
        print("|---|---|---|---|")
        for name, rounds in per_round.items():
            for number, (p, t) in enumerate(rounds, 1):
                print(
                    f"| {LABEL[name]} | {number} | {t['train_steps_s'] / p['train_steps_s']:.2f}x "
                    f"({p['train_steps_s']:.2f} / {t['train_steps_s']:.2f}) | "
                    f"{t['eval_ex_s'] / p['eval_ex_s']:.2f}x ({p['eval_ex_s']:.0f} / {t['eval_ex_s']:.0f}) |"
                )
    print()
    print(
        "| model | params | initial loss, batch 0, no dropout: Paddle / PyTorch (abs diff) | "
        "max abs diff of initial eval logits | train loss of step 1 (dropout on) and mean over the warm-up run: "
        "Paddle / PyTorch |"
    )
    print("|---|---|---|---|---|")
    for name, (p, t, logit_diff, _) in rows.items():
        print(
            f"| {LABEL[name]} | {info[name]['params_m']:.2f} M | {p['initial_loss']:.6f} / {t['initial_loss']:.6f} "
            f"({abs(p['initial_loss'] - t['initial_loss']):.1e}) | {logit_diff:.1e} | "
            f"{p['first_step_loss']:.4f} / {t['first_step_loss']:.4f}; {p['mean_train_loss']:.4f} / {t['mean_train_loss']:.4f} |"
        )
    first = next(iter(rows.values()))
    print(
        f"\nTNEWS dev, max_seq_length {MAX_SEQ}, batch {BATCH}; steps: "
        + ", ".join(f"{LABEL[n]} {info[n]['steps']}" for n in rows)
        + f"; eval examples {opts.eval_examples}; best of {opts.repeats} after a warm-up"
        + (f", median of {opts.rounds} rounds; " if opts.rounds > 1 else "; ")
        + f"threads {threads} (OMP_NUM_THREADS; torch.get_num_threads() = {first[1]['threads']}) on "
        f"{os.cpu_count()} CPUs ({cpu_model()})"
    )
    print(
        f"versions: paddle {info['versions']['paddle']}, paddlenlp {info['versions']['paddlenlp']}, "
        f"torch {torch_version}, transformers {transformers_version} "
        f"(attention: {first[1]['attn_implementation']}), python {platform.python_version()}"
    )


# --------------------------------------------------------------------------------------------- Paddle
def paddle_child(name, work, repeats, static=True):
    from types import SimpleNamespace

    import cluebench  # noqa: F401  before paddle
    from cluebench.train import loop as training, runner, setup as cli, speedups

    import numpy as np
    import paddle
    from paddlenlp.transformers import AutoModelForSequenceClassification

    cli.set_device("cpu")  # as the scripts' --device cpu: it also sets the executor's CPU flags
    arrays = np.load(os.path.join(work, f"{name}_batches.npz"))
    steps, eval_n = int(arrays["steps"]), int(arrays["eval_n"])
    batches = [{k: arrays[f"train{i}_{k}"] for k in BATCH_KEYS} for i in range(steps)]
    eval_lengths = [int(n) for n in arrays["eval_lengths"]]
    eval_batches = {
        tuple(int(j) for j in arrays[f"eval{i}_index"]): {
            k: arrays[f"eval{i}_{k}"] for k in ("input_ids", "token_type_ids")
        }
        for i in range(eval_n)
    }

    def eval_collate(indices):  # forward_sorted's batches, already padded by the suite's collate
        return eval_batches[tuple(int(j) for j in indices)]

    model = AutoModelForSequenceClassification.from_pretrained(os.path.join(work, f"{name}_paddle"))
    speedups.speed_up(model)  # as cli.load_pretrained does
    if static:  # as the scripts run it by default
        model = speedups.static_forward(model, token_id=1)
    initial = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    hyper = SimpleNamespace(**HYPER)

    model.eval()
    with paddle.no_grad():
        initial_loss = float(
            training.cross_entropy_loss(model, {k: paddle.to_tensor(v) for k, v in batches[0].items()})
        )
    logits = runner.forward_sorted(model, eval_lengths, BATCH, eval_collate)  # also the evaluation's warm-up
    np.save(os.path.join(work, f"{name}_paddle_init_logits.npy"), logits)

    losses = []

    def train(log_losses=False):
        model.set_state_dict(initial)
        scheduler, optimizer = training.build_optimizer(model, hyper, steps)
        loader = training.BatchLoader(list(range(steps)), lambda i: batches[i])  # the saved batches, in order
        paddle.seed(42)  # as the script does before training: step 1's dropout too is the same every run
        start = time.perf_counter()
        stats = training.train_loop(
            model,
            loader,
            training.cross_entropy_loss,
            optimizer,
            scheduler,
            total_steps=steps,
            epochs=1,
            gas=1,
            logging_steps=1 if log_losses else 10**9,
            log_template="",
            evaluate=lambda step, epoch: None,
            eval_steps=10**9,
            seed=42,
            on_log=(lambda step, loss, lr: losses.append(loss)) if log_losses else None,
        )
        elapsed = time.perf_counter() - start
        assert stats["steps"] == steps and stats["examples"] == steps * BATCH, stats
        return elapsed

    train(log_losses=True)  # warm-up, keeping the per-step losses
    train_time = min(train() for _ in range(repeats))
    eval_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.forward_sorted(model, eval_lengths, BATCH, eval_collate)
        eval_times.append(time.perf_counter() - start)
    return {
        "train_steps_s": steps / train_time,
        "train_ex_s": steps * BATCH / train_time,
        "eval_ex_s": len(eval_lengths) / min(eval_times),
        "peak_rss_mib": peak_rss_mib(),
        "initial_loss": initial_loss,
        "first_step_loss": losses[0],
        "mean_train_loss": float(np.mean(losses)),
        "threads": int(os.environ["OMP_NUM_THREADS"]),
    }


# --------------------------------------------------------------------------------------------- PyTorch
def torch_child(name, work, repeats):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch
    import transformers
    from transformers import BertConfig, BertForSequenceClassification, get_linear_schedule_with_warmup

    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    with open(os.path.join(work, f"{name}_hf_config.json")) as f:
        config = BertConfig(**json.load(f))
    pad = config.pad_token_id

    arrays = np.load(os.path.join(work, f"{name}_batches.npz"))
    steps, eval_n = int(arrays["steps"]), int(arrays["eval_n"])
    batches = [{k: arrays[f"train{i}_{k}"] for k in BATCH_KEYS} for i in range(steps)]
    eval_batches = [
        (arrays[f"eval{i}_index"], arrays[f"eval{i}_input_ids"], arrays[f"eval{i}_token_type_ids"])
        for i in range(eval_n)
    ]
    eval_count = len(arrays["eval_lengths"])

    torch.manual_seed(42)
    model = BertForSequenceClassification(config)
    weights = {k: torch.from_numpy(v) for k, v in np.load(os.path.join(work, f"{name}_hf_weights.npz")).items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    buffers = {n for n, _ in model.named_buffers()}
    if unexpected or set(missing) - buffers:
        raise SystemExit(f"weight conversion: missing {sorted(set(missing) - buffers)}, unexpected {unexpected}")
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    def forward(ids, types, labels=None):
        ids, types = torch.from_numpy(ids), torch.from_numpy(types)
        return model(
            input_ids=ids,
            token_type_ids=types,
            attention_mask=(ids != pad).long(),
            labels=None if labels is None else torch.from_numpy(labels),
        )

    def evaluate():  # forward_sorted's work: eval mode, length-sorted batches, logits back in feature order
        model.eval()
        store = [None] * eval_count
        with torch.no_grad():
            for index, ids, types in eval_batches:
                logits = forward(ids, types).logits.numpy()
                for row, i in enumerate(index):
                    store[i] = logits[row]
        model.train()
        return np.stack(store)

    model.eval()
    with torch.no_grad():
        initial_loss = float(forward(*(batches[0][k] for k in BATCH_KEYS)).loss)
    np.save(os.path.join(work, f"{name}_torch_init_logits.npy"), evaluate())  # also the evaluation's warm-up

    losses = []

    def train(log_losses=False):
        model.load_state_dict(initial)
        torch.manual_seed(42)
        groups = [[], []]
        for n, p in model.named_parameters():
            groups[no_decay(n)].append(p)
        optimizer = torch.optim.AdamW(
            [{"params": groups[0], "weight_decay": HYPER["weight_decay"]}, {"params": groups[1], "weight_decay": 0.0}],
            lr=HYPER["learning_rate"],
            betas=(0.9, 0.999),
            eps=HYPER["adam_epsilon"],
        )
        scheduler = get_linear_schedule_with_warmup(optimizer, int(HYPER["warmup_proportion"] * steps), steps)
        model.train()
        start = time.perf_counter()
        for batch in batches:
            loss = forward(*(batch[k] for k in BATCH_KEYS)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), HYPER["max_grad_norm"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if log_losses:
                losses.append(float(loss))
        return time.perf_counter() - start

    train(log_losses=True)  # warm-up, keeping the per-step losses
    train_time = min(train() for _ in range(repeats))
    eval_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate()
        eval_times.append(time.perf_counter() - start)
    return {
        "train_steps_s": steps / train_time,
        "train_ex_s": steps * BATCH / train_time,
        "eval_ex_s": eval_count / min(eval_times),
        "peak_rss_mib": peak_rss_mib(),
        "initial_loss": initial_loss,
        "first_step_loss": losses[0],
        "mean_train_loss": float(np.mean(losses)),
        "threads": torch.get_num_threads(),
        "attn_implementation": str(config._attn_implementation),
    }


if __name__ == "__main__":
    main()
