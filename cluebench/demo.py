"""The README demo, on the CPU with no download: one fine-tune, then a small grid search.

    python -m cluebench.demo [--workdir demo_output]

Builds a 2-layer random ERNIE and small synthetic sets under WORKDIR: TNEWS in data/, TNEWS,
AFQMC and C3 in grid_data/.
1. classification/run_clue_classifier.py trains on TNEWS, evaluates on dev and writes the
   leaderboard files; the tiny model learns the synthetic task.
2. grid_search_tools/grid_search.py runs a reduced grid (TNEWS, AFQMC, C3; two learning rates)
   on two CPU slots, prints the extract tables, writes the report (dev curves, heat maps, expected
   performance) and makes the leaderboard zip of the best jobs, checked against the test files;
   then leaderboard.py gives the model's row of the README's tables. The rates are
   off upstream's grid (--off_grid): at its 1e-5 to 5e-5 a random tiny model stays at chance;
   at 2e-4 and 1e-3 it learns, at different speeds, so the dev curves rise, every task's best
   beats chance and the TNEWS and C3 heat maps differ. Each set is sized so that every job evaluates
   more than once (classification every 100 steps, C3 every epoch); C3's right choice is marked.
"""

import argparse
import json
import os
import subprocess
import sys

import cluebench  # noqa: F401

from . import results, synthetic
from .fileio import read_jsonl
from .grid import best_jobs, scheduler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRID_TASKS = ("tnews", "afqmc", "c3")
# off upstream's grid: at 2e-4 the tiny model learns AFQMC and C3 slowly and TNEWS not at all, at 1e-3 all three
GRID_RATES = ("0.0002", "0.001")


def majority(data, task):
    """The share of a classification dev set's most common label: a model that learnt nothing."""
    labels = [r["label"] for _, r in read_jsonl(os.path.join(data, f"{task}_public", "dev.json"))]
    return max(labels.count(label) for label in set(labels)) / len(labels)


def c3_chance(data):
    """What a C3 model that ignores the text gets on dev: a random pick, or always the same position,
    whichever is better."""
    questions = []
    for prefix in ("d", "m"):
        with open(os.path.join(data, "c3_public", f"{prefix}-dev.json"), encoding="utf-8") as f:
            questions += [q for document in json.load(f) for q in document[1]]
    positions = [q["choice"].index(q["answer"]) for q in questions]
    random_pick = sum(1 / len(q["choice"]) for q in questions) / len(questions)
    return max(random_pick, max(positions.count(p) for p in set(positions)) / len(positions))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="demo_output")
    args = parser.parse_args()
    args.workdir = os.path.abspath(args.workdir)  # the grid runs from grid_search_tools/
    model = os.path.join(args.workdir, "tiny-ernie")
    data = os.path.join(args.workdir, "data")  # the fine-tune's TNEWS
    grid_data = os.path.join(args.workdir, "grid_data")
    out = os.path.join(args.workdir, "tnews")
    if not os.path.isfile(os.path.join(model, "model_state.pdparams")):
        synthetic.build_tiny_model(model)
    synthetic.write_task(data, "tnews", n_train=480, n_dev=120, n_test=50)
    # the grid's, big enough for every classification job to evaluate twice (run_cls.sh: every 100 steps)
    synthetic.write_task(grid_data, "tnews", n_train=960, n_dev=120, n_test=50)
    synthetic.write_task(grid_data, "afqmc", n_train=800, n_dev=64)
    synthetic.write_c3(grid_data, n_train=24, n_dev=24, marked=True)
    command = [
        sys.executable,
        "-u",
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
        "--do_predict",
        "--output_dir",
        out,
        "--num_train_epochs",
        "6",
        "--batch_size",
        "16",
        "--learning_rate",
        "5e-3",
        "--logging_steps",
        "30",
        "--save_steps",
        "30",
    ]
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)
    record = results.read_record(os.path.join(out, results.FILENAME))
    print(
        f"\nDemo done: best dev accuracy {record['best']['value']} at step {record['best']['step']} "
        f"(majority class: {100 * majority(data, 'tnews'):.2f})."
    )
    print(f"Results record: {os.path.join(out, results.FILENAME)}")
    for path in record["predictions"]:
        with open(path, encoding="utf-8") as f:
            first = json.loads(f.readline())
        print(f"Prediction file: {path} (first line {json.dumps(first)})")

    command = [
        sys.executable,
        os.path.join(ROOT, "grid_search_tools", "grid_search.py"),
        model,
        "--device",
        "cpu",
        "--slots",
        "2",
        "--data_dir",
        grid_data,
        "--output_root",
        os.path.join(args.workdir, "grid"),
        "--tasks",
        *GRID_TASKS,
        "--learning_rates",
        *GRID_RATES,
        "--off_grid",
        "--batch_sizes",
        "16",
        "24",
    ]
    print("\n$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=os.path.join(ROOT, "grid_search_tools"))
    run_dir = scheduler.run_dir(model, os.path.join(args.workdir, "grid"))
    best = best_jobs.best_per_task(run_dir)
    print(
        "\nGrid: best dev accuracy per task (chance: the majority class; for C3 the better of a random pick "
        "and always the same choice):"
    )
    for task in GRID_TASKS:
        value, (lr, bs, _), _ = best[task]
        level = c3_chance(grid_data) if task == "c3" else majority(grid_data, task)
        print(f"  {task.upper():6} {value:>6} at learning rate {lr}, batch {bs} (chance {100 * level:.2f})")
    command = [
        sys.executable,
        os.path.join(ROOT, "grid_search_tools", "leaderboard.py"),
        "--output_root",
        os.path.join(args.workdir, "grid"),
    ]
    print("\n$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)
    print(
        f"\nSubmission: {os.path.join(run_dir, 'submission.zip')} (what came from where: submission.md beside "
        f"it; report: {os.path.join(run_dir, 'report', 'report.md')}; leaderboard: "
        f"{os.path.join(args.workdir, 'grid', 'leaderboard', 'leaderboard.md')})"
    )


if __name__ == "__main__":
    main()
