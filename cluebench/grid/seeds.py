"""Seed reruns of each task's best configuration (grid_search.py --seeds N), and their mean ± sd.

    python -m cluebench.seeds MODEL [--output_root ROOT]      (the lines grid_search.py prints at its end)

The grid's own jobs run with seed 42 (scheduler.GRID_SEED); a task's best job (best_jobs.best_per_task) runs
again with seeds 43, 44, ..., 42+N-1, each as a job of its own, RUN_DIR/TASK/seeds/LR_BS_DROPOUT_sSEED.
{log,json} (scheduler.job_stem). Extract never lists that folder: a rerun is never a candidate for the best,
and the submission stays the grid's best job. summary() gives, per task, the values of its best
configuration (seed 42, then each rerun with a complete record) and their mean and sample sd (n-1),
compared as extract compares them (CMRC2018 by its EM). No Paddle here: the report may import it.
"""

import collections
import dataclasses
import os
import re
import statistics
import sys

from .. import results
from ..fileio import atomic_write
from . import best_jobs, scheduler

MAX_SEEDS = 20  # grid_search.py --seeds: at most 19 reruns of each task's best


def rerun_seeds(n):
    """The seeds of the n-1 reruns: 43, 44, ... (fixed, so a restarted grid asks for the same jobs)."""
    return [scheduler.GRID_SEED + k for k in range(1, n)]


def best_grid_jobs(directory, task_names=None, off_grid_rates=()):
    """{task: the grid Job of its best result}, for the tasks (all if None) that have one; off_grid_rates:
    the grid's --off_grid rates, whose jobs may be the best too."""
    by_name = {(j.task, j.name): j for j in scheduler.full_grid(off_grid_rates)}
    best = best_jobs.best_per_task(directory)
    found = {
        task: by_name.get((task, "_".join(hyper)))
        for task, (_, hyper, _) in best.items()
        if task_names is None or task in task_names
    }
    return {task: job for task, job in found.items() if job is not None}  # a name not of the grid: no rerun


def rerun_jobs(directory, n, task_names=None, off_grid_rates=()):
    """The seed reruns of each task's best job, as Jobs the Scheduler runs (empty for n = 1)."""
    return [
        dataclasses.replace(job, seed=seed)
        for job in best_grid_jobs(directory, task_names, off_grid_rates).values()
        for seed in rerun_seeds(n)
    ]


SeedRuns = collections.namedtuple("SeedRuns", "task job values mean sd")  # values: [(seed, value text)]


def reruns_of(directory, task, job):
    """[(seed, value)] of the complete, valid rerun records of a job name (LR_BS_DROPOUT), by seed."""
    folder = os.path.join(directory, task, "seeds")
    pattern = re.compile(re.escape(job) + r"_s([0-9]{1,9})\.json", re.ASCII)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match or not entry.is_file(follow_symlinks=False) or int(match.group(1)) == scheduler.GRID_SEED:
            continue
        record = results.read_record(entry.path)
        if record is None:  # a rerun still running, or killed: not counted yet
            continue
        value, why = best_jobs.record_value(record)
        if why:
            best_jobs.warn(entry.path, why)
        else:
            found.append((int(match.group(1)), value))
    return sorted(found)


def summary(directory, reruns_only=False, best=None):
    """{task: SeedRuns} of every task with a best job (with reruns_only, of those with a finished rerun),
    in REPORT_ORDER: its value under seed 42 and under each finished rerun; sd is None with one value.
    best: best_jobs.best_per_task(directory) where the caller has it (read once, warned about once)."""
    out = {}
    for task, (value, hyper, _) in (best if best is not None else best_jobs.best_per_task(directory)).items():
        job = "_".join(hyper)
        values = [(scheduler.GRID_SEED, value)] + reruns_of(directory, task, job)
        if reruns_only and len(values) == 1:
            continue
        scores = [best_jobs.score(v) for _, v in values]
        sd = statistics.stdev(scores) if len(scores) > 1 else None
        out[task] = SeedRuns(task, job, values, statistics.mean(scores), sd)
    return out


def line(runs):
    """`TNEWS 2e-05_32_0.1 over 3 seeds: 56.12 ± 0.41 (42: 56.50, 43: 55.80, 44: 56.06)`."""
    spread = "" if runs.sd is None else f" ± {runs.sd:.2f}"
    each = ", ".join(f"{seed}: {value}" for seed, value in runs.values)
    n = len(runs.values)
    return f"{runs.task.upper()} {runs.job} over {n} seed{'s' if n > 1 else ''}: {runs.mean:.2f}{spread} ({each})"


def write_markdown(directory, table):
    """RUN_DIR/seeds.md: a row per task with seed reruns; its own file, as results.md is extract's."""
    path = os.path.join(directory, "seeds.md")
    with atomic_write(path) as f:
        f.write(
            "# Seed reruns of each task's best configuration\n\n"
            f"Seed {scheduler.GRID_SEED} is the grid's own job (the one extract and the submission use); the others "
            "are reruns (TASK/seeds/). sd: sample standard deviation (n-1); CMRC2018 by its EM.\n\n"
            "| task | configuration | seeds | mean | sd | values |\n|---|---|---|---|---|---|\n"
        )
        for runs in table.values():
            sd = "-" if runs.sd is None else f"{runs.sd:.2f}"
            each = ", ".join(f"{seed}: {value}" for seed, value in runs.values)
            f.write(f"| {runs.task} | {runs.job} | {len(runs.values)} | {runs.mean:.2f} | {sd} | {each} |\n")
    return path


def has_reruns(directory):
    """Whether any task of the run folder has a seeds/ folder of reruns."""
    return any(os.path.isdir(os.path.join(directory, task, "seeds")) for task in scheduler.REPORT_ORDER)


def main(argv=None):
    args = scheduler.run_dir_parser(__doc__).parse_args(argv)
    directory = scheduler.run_dir_of(args, "seeds")
    if directory is None:
        return 2
    for runs in summary(directory, reruns_only=True).values():
        print(line(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
