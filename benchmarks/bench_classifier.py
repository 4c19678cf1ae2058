"""Classifier speed on real TNEWS dev (max_seq_length 128, batch 32), not run in CI.

    CLUE_DATA_DIR=../shared/clue_data .venv/bin/python benchmarks/bench_classifier.py

For a tiny model and a 4-layer, 312-hidden one (random weights over the bert-base-chinese
vocabulary), each in its own process: training and evaluation examples per second, peak RSS,
and padding efficiency (real tokens / padded tokens). The suite's training loop
(training.train_loop fed by the script's DataLoader) is timed against a bare Paddle loop over
the very same batches, already collated to tensors, alternating the two and keeping each one's
best time.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

import cluebench  # noqa: F401  before paddle
from bench_models import BENCH_LABELS, BENCH_MODELS  # noqa: E402

CONFIGS = {BENCH_LABELS[name]: config for name, config in BENCH_MODELS.items()}


def padding_efficiency(length_batches):
    real = sum(sum(b) for b in length_batches)
    padded = sum(len(b) * max(b) for b in length_batches)
    return real / padded


def measure(name, opts):
    from cluebench.tasks import classification as clue
    from cluebench.train import loop as training, runner

    import numpy as np
    import paddle
    from paddlenlp.data import DataCollatorWithPadding
    from paddlenlp.transformers import AutoModelForSequenceClassification, BertConfig, BertModel, BertTokenizer

    data = os.environ["CLUE_DATA_DIR"]
    tokenizer = BertTokenizer(os.path.join(data, "vocab", "bert-base-chinese-vocab.txt"))
    paddle.seed(0)
    with tempfile.TemporaryDirectory() as folder:
        BertModel(
            BertConfig(vocab_size=len(tokenizer.vocab), max_position_embeddings=512, **CONFIGS[name])
        ).save_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_classes=15)
    dev, _ = clue.load_split("tnews", "dev", data)
    steps, batch_size = opts.steps[name], 32
    train_features = clue.encode(tokenizer, dev[: steps * batch_size], 128)
    eval_features = clue.encode(tokenizer, dev[-opts.eval_examples[name] :], 128)
    collate = DataCollatorWithPadding(tokenizer, return_tensors="np")

    def loader():  # the script's: shuffled, dynamically padded micro-batches collated in the training thread
        return training.shuffled_batches(
            len(train_features), batch_size, lambda indices: collate([train_features[i] for i in indices])
        )

    batches = [batch for _, batch in loader().epoch(0)]  # the order a fresh loader yields
    train_eff = padding_efficiency(
        [[int(n) for n in (b["input_ids"] != tokenizer.pad_token_id).sum(1)] for b in batches]
    )
    hyper = SimpleNamespace(
        learning_rate=2e-5,
        warmup_steps=0,
        warmup_proportion=0.1,
        weight_decay=0.01,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
    )
    initial = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    def bare():
        model.set_state_dict(initial)
        scheduler, optimizer = training.build_optimizer(model, hyper, steps)
        model.train()
        start = time.perf_counter()
        for batch in batches:
            loss = training.cross_entropy_loss(model, batch)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.clear_grad()
        float(loss)
        return time.perf_counter() - start

    def suite():
        model.set_state_dict(initial)
        scheduler, optimizer = training.build_optimizer(model, hyper, steps)
        start = time.perf_counter()  # as the script runs it: reseeded after every step
        training.train_loop(
            model,
            loader(),
            training.cross_entropy_loss,
            optimizer,
            scheduler,
            total_steps=steps,
            epochs=1,
            gas=1,
            logging_steps=10**9,
            log_template="",
            evaluate=lambda step, epoch: None,
            eval_steps=10**9,
            seed=42,
        )
        return time.perf_counter() - start

    bare(), suite()  # warm-up: first-call kernel selection and allocations
    times = {"bare": [], "suite": []}
    for _ in range(opts.repeats):
        times["bare"].append(bare())
        times["suite"].append(suite())
    best_bare, best_suite = min(times["bare"]), min(times["suite"])

    start = time.perf_counter()
    runner.forward_sorted(
        model,
        [len(f["input_ids"]) for f in eval_features],
        batch_size,
        lambda indices: collate([eval_features[i] for i in indices]),
    )
    eval_time = time.perf_counter() - start
    lengths = [len(f["input_ids"]) for f in eval_features]
    eval_eff = padding_efficiency([[lengths[i] for i in b] for b in training.length_sorted_batches(lengths, 32)])
    unsorted_eff = padding_efficiency([lengths[i : i + 32] for i in range(0, len(lengths), 32)])
    return {
        "model": name,
        "params_m": sum(int(np.prod(p.shape)) for p in model.parameters()) / 1e6,
        "train_ex_s": steps * batch_size / best_suite,
        "bare_ex_s": steps * batch_size / best_bare,
        "suite_over_bare": best_suite / best_bare,
        "eval_ex_s": len(eval_features) / eval_time,
        "train_pad_eff": train_eff,
        "eval_pad_eff": eval_eff,
        "eval_pad_eff_unsorted": unsorted_eff,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "steps": steps,
        "eval_examples": len(eval_features),
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny_steps", type=int, default=60)
    parser.add_argument("--small_steps", type=int, default=15)
    parser.add_argument("--tiny_eval", type=int, default=5000)
    parser.add_argument("--small_eval", type=int, default=1000)
    opts = parser.parse_args()
    if "CLUE_DATA_DIR" not in os.environ:
        sys.exit("set CLUE_DATA_DIR to the real CLUE files (e.g. ../shared/clue_data)")
    names = list(CONFIGS)
    opts.steps = dict(zip(names, (opts.tiny_steps, opts.small_steps)))
    opts.eval_examples = dict(zip(names, (opts.tiny_eval, opts.small_eval)))
    if opts.child:
        print(json.dumps(measure(opts.child, opts)))
        return
    rows = []
    for name in names:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name] + sys.argv[1:], capture_output=True, text=True
        )
        if proc.returncode:
            sys.exit(proc.stderr[-3000:])
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    header = (
        "model",
        "params",
        "train ex/s",
        "bare ex/s",
        "suite/bare",
        "eval ex/s",
        "pad eff train",
        "pad eff eval (unsorted)",
        "peak RSS",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(
            f"| {r['model']} | {r['params_m']:.2f} M | {r['train_ex_s']:.1f} | {r['bare_ex_s']:.1f} | "
            f"{r['suite_over_bare']:.3f} | {r['eval_ex_s']:.1f} | {r['train_pad_eff']:.3f} | "
            f"{r['eval_pad_eff']:.3f} ({r['eval_pad_eff_unsorted']:.3f}) | {r['peak_rss_mb']:.0f} MB |"
        )
    print(
        f"\nTNEWS dev, max_seq_length 128, batch 32, OMP_NUM_THREADS={rows[0]['threads']}, best of "
        f"{opts.repeats} alternating runs; steps: "
        + ", ".join(f"{r['model']} {r['steps']}" for r in rows)
        + "; eval examples: "
        + ", ".join(f"{r['model']} {r['eval_examples']}" for r in rows)
    )


if __name__ == "__main__":
    main()
