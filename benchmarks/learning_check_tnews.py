"""Does a tiny model learn real TNEWS on the CPU? Not run in CI (a few minutes).

    CLUE_DATA_DIR=../shared/clue_data .venv/bin/python benchmarks/learning_check_tnews.py
    ... learning_check_tnews.py -- --to_static false     (more flags for the script after --)
    ... learning_check_tnews.py --side_by_side           (also upstream's training step, same run)
    ... learning_check_tnews.py --side_by_side --seeds 42,1,2,3,4,5   (both, for each seed)

--side_by_side first trains with upstream's step: the eager model (--to_static false) and MKL's
own code path (MKL_DEBUG_CPU_TYPE=0), which on this machine gives upstream's losses at every
logged step; then the suite's defaults. It prints both rows, their dev accuracy at every
evaluation, and the wall-time ratio; with several --seeds, also each seed's difference in best dev
accuracy and both rows' mean and standard deviation (a change of rounding moves one run's best by
as much as a change of seed does, so one seed says little).

The official TNEWS train set is not in the test data, so: train on the FewCLUE TNEWS sample plus
the first 6000 dev examples, evaluate on the other 4000 dev examples, and compare the best dev
accuracy with the majority-class accuracy of that same evaluation set. The model is a random
2-layer BERT (hidden 128) over the bert-base-chinese vocabulary; it is trained with
classification/run_clue_classifier.py itself.
"""

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # for helpers.py
import cluebench  # noqa: E402,F401
from cluebench import results  # noqa: E402
from cluebench.fileio import read_jsonl  # noqa: E402
from helpers import ROOT, save_random_bert  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dev_train", type=int, default=6000, help="dev examples moved into training")
    parser.add_argument("--side_by_side", action="store_true", help="upstream's training step first, then the defaults")
    parser.add_argument("--seeds", default="42", help="comma-separated --seed values: every run for each")
    parser.add_argument("flags", nargs="*", help="more flags for run_clue_classifier.py, after --")
    opts = parser.parse_args()
    clue_data = os.environ.get("CLUE_DATA_DIR") or sys.exit("set CLUE_DATA_DIR")
    dev = [r for _, r in read_jsonl(os.path.join(clue_data, "tnews_public", "dev.json"))]
    few = [r for _, r in read_jsonl(os.path.join(clue_data, "fewclue", "tnews", "train_few_all.json"))]
    train, evaluation = few + dev[: opts.dev_train], dev[opts.dev_train :]
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "tnews_public")
        os.makedirs(data)
        for name, records in (("train.json", train), ("dev.json", evaluation)):
            with open(os.path.join(data, name), "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        model = save_random_bert(
            os.path.join(work, "model"),
            clue_data,
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=512,
        )
        runs = [("defaults", {}, [])]
        if opts.side_by_side:
            runs.insert(0, ("upstream's step", {"MKL_DEBUG_CPU_TYPE": "0"}, ["--to_static", "false"]))
        records = []
        for seed in opts.seeds.split(","):
            for name, env, flags in runs:
                out = os.path.join(work, f"out{len(records)}")
                subprocess.run(
                    [
                        sys.executable,
                        os.path.join(ROOT, "classification", "run_clue_classifier.py"),
                        "--task_name",
                        "tnews",
                        "--model_name_or_path",
                        model,
                        "--data_dir",
                        data,
                        "--device",
                        "cpu",
                        "--do_train",
                        "--output_dir",
                        out,
                        "--batch_size",
                        "32",
                        "--learning_rate",
                        "1e-3",
                        "--num_train_epochs",
                        str(opts.epochs),
                        "--save_steps",
                        "100",
                        "--logging_steps",
                        "100",
                        "--save_best_model",
                        "false",
                        "--seed",
                        seed,
                        *flags,
                        *opts.flags,
                    ],
                    check=True,
                    env={**os.environ, **env},
                )
                records.append((name, seed, results.read_record(os.path.join(out, results.FILENAME))))
    counts = collections.Counter(str(r["label"]) for r in evaluation)
    label, n = counts.most_common(1)[0]
    print(
        f"\n{len(train)} train / {len(evaluation)} eval examples; majority class ({label}) "
        f"accuracy {100 * n / len(evaluation):.2f}\n"
    )
    print("| run | seed | best dev acc (step) | train ex/s | eval ex/s | wall time |")
    print("|---|---|---|---|---|---|")
    for name, seed, record in records:
        print(
            f"| {name} | {seed} | {record['best']['value']} ({record['best']['step']}) | "
            f"{record['throughput']['train_examples_per_s']:.0f} | {record['throughput']['eval_examples_per_s']:.0f} | "
            f"{record['wall_time_s']:.0f} s |"
        )
    if opts.side_by_side:
        print("\ndev accuracy at each evaluation:")
        for name, seed, record in records:
            print(
                f"  {name:>16}, seed {seed}: "
                + " ".join(results.best_result_text(h["metrics"]) for h in record["history"])
            )
        upstream, defaults = records[0::2], records[1::2]
        wall = sum(r[2]["wall_time_s"] for r in upstream) / sum(r[2]["wall_time_s"] for r in defaults)
        print(f"\nwall time, upstream's step / defaults: {wall:.2f}x")
        if len(defaults) > 1:  # one run's best moves with any change of rounding: compare over seeds
            diffs = [float(d[2]["best"]["value"]) - float(u[2]["best"]["value"]) for u, d in zip(upstream, defaults)]
            print("best dev acc, defaults - upstream's step, by seed: " + ", ".join(f"{d:+.2f}" for d in diffs))
            for name, rows in (("upstream's step", upstream), ("defaults", defaults)):
                values = [float(r[2]["best"]["value"]) for r in rows]
                print(f"  {name}: mean {statistics.mean(values):.2f}, sd {statistics.stdev(values):.2f}")
            # paired by seed: the standard error of the mean difference is the sd of the differences / sqrt(n)
            se = statistics.stdev(diffs) / len(diffs) ** 0.5
            print(
                f"  difference of the means: {statistics.mean(diffs):+.2f} ± {se:.2f} (standard error, paired "
                f"by seed, n = {len(diffs)}; ±{2 * se:.2f} is about a 95% interval)"
            )


if __name__ == "__main__":
    main()
