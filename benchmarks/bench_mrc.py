"""Reading-comprehension feature building and tiny-model throughput, not run in CI.

    CLUE_DATA_DIR=../shared/clue_data .venv/bin/python benchmarks/bench_mrc.py [--slow]

Feature building for CMRC2018 dev (max_seq_length 512, doc_stride 128), C3 dev (512) and a large
synthetic CHID set (64), each from scratch and then from the cache, each in a fresh process, with
the bert-base-chinese vocabulary. "peak +MB" is the rise of peak RSS during the build over the
RSS just before it (examples loaded, libraries imported). --slow also times CMRC2018 dev with
PaddleNLP's Python tokenizer, the upstream path. Then training and evaluation examples per
second for a tiny random model (2 layers, hidden 64) on the same features.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import cluebench  # noqa: F401  before paddle


def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def setup(task, data):
    from cluebench.tasks import reading as mrc
    from cluebench.train.fast_tokenizer import TextEncoder

    from paddlenlp.transformers import BertTokenizer

    tokenizer = BertTokenizer(os.path.join(os.environ["CLUE_DATA_DIR"], "vocab", "bert-base-chinese-vocab.txt"))
    split = "dev"
    examples = mrc.load_examples(task, split, data)
    length = {"cmrc2018": 512, "c3": 512, "chid": 64}[task]

    def build(encoder):
        if task == "cmrc2018":
            return mrc.cmrc_features(examples, encoder, length, 128, with_labels=False)
        if task == "c3":
            return mrc.c3_features(examples, encoder, length)
        return mrc.chid_features(examples, encoder, length)

    key = mrc.cache_key(
        task, split, mrc.split_files(task, split, data), tokenizer, length, 128 if task == "cmrc2018" else None
    )
    return mrc, tokenizer, TextEncoder, examples, build, key


def child_build(task, data, mode, cache):
    mrc, tokenizer, TextEncoder, examples, build, key = setup(task, data)
    encoder = TextEncoder(tokenizer, fast=mode != "slow")
    units = sum(len(r.tags) for r in examples) if task == "chid" else len(examples)
    before = rss_mb()
    start = time.perf_counter()
    if mode == "cache":
        feats = mrc.load_cached(mrc.cache_path(cache, key), key)
        assert feats is not None, "no cache: run the scratch build first"
    else:
        feats = build(encoder)
        if mode == "scratch":
            mrc.save_cached(mrc.cache_path(cache, key), key, feats)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = sum(v.nbytes for v in feats.columns.values()) / 2**20
    return {
        "task": task,
        "mode": mode,
        "units": units,
        "features": len(feats),
        "seconds": seconds,
        "per_s": units / seconds,
        "peak_rise_mb": max(0.0, peak - before),
        "features_mb": size,
    }


def child_train(task, data, cache):
    from cluebench import synthetic
    from cluebench.train import loop as training, runner
    from cluebench.train.reading import make_collate

    import numpy as np
    import paddle
    from paddlenlp.transformers import AutoModelForMultipleChoice, AutoModelForQuestionAnswering, BertConfig, BertModel

    mrc, tokenizer, _, examples, build, key = setup(task, data)
    feats = mrc.load_cached(mrc.cache_path(cache, key), key)
    paddle.seed(0)
    with tempfile.TemporaryDirectory() as folder:
        BertModel(BertConfig(vocab_size=len(tokenizer.vocab), **synthetic.TINY_CONFIG)).save_pretrained(folder)
        model = (
            AutoModelForQuestionAnswering.from_pretrained(folder)
            if task == "cmrc2018"
            else AutoModelForMultipleChoice.from_pretrained(folder, num_choices=feats.group)
        )
    labels = {"cmrc2018": ["start_positions", "end_positions"]}.get(task, ["labels"])
    if task == "cmrc2018":  # dev features carry no span labels: train on [CLS] targets, the cost is the same
        feats.columns["start_positions"] = feats.columns["end_positions"] = np.zeros(len(feats), np.int32)
    else:
        feats.columns["labels"] = np.maximum(feats["labels"], 0)
    loss_fn = training.span_loss if task == "cmrc2018" else training.cross_entropy_loss
    collate = make_collate(feats, tokenizer.pad_token_id, labels)
    batch = {"cmrc2018": 8, "c3": 4, "chid": 8}[task]
    steps = 20
    hyper = argparse.Namespace(
        learning_rate=3e-5,
        warmup_steps=0,
        warmup_proportion=0.1,
        weight_decay=0.01,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
    )
    scheduler, optimizer = training.build_optimizer(model, hyper, steps)
    loader = training.shuffled_batches(len(feats), batch, collate)  # as runner.fit makes it
    start = time.perf_counter()
    training.train_loop(
        model,
        loader,
        loss_fn,
        optimizer,
        scheduler,
        total_steps=steps,
        epochs=1,
        gas=1,
        logging_steps=10**9,
        log_template="",
        evaluate=lambda s, e: None,
        eval_steps=10**9,
        seed=42,
    )
    train_rate = steps * batch / (time.perf_counter() - start)
    n_eval = min(len(feats), 400)
    subset = feats.head(n_eval)
    start = time.perf_counter()
    runner.forward_sorted(
        model, subset.lengths(), 32, make_collate(subset, tokenizer.pad_token_id, []), per_token=task == "cmrc2018"
    )
    return {
        "task": task,
        "train_ex_s": train_rate,
        "eval_ex_s": n_eval / (time.perf_counter() - start),
        "train_batch": batch,
        "eval_examples": n_eval,
    }


def run_child(*args):
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--slow", action="store_true", help="also time PaddleNLP's Python tokenizer on CMRC2018")
    parser.add_argument("--chid_rows", type=int, default=4000, help="rows of the synthetic CHID set")
    opts = parser.parse_args()
    if "CLUE_DATA_DIR" not in os.environ:
        sys.exit("set CLUE_DATA_DIR to the real CLUE files (e.g. ../shared/clue_data)")
    if opts.child:
        kind, task, data, *rest = opts.child
        out = child_build(task, data, *rest) if kind == "build" else child_train(task, data, *rest)
        print(json.dumps(out))
        return
    from cluebench import synthetic

    real = os.environ["CLUE_DATA_DIR"]
    with tempfile.TemporaryDirectory() as work:
        synthetic.write_chid(work, n_train=1, n_dev=opts.chid_rows, n_test=1)
        cache = os.path.join(work, "cache")
        builds, trains = [], []
        for task, data in (("cmrc2018", real), ("c3", real), ("chid", work)):
            if task == "cmrc2018" and opts.slow:
                builds.append(run_child("build", task, data, "slow", cache))
            builds.append(run_child("build", task, data, "scratch", cache))
            builds.append(run_child("build", task, data, "cache", cache))
            trains.append(run_child("train", task, data, cache))
    unit = {"cmrc2018": "questions", "c3": "questions", "chid": "blanks"}
    print("| task (dev) | build | units | features | seconds | units/s | peak +MB | features MB |")
    print("|---|---|---|---|---|---|---|---|")
    for b in builds:
        mode = {"slow": "PaddleNLP tokenizer", "scratch": "from scratch", "cache": "from cache"}[b["mode"]]
        print(
            f"| {b['task']} | {mode} | {b['units']} {unit[b['task']]} | {b['features']} | {b['seconds']:.2f} | "
            f"{b['per_s']:.0f} | {b['peak_rise_mb']:.0f} | {b['features_mb']:.1f} |"
        )
    print("\n| task | train examples/s (batch) | eval examples/s |\n|---|---|---|")
    for t in trains:
        print(f"| {t['task']} | {t['train_ex_s']:.1f} ({t['train_batch']}) | {t['eval_ex_s']:.1f} |")
    print(
        f"\nCHID: synthetic, {opts.chid_rows} rows. Tiny model: 2 layers, hidden 64, bert-base-chinese vocabulary; "
        f"train 20 steps; eval on up to 400 features, length-sorted, batch 32. "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}."
    )


if __name__ == "__main__":
    main()
