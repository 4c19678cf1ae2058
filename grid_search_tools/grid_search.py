"""Run the CLUE hyper-parameter grid on every free GPU (or on CPU slots), then print the results and make
the leaderboard zip of the best jobs (make_submission.py).

    cd grid_search_tools && python grid_search.py MODEL [--data_dir DIR] [--device cpu --slots 2]
    python grid_search.py MODEL --slurm [--submit] [--partition P --time 12:00:00 ...]   # Slurm places the jobs

MODEL is a built-in PaddleNLP name or a local directory. Logs and results records go to
ROOT/MODEL_NAME/TASK/LR_BS_DROPOUT.{log,json} (ROOT: --output_root, default the current
directory). Restarting resumes: finished jobs are skipped at once. With --seeds N, each task's best job
then runs again with seeds 43 .. 42+N-1 (the grid's jobs use 42) under ROOT/MODEL_NAME/TASK/seeds/,
and the mean ± sd per task is printed and written to ROOT/MODEL_NAME/seeds.md (cluebench/seeds.py).
"""

import argparse
import os
import signal
import subprocess
import sys

from cluebench.fileio import DataError
from cluebench.grid import footprint, scheduler, seeds, slurm

HERE = os.path.dirname(os.path.abspath(__file__))


MAX_SLOTS = 256


def bounded(kind, low, inclusive=True):
    """An argparse type: a finite `kind` number >= low (> low if not inclusive)."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        # `value != value` catches nan; inf is no count of seconds or minutes either
        if (
            value is None
            or value != value
            or abs(value) == float("inf")
            or value < low
            or (value == low and not inclusive)
        ):
            raise argparse.ArgumentTypeError(
                f"must be {'an integer' if kind is int else 'a number'} "
                f"{'>=' if inclusive else '>'} {low}, not {text!r}"
            )
        return value

    return convert


def shard(text):
    """--shard i/n: the i-th of n parts, 0 <= i < n."""
    i, _, n = text.partition("/")
    if not (i.isdigit() and n.isdigit() and int(i) < int(n)):
        raise argparse.ArgumentTypeError(f"must be i/n with 0 <= i < n (e.g. 0/8), not {text!r}")
    return int(i), int(n)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="built-in model name or local model directory")
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    p.add_argument(
        "--slots", type=bounded(int, 1), help=f"with --device cpu: jobs run at once (default 2, at most {MAX_SLOTS})"
    )
    p.add_argument(
        "--max_jobs_per_gpu",
        type=bounded(int, 1),
        metavar="N",
        help="jobs sharing one card at most (default 1, as upstream: a fine-tuning job keeps its card "
        "busy, and a second one mostly time-slices with it); 2 can help small models",
    )
    p.add_argument("--data_dir", help="local CLUE files (<task>_public/ folders), passed to every job")
    p.add_argument("--output_root", default=".", help="where the MODEL_NAME/ folder of logs and records goes")
    p.add_argument("--tasks", nargs="+", choices=scheduler.CLS_TASKS + scheduler.READING_TASKS, help="only these tasks")
    p.add_argument("--learning_rates", nargs="+", type=bounded(float, 0, False), help="only these learning rates")
    p.add_argument(
        "--off_grid",
        action="store_true",
        help="let --learning_rates hold rates upstream's grid lacks (e.g. 0.005): jobs at them get each "
        "task's batch sizes and settings, as at its own rates",
    )
    p.add_argument("--batch_sizes", nargs="+", type=bounded(int, 1), help="only these batch sizes")
    p.add_argument(
        "--shard", type=shard, help="i/n: run the i-th of n disjoint parts of the grid (0-based), e.g. a Slurm array"
    )
    p.add_argument(
        "--retries",
        type=bounded(int, 0),
        default=2,
        help="retries of a failed job (data errors and time limits are not retried)",
    )
    p.add_argument("--poll", type=bounded(float, 0, False), default=1.0, help="seconds between scheduling rounds")
    p.add_argument(
        "--job_timeout",
        type=bounded(float, 0, False),
        metavar="MINUTES",
        help="end a job that runs longer (every process of it) and record it in failures.json; "
        "not retried, as it would run out of time again (default: no limit)",
    )
    p.add_argument(
        "--stop_grace",
        type=bounded(float, 0, False),
        metavar="SECONDS",
        help="on a stop (SIGINT/SIGTERM, --job_timeout), how long a job's processes get SIGTERM to write "
        "their resume checkpoint before SIGKILL (default: sized from the model: 30 s and its "
        "checkpoint at 50 MB/s, 55 s for ernie-3.0-medium-zh)",
    )
    p.add_argument(
        "--cpu_ranks",
        type=bounded(int, 1),
        metavar="K",
        help="with --device cpu: run each reading-comprehension job as K gloo ranks "
        "(paddle.distributed.launch), one slot each, as on K cards (default 1, at most --slots)",
    )
    p.add_argument(
        "--seeds",
        type=bounded(int, 1),
        default=1,
        metavar="N",
        help="after the grid, run each task's best configuration again with N-1 more seeds (43, 44, ...; "
        "the grid's jobs use 42) under MODEL_NAME/TASK/seeds/, and print each task's mean ± sd "
        f"(also in MODEL_NAME/seeds.md); the best job and the submission stay the grid's. At most "
        f"{seeds.MAX_SEEDS}; not with --slurm or --shard: run it without them once the grid has "
        "finished, and only the reruns run (default 1: no reruns)",
    )
    p.add_argument("--dry_run", action="store_true", help="print the jobs and exit")
    p.add_argument(
        "--check",
        action="store_true",
        help="first contact with this host: a few minutes of short jobs, a PASS/FAIL/SKIP table "
        "(python -m cluebench.check), and exit; -- --use_amp X adds the mixed-precision row",
    )
    p.add_argument("--skip_warmup", action="store_true", help="do not check data and model or build caches first")
    slurm.add_arguments(p)
    p.epilog = "Flags after '--' are passed to every training script, e.g. -- --max_steps 10"
    argv = sys.argv[1:] if argv is None else list(argv)
    job_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.job_args = job_args
    if args.seeds > seeds.MAX_SEEDS:
        p.error(f"--seeds {args.seeds}: at most {seeds.MAX_SEEDS}")
    if args.seeds > 1 and args.slurm:
        p.error(
            "--seeds is not supported with --slurm: once the array jobs have finished, run the same command "
            "without --slurm and only the seed reruns run"
        )
    if args.seeds > 1 and args.shard:  # each shard would rerun the best of a grid it has not finished
        p.error("--seeds is not supported with --shard: once every shard has finished, run without --shard")
    if args.seeds > 1 and any(a == "--seed" or a.startswith("--seed=") for a in job_args):
        p.error("--seeds sets each rerun's seed: do not pass --seed after '--'")
    slurm.check_arguments(p, args)
    if args.off_grid and not args.learning_rates:
        p.error("--off_grid needs --learning_rates: the rates to add")
    off_grid = scheduler.off_grid(args.learning_rates)  # without --off_grid a rate upstream lacks is likely a typo
    args.off_grid_rates = off_grid if args.off_grid else []
    if not scheduler.select(
        scheduler.full_grid(args.off_grid_rates), args.tasks, args.learning_rates, args.batch_sizes
    ):
        p.error(
            "--tasks, --learning_rates and --batch_sizes together select no job of the grid"
            + (
                f" ({' '.join(map(str, off_grid))} not in it: --off_grid adds jobs at such rates)"
                if off_grid and not args.off_grid
                else ""
            )
        )
    if args.slots is not None and args.device == "gpu":
        p.error("--slots is for --device cpu; on GPUs the jobs go wherever they fit")
    if (args.slots or 0) > MAX_SLOTS:
        p.error(f"--slots {args.slots}: at most {MAX_SLOTS}")
    args.slots = args.slots or 2
    if args.cpu_ranks is not None and args.device == "gpu":
        p.error("--cpu_ranks is for --device cpu; on GPUs a job's ranks are its cards")
    if (args.cpu_ranks or 1) > args.slots:
        p.error(f"--cpu_ranks {args.cpu_ranks}: at most --slots ({args.slots})")
    args.cpu_ranks = args.cpu_ranks or 1
    if args.max_jobs_per_gpu is not None and args.device == "cpu":
        p.error("--max_jobs_per_gpu is for --device gpu; on a CPU, --slots says how many jobs run")
    args.max_jobs_per_gpu = args.max_jobs_per_gpu or 1
    if os.path.exists(args.output_root) and not os.path.isdir(args.output_root):
        p.error(f"--output_root {args.output_root} is a file, not a directory")
    try:
        scheduler.model_label(args.model)
    except scheduler.SetupError as e:
        p.error(str(e))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.check:
        from cluebench import check  # a few minutes of short jobs instead of the grid

        amp = args.job_args[args.job_args.index("--use_amp") :][:2] if "--use_amp" in args.job_args else []
        return check.main(
            [args.model, "--device", args.device, *amp, *(["--data_dir", args.data_dir] if args.data_dir else [])]
        )
    os.environ["PYTHON"] = sys.executable  # the wrappers and extract_result.sh run this interpreter
    # jobs run in grid_search_tools/: paths the user gave relative to where they stand must not move
    if os.path.exists(args.model):
        args.model = os.path.abspath(args.model)
    args.output_root = os.path.abspath(args.output_root)
    jobs = scheduler.select(
        scheduler.full_grid(args.off_grid_rates), args.tasks, args.learning_rates, args.batch_sizes, args.shard
    )
    directory = scheduler.run_dir(args.model, args.output_root)
    print(f"{len(jobs)} jobs for {args.model}; logs and records under {directory}")
    for lr in args.off_grid_rates:
        count = sum(scheduler.same_rate(j.learning_rate, lr) for j in jobs)
        print(
            f"  learning rate {lr}: not in upstream's grid ({' '.join(map(str, scheduler.upstream_rates()))}); "
            f"{count} jobs at it, with each task's usual batch sizes and settings"
        )
    for job in jobs:
        print("  " + " ".join(job.command(args.model)))
    task_names = sorted({j.task for j in jobs})
    if args.seeds > 1:  # which configuration is best is known only once the grid has run
        print(
            f"after the grid: best config of each task × {args.seeds - 1} seeds ({len(task_names)} tasks, "
            f"{len(task_names) * (args.seeds - 1)} jobs, seeds {', '.join(map(str, seeds.rerun_seeds(args.seeds)))})"
            f" under {directory}/TASK/seeds/"
        )
    if args.dry_run or not jobs:
        return 0
    extra = (["--data_dir", os.path.abspath(args.data_dir)] if args.data_dir else []) + args.job_args
    if args.slurm:  # one array element per job, placed by Slurm: the scripts (and with --submit, sbatch)
        return slurm.main(args, jobs, directory, extra, HERE, sys.executable)
    pending = [j for j in jobs if not scheduler.is_complete(directory, j)]
    if not pending and args.seeds > 1:  # a finished grid: its seed reruns are known now (for warm-up, shape)
        reruns = seeds.rerun_jobs(directory, args.seeds, task_names, args.off_grid_rates)
        pending = [j for j in reruns if not scheduler.is_complete(directory, j)]
    if pending and not args.skip_warmup:
        command = [
            sys.executable,
            os.path.join(HERE, "warmup_dataset_and_model.py"),
            args.model,
            "--device",
            args.device,
            "--tasks",
            *sorted({j.task for j in pending}),
        ]
        if args.data_dir:
            command += ["--data_dir", args.data_dir]
        code = subprocess.run(command).returncode
        if code != 0:  # it said why in one line; bad data or model (2) stays a bad-input exit
            return 2 if code == 2 else 1
    # what a job needs (GPU and host memory, checkpoint size) follows from the model's shape
    shape, warning = footprint.model_shape(args.model) if pending else (footprint.BASE, None)
    if warning:
        print(f"grid_search: warning: {warning}", flush=True)
    stop_grace = args.stop_grace or footprint.stop_grace(shape)
    if args.device == "gpu":

        def pool():  # NVML is imported only when some job is pending
            import pynvml

            gpus = scheduler.open_gpus(
                pynvml,
                footprint.Footprints(shape, os.path.join(directory, footprint.FOOTPRINTS)),
                max_jobs_per_gpu=args.max_jobs_per_gpu,
            )
            print(gpus.describe(), flush=True)
            return gpus
    else:
        pool = scheduler.CpuPool(args.slots, ranks=args.cpu_ranks)
    search = scheduler.Scheduler(
        jobs,
        directory,
        args.model,
        pool,
        scheduler.ProcessLauncher(HERE),
        device=args.device,
        extra_args=extra,
        retries=args.retries,
        poll=args.poll,
        job_timeout=args.job_timeout,
        stop_grace=stop_grace,
        out=lambda line: print(line, flush=True),
    )
    handlers = {sig: signal.signal(sig, search.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        failed = search.run()
        if failed is not None and args.seeds > 1:  # then the best of each task, as jobs of the same scheduler
            search.jobs = seeds.rerun_jobs(directory, args.seeds, task_names, args.off_grid_rates)
            print(
                f"seed reruns: {len(search.jobs)} jobs (best configuration of each task × {args.seeds - 1} seeds)",
                flush=True,
            )
            failed = search.run()  # its failures: the grid's and the reruns', in one failures.json
    except (scheduler.SetupError, DataError) as e:  # no GPU; a file where the grid writes (failures.json)
        print(f"grid_search: error: {e}", file=sys.stderr)
        return 2
    finally:  # an in-process caller (a test) gets its own handlers back
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if failed is None:
        print("stopped; run the same command again to resume")
        return 130
    if args.seeds > 1:  # before extract's tables: stdout ends with them, as upstream's
        table = seeds.summary(directory, reruns_only=True)
        for runs in table.values():
            print(seeds.line(runs))
        print(f"(seed reruns: {seeds.write_markdown(directory, table)})")
    print("All done!" if not failed else f"All done, but {failed} jobs failed: see {directory}/failures.json")
    subprocess.run(["bash", os.path.join(HERE, "extract_result.sh"), args.model, "--output_root", args.output_root])
    # The leaderboard zip of the best jobs: a partial grid gives a partial zip, its missing tasks said, the
    # exit status unchanged; only a zip that fails the check of --data_dir or cannot be written (its exit 1)
    # makes it 1. Its lines go to stderr: stdout ends with extract's tables, as upstream's, for what reads them.
    command = [sys.executable, os.path.join(HERE, "make_submission.py"), args.model, "--output_root", args.output_root]
    if args.data_dir:
        command += ["--data_dir", os.path.abspath(args.data_dir)]
    sys.stdout.flush()
    checked = subprocess.run(command, stdout=2).returncode
    return 1 if failed or checked == 1 else 0


if __name__ == "__main__":
    sys.exit(main())
