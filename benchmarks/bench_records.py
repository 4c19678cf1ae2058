"""How long extract and report take over a big grid: N synthetic complete records of one task (TNEWS),
each with a 10-point dev history, in a temporary run folder. Not a test: run by hand,

    PYTHONPATH=. python benchmarks/bench_records.py [N]     (default 10,000)

and it prints a small table of seconds per stage."""

import contextlib
import io
import os
import sys
import tempfile
import time

from cluebench import results
from cluebench.grid import best_jobs, extract, report

MODEL = "ernie-3.0-base-zh"


def build(directory, n):
    lrs = [f"{i + 1}e-05" for i in range(25)]
    names = [f"{lr}_{bs}_0.{d:02d}" for lr in lrs for bs in range(1, 21) for d in range(20)]
    for i, name in enumerate(names[:n]):
        top = 40 + (i * 7919 % 5000) / 100  # spread, reproducible
        history = [
            {"step": 100 * (k + 1), "epoch": 1, "metrics": {"acc": top - (9 - k) * 0.5}, "loss": 1.0} for k in range(10)
        ]
        rec = results.make_record(
            task="tnews",
            model=MODEL,
            script="run_clue_classifier.py",
            hyperparameters={"learning_rate": 1e-05},
            history=history,
            best={"metrics": {"acc": top}, "step": 1000, "epoch": 1},
            wall_time_s=1.0,
            throughput={},
            data={},
        )
        results.write_record(os.path.join(directory, "tnews", name + ".json"), rec)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as root:
        directory = os.path.join(root, MODEL)
        times = {}
        start = time.perf_counter()
        build(directory, n)
        times["build records"] = time.perf_counter() - start
        with contextlib.redirect_stderr(io.StringIO()):
            start = time.perf_counter()
            best = best_jobs.best_per_task(directory)
            extract.write_reports(directory, MODEL, best)
            times["extract (tables, csv, md)"] = time.perf_counter() - start
            start = time.perf_counter()
            report.write_report(directory, MODEL, best)
            times["report (figures, report.md)"] = time.perf_counter() - start
    print(f"{n:,} records")
    for stage, seconds in times.items():
        print(f"{stage:<30}{seconds:8.2f} s")


if __name__ == "__main__":
    main()
