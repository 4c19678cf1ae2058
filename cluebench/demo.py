"""The README demo, on the CPU with no download: one fine-tune, then a small grid search.

    python -m cluebench.demo [--workdir demo_output]

Builds a 2-layer random ERNIE and small synthetic TNEWS, AFQMC and C3 sets under WORKDIR.
1. classification/run_clue_classifier.py trains on TNEWS, evaluates on dev and writes the
   leaderboard files; the tiny model learns the synthetic task.
2. grid_search_tools/grid_search.py runs a reduced grid (TNEWS, AFQMC, C3; two learning rates)
   on two CPU slots, prints the extract tables, and makes the leaderboard zip of the best jobs,
   checked against the test files. At the grid's learning rates (1e-5 to 5e-5) a random tiny
   model stays near chance: the point is the pipeline, not the scores.
"""
import argparse
import json
import os
import subprocess
import sys

import cluebench  # noqa: F401
from cluebench import grid, results, synthetic
from cluebench.fileio import read_jsonl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="demo_output")
    args = parser.parse_args()
    args.workdir = os.path.abspath(args.workdir)  # the grid runs from grid_search_tools/
    model = os.path.join(args.workdir, "tiny-ernie")
    data = os.path.join(args.workdir, "data")
    out = os.path.join(args.workdir, "tnews")
    if not os.path.isfile(os.path.join(model, "model_state.pdparams")):
        synthetic.build_tiny_model(model)
    synthetic.write_task(data, "tnews", n_train=480, n_dev=120, n_test=50)
    synthetic.write_task(data, "afqmc")
    synthetic.write_c3(data)
    command = [sys.executable, "-u", os.path.join(ROOT, "classification", "run_clue_classifier.py"),
               "--task_name", "tnews", "--model_name_or_path", model, "--data_dir", data, "--device", "cpu",
               "--do_train", "--do_predict", "--output_dir", out, "--num_train_epochs", "6",
               "--batch_size", "16", "--learning_rate", "5e-3", "--logging_steps", "30", "--save_steps", "30"]
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)
    record = results.read_record(os.path.join(out, results.FILENAME))
    labels = [r["label"] for _, r in read_jsonl(os.path.join(data, "tnews_public", "dev.json"))]
    majority = max(labels.count(label) for label in set(labels)) / len(labels)
    print(f"\nDemo done: best dev accuracy {record['best']['value']} at step {record['best']['step']} "
          f"(majority class: {100 * majority:.2f}).")
    print(f"Results record: {os.path.join(out, results.FILENAME)}")
    for path in record["predictions"]:
        with open(path, encoding="utf-8") as f:
            first = json.loads(f.readline())
        print(f"Prediction file: {path} (first line {json.dumps(first)})")

    command = [sys.executable, os.path.join(ROOT, "grid_search_tools", "grid_search.py"), model, "--device", "cpu",
               "--slots", "2", "--data_dir", data, "--output_root", os.path.join(args.workdir, "grid"),
               "--tasks", "tnews", "afqmc", "c3", "--learning_rates", "2e-05", "3e-05", "--batch_sizes", "16", "24"]
    print("\n$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=os.path.join(ROOT, "grid_search_tools"))
    run_dir = grid.run_dir(model, os.path.join(args.workdir, "grid"))
    print(f"\nSubmission: {os.path.join(run_dir, 'submission.zip')} (what came from where: submission.md beside "
          f"it; report: {os.path.join(run_dir, 'report', 'report.md')})")


if __name__ == "__main__":
    main()
