"""What a resume checkpoint costs, and that a killed run ends as an uninterrupted one. Not run in CI.

    CLUE_DATA_DIR=../shared/clue_data .venv/bin/python benchmarks/bench_resume.py

On real TNEWS (train: the first 1600 dev examples, dev: the next 400, test: the next 300 with their line
numbers as ids), with run_clue_classifier.py itself, max_seq_length 128, batch 32, 2 epochs, an
evaluation (and so a checkpoint) every 20 steps, --do_predict:
1. for a tiny (2 layers, hidden 64) and a small (4 layers, hidden 312) random BERT over the
   bert-base-chinese vocabulary: checkpoint size, seconds per checkpoint, and their share of the run;
2. for the tiny model: SIGKILL inside an epoch, during an evaluation and while a checkpoint is written,
   and SIGTERM, each followed by a rerun of the same command; steps lost, best_result and prediction
   bytes against the uninterrupted run.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # for helpers.py
import cluebench  # noqa: E402,F401
from bench_models import BENCH_LABELS, BENCH_MODELS  # noqa: E402
from cluebench import results  # noqa: E402
from cluebench.fileio import read_jsonl  # noqa: E402
from cluebench.train import resume  # noqa: E402
from helpers import ROOT, save_random_bert  # noqa: E402

SCRIPT = os.path.join(ROOT, "classification", "run_clue_classifier.py")
MODELS = {BENCH_LABELS[name]: config for name, config in BENCH_MODELS.items()}
SAVED = re.compile(r"resume checkpoint at step (\d+): \S+ \(([\d.]+) MiB, ([\d.]+) s\)")
RESUMED = re.compile(r"resuming from \S+: step (\d+),")
STEP = re.compile(r"global step (\d+)/")


def build(work, clue_data):
    rows = [r for _, r in read_jsonl(os.path.join(clue_data, "tnews_public", "dev.json"))]
    data = os.path.join(work, "tnews_public")
    os.makedirs(data)
    for name, part in (("train.json", rows[:1600]), ("dev.json", rows[1600:2000]), ("test.json", rows[2000:2300])):
        with open(os.path.join(data, name), "w", encoding="utf-8") as f:
            for i, r in enumerate(part):
                f.write(json.dumps(dict(r, id=i) if name == "test.json" else r, ensure_ascii=False) + "\n")
    models = {
        label: save_random_bert(os.path.join(work, label.split()[0]), clue_data, **config)
        for label, config in MODELS.items()
    }
    return data, models


def command(model, data, out):
    return [
        "--task_name",
        "tnews",
        "--model_name_or_path",
        model,
        "--data_dir",
        data,
        "--device",
        "cpu",
        "--output_dir",
        out,
        "--do_train",
        "--do_predict",
        "--batch_size",
        "32",
        "--num_train_epochs",
        "2",
        "--learning_rate",
        "1e-3",
        "--save_steps",
        "20",
        "--logging_steps",
        "1",
        "--max_seq_length",
        "128",
        "--save_best_model",
        "false",
    ]


def run(args, fault=None):
    prefix = [os.path.join(ROOT, "tests", "faults.py"), *fault, SCRIPT] if fault else [SCRIPT]
    tic = time.time()
    proc = subprocess.run(
        [sys.executable, *prefix, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.path.join(ROOT, "tests")),
    )
    return proc, time.time() - tic


def outcome(out):
    record = results.read_record(os.path.join(out, results.FILENAME))
    return (
        record["best"]["value"],
        record["history"],
        {os.path.basename(p): open(p, "rb").read() for p in record["predictions"]},
    )


def main():
    clue_data = os.environ.get("CLUE_DATA_DIR") or sys.exit("set CLUE_DATA_DIR")
    with tempfile.TemporaryDirectory() as work:
        data, models = build(work, clue_data)
        print("| model | params | checkpoints | size (MiB) | s per checkpoint | run (s) | checkpoint share |")
        print("|---|---|---|---|---|---|---|")
        reference = None
        for label, model in models.items():
            out = os.path.join(work, "out-" + label.split()[0])
            proc, seconds = run(command(model, data, out))
            assert proc.returncode == 0, proc.stderr[-2000:]
            saves = [(float(m), float(s)) for _, m, s in SAVED.findall(proc.stderr + proc.stdout)]
            params = sum(
                v.size
                for v in __import__("paddle")
                .load(os.path.join(model, "model_state.pdparams"), return_numpy=True)
                .values()
            )
            share = sum(s for _, s in saves) / seconds
            print(
                f"| {label} | {params / 1e6:.2f} M | {len(saves)} | {saves[0][0]:.1f} | "
                f"{sum(s for _, s in saves) / len(saves):.3f} | {seconds:.1f} | {100 * share:.2f}% |"
            )
            if reference is None:
                reference = (model, outcome(out))
        model, expected = reference
        print("\n| where killed | exit | resumed from step | steps lost | best_result | history | prediction bytes |")
        print("|---|---|---|---|---|---|---|")
        for where, n, sig, what in (
            ("loss", 50, "KILL", "SIGKILL inside an epoch (step 50)"),
            ("evaluate", 3, "KILL", "SIGKILL during the 3rd evaluation"),
            ("checkpoint", 2, "KILL", "SIGKILL writing the 2nd checkpoint"),
            ("loss", 50, "TERM", "SIGTERM inside an epoch (step 50)"),
        ):
            out = os.path.join(work, f"kill-{where}-{sig}")
            killed, _ = run(command(model, data, out), fault=[where, str(n), sig])
            done = max(map(int, STEP.findall(killed.stderr + killed.stdout)), default=0)
            again, _ = run(command(model, data, out))
            assert again.returncode == 0, again.stderr[-2000:]
            start = int(RESUMED.search(again.stderr + again.stdout).group(1))
            lost = done - start + (1 if where == "loss" and sig == "KILL" else 0)  # the step in flight
            best, history, files = outcome(out)
            print(
                f"| {what} | {killed.returncode} | {start} | {lost} | {best} "
                f"({'=' if best == expected[0] else '!='}) | {'equal' if history == expected[1] else 'DIFFERENT'}"
                f" | {'equal' if files == expected[2] else 'DIFFERENT'} ({sum(map(len, files.values()))} B) |"
            )
            assert not os.path.exists(os.path.join(out, resume.FILENAME))


if __name__ == "__main__":
    main()
