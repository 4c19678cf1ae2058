"""The first scheduling round of the full 134-job grid on a fake 64-core, 512 GiB host with 8 empty
cards: how many jobs start, how many share a card, what they claim on the cards and of the host, and
how many CPU threads each process gets.

    .venv/bin/python benchmarks/bench_placements.py [--before DIR]

--before DIR: also the same round with the scheduler of another checkout (e.g. `git worktree add
/tmp/before 695aa6d`), which judged cards by a fixed base-size estimate, counted no host memory and
left every process all the host's cores; its host and GPU needs are then the estimates of this one.
"""

import argparse
import collections
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # for test_grid.py
from bench_scheduler import MEDIUM  # noqa: E402
from cluebench.grid import footprint, scheduler as grid  # noqa: E402
from test_grid import FakeLauncher, FakeNVML, fake_host  # noqa: E402

LARGE = footprint.Shape(24, 1024, 4096, 21128, 16, source="a 24-layer config (roberta-wwm-ext-large)")
CORES, HOST_GIB = 64, 512


def load_package(checkout):
    """The cluebench package of another checkout, imported under another name beside this one."""
    spec = importlib.util.spec_from_file_location(
        "before_cluebench",
        os.path.join(checkout, "cluebench", "__init__.py"),
        submodule_search_locations=[os.path.join(checkout, "cluebench")],
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules["before_cluebench"] = package
    spec.loader.exec_module(package)
    return importlib.import_module("before_cluebench.grid")


def first_round(module, pool, directory):
    """The processes the scheduler started in its first round."""
    launcher = FakeLauncher(directory, pool.nvml, duration=10**6)
    scheduler = module.Scheduler(module.full_grid(), directory, "model", pool, launcher, out=lambda line: None)
    scheduler.sleep = lambda s: scheduler.request_stop(15)
    scheduler.run()
    return launcher


def row(label, gib, shape, max_jobs, launcher, threads):
    per_card = collections.Counter(c for p in launcher.started for c in p.cards)
    gpu = collections.defaultdict(float)
    host = 0.0
    for p in launcher.started:
        job = launcher.job_of(p.argv)
        job = next(j for j in grid.full_grid() if (j.task, j.name) == (job.task, job.name))
        k = len(p.cards)
        host += footprint.host_gib(shape, k)
        for c in p.cards:
            gpu[c] += footprint.gpu_gib(shape, job, k)
    processes = sum(len(p.cards) for p in launcher.started)
    return (
        f"| {label} | 8 x {gib} GiB | {shape.source} | {max_jobs} | {len(launcher.started)} | "
        f"{min(per_card.values())}-{max(per_card.values())} | {max(gpu.values()):.1f} | {host:.0f} | "
        f"{threads} ({processes} processes) |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="a checkout of the scheduler to compare with")
    opts = parser.parse_args()
    before = load_package(opts.before) if opts.before else None
    print(
        f"First round of the full grid, fake host of {CORES} cores and {HOST_GIB} GiB; GPU and host columns: "
        f"what the jobs started need by this checkout's estimate for the model\n"
    )
    print(
        "| scheduler | cards | model | max jobs a card | jobs started | jobs a card | GPU GiB on the fullest card "
        "| host GiB | threads a process |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    import tempfile

    for gib in (32, 80):
        for shape in (MEDIUM, LARGE):
            if before:
                with tempfile.TemporaryDirectory() as directory:
                    launcher = first_round(before, before.GpuPool(FakeNVML([gib] * 8)), directory)
                print(row("before", gib, shape, "no cap", launcher, f"all {CORES} cores"))
            for max_jobs in (1, 2, 4):
                pool = grid.GpuPool(
                    FakeNVML([gib] * 8),
                    footprint.Footprints(shape),
                    max_jobs_per_gpu=max_jobs,
                    host=fake_host(HOST_GIB),
                    cores=CORES,
                    environ={},
                )
                with tempfile.TemporaryDirectory() as directory:
                    launcher = first_round(grid, pool, directory)
                print(row("now", gib, shape, max_jobs, launcher, pool.threads))


if __name__ == "__main__":
    main()
