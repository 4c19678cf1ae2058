"""The CLUE hyper-parameter grid, where its logs and records live, and the scheduler that runs it.

The scheduler keeps every card busy: it polls every second, starts as many jobs as fit, judges a
card by its free memory, what running jobs have claimed on it (the model's footprint: footprint.py)
and a cap of jobs, and the host by its memory and cores (GpuPool), gives reading-comprehension
jobs several cards, retries failures (an out-of-memory one with half the micro-batch), releases
claims however a job ends, and stops cleanly on SIGINT/SIGTERM. A job whose results record is
complete is done: restarting skips it before any GPU is looked at.

Not retried, since a retry would fail the same way: a data error (exit status 2, the training
scripts' bad-input status, or an `error: ` line in the log's tail) and a job that ran past the
time limit (job_timeout minutes; it is ended like a stopped one). Both go to failures.json.
"""

import argparse
import collections
import dataclasses
import os
import re
import sys
import time

from .. import results, tasks
from ..fileio import Busy, is_local_path, write_json
from . import footprint, processes
from .cards import ORDER as CUDA_ORDER, CardError, visible_cards

# ---------------------------------------------------------------- the grid (upstream's; rows from the registry)
CLS_TASKS = tasks.names("classification", in_grid=True)
READING_TASKS = tasks.names("reading", in_grid=True)
REPORT_ORDER = tasks.REPORT_ORDER
GRID_SEED = 42  # the wrappers' --seed: every grid job's; a seed rerun (grid_search.py --seeds) has another


@dataclasses.dataclass(frozen=True)
class Job:
    task: str
    learning_rate: float
    batch_size: int  # effective batch: per card for classification, global for reading comprehension
    accumulation: int
    dropout: float = 0.1
    epochs: int = 0
    max_seq_length: int = 0
    seed: int = GRID_SEED

    @property
    def is_reading(self):
        return self.task in READING_TASKS

    @property
    def is_rerun(self):
        return self.seed != GRID_SEED

    @property
    def name(self):
        """LR_BS_DROPOUT as upstream, numbers as Python's str() writes them (1e-05, 0.1); a seed rerun's
        LR_BS_DROPOUT_sSEED."""
        name = f"{self.learning_rate}_{self.batch_size}_{self.dropout}"
        return f"{name}_s{self.seed}" if self.is_rerun else name

    def command(self, model):
        """The wrapper's argv (positional arguments of spec §7/§8, then a rerun's --rerun_seed, which the
        wrapper takes itself); no shell ever parses it."""
        rerun = ["--rerun_seed", str(self.seed)] if self.is_rerun else []
        if self.is_reading:
            return [
                "bash",
                "run_mrc.sh",
                model,
                self.task,
                str(self.batch_size),
                str(self.learning_rate),
                str(self.accumulation),
            ] + rerun
        return [
            "bash",
            "run_cls.sh",
            self.task,
            str(self.learning_rate),
            str(self.batch_size),
            str(self.epochs),
            str(self.max_seq_length),
            model,
            str(self.accumulation),
            str(self.dropout),
        ] + rerun


def full_grid(off_grid_rates=()):
    """The 134 jobs of the upstream grid, in its order: each classification task over learning rates,
    batch sizes and its settings; then the extra batch sizes (CLUEWSC2020's 8); then the reading tasks,
    learning rate by batch size. off_grid_rates (see off_grid) add, after them, each task's jobs at each
    such rate, with the batch sizes and settings its own rows have."""
    jobs = _upstream_grid()
    for lr in off_grid_rates:  # after upstream's jobs, so that its order (and its shards) stay the same
        for task in CLS_TASKS:
            g = tasks.get(task).grid
            jobs += [
                Job(task, lr, bs, gas, dropout, epochs, seq)
                for bs in g.batch_sizes + g.extra_batch_sizes
                for epochs, seq, gas, dropout in g.settings
            ]
        for bs in tasks.get(READING_TASKS[0]).grid.batch_sizes:
            for task in READING_TASKS:
                g = tasks.get(task).grid
                jobs.append(Job(task, lr, bs, g.accumulation_for(bs), 0.1, g.epochs, g.max_seq_length))
    return jobs


def same_rate(a, b):
    return abs(a - b) < 1e-12


def upstream_rates():
    """Every learning rate some task of upstream's grid has (1e-05 to 5e-05)."""
    return sorted({j.learning_rate for j in _upstream_grid()})


def off_grid(learning_rates):
    """The rates of learning_rates (e.g. --learning_rates) that no task of upstream's grid has, each once,
    in their order. A rate some task has (5e-05: classification only) stays a plain filter, as upstream."""
    upstream, off = upstream_rates(), []
    for lr in learning_rates or ():
        if not any(same_rate(lr, u) for u in upstream + off):
            off.append(lr)
    return off


def _upstream_grid():
    jobs = []
    for task in CLS_TASKS:
        g = tasks.get(task).grid
        jobs += [
            Job(task, lr, bs, gas, dropout, epochs, seq)
            for lr in g.learning_rates
            for bs in g.batch_sizes
            for epochs, seq, gas, dropout in g.settings
        ]
    for task in CLS_TASKS:
        g = tasks.get(task).grid
        jobs += [
            Job(task, lr, bs, gas, dropout, epochs, seq)
            for bs in g.extra_batch_sizes
            for lr in g.learning_rates
            for epochs, seq, gas, dropout in g.settings
        ]
    first = tasks.get(READING_TASKS[0]).grid  # the reading tasks share their learning rates and batch sizes
    for lr in first.learning_rates:
        for bs in first.batch_sizes:
            for task in READING_TASKS:
                g = tasks.get(task).grid
                jobs.append(Job(task, lr, bs, g.accumulation_for(bs), 0.1, g.epochs, g.max_seq_length))
    return jobs


def select(jobs, tasks=None, learning_rates=None, batch_sizes=None, shard=None):
    """Narrow the grid; shard=(i, n) keeps every n-th job from the i-th, a disjoint, fixed part."""
    kept = [
        j
        for j in jobs
        if (not tasks or j.task in tasks)
        and (not learning_rates or any(same_rate(j.learning_rate, lr) for lr in learning_rates))
        and (not batch_sizes or j.batch_size in batch_sizes)
    ]
    if shard:
        i, n = shard
        kept = [j for k, j in enumerate(kept) if k % n == i]
    return kept


# ---------------------------------------------------------------- where results live
class SetupError(Exception):
    """A machine or flag problem the user must fix; grid_search.py says it in one line, exit status 2."""


def _holds_model(path):
    return any(os.path.isfile(os.path.join(path, name)) for name in ("config.json", "model_config.json"))


def model_label(model):
    """The folder named after the model: a local directory's own name (never a path inside it), else the name
    itself (`hfl/roberta-wwm-ext`; the folder a previous run of it made is not a model: it has no config).
    A path that does not exist is a SetupError, as a folder named after the typo would be made there; so
    is a name whose parent folder holds models (`models/mymodle`)."""
    parent = os.path.dirname(model.rstrip("/"))
    if os.path.isdir(model) and (is_local_path(model) or _holds_model(model)):
        label = os.path.basename(os.path.normpath(model))
    elif (
        is_local_path(model)
        or parent
        and os.path.isdir(parent)
        and any(_holds_model(os.path.join(parent, entry)) for entry in os.listdir(parent))
    ):
        raise SetupError(f"model directory not found: {model}")
    else:
        label = model
    if label in ("", ".", "..", "/"):
        raise SetupError(f"{model!r} names no model")
    return label


def run_dir(model, root="."):
    return os.path.join(root, model_label(model))


def existing_run_dir(model, root="."):
    """run_dir of a grid that has run: a misspelt model or root is a SetupError, not an empty table."""
    directory = run_dir(model, root)
    if not os.path.isdir(directory):
        raise SetupError(f"no results folder {directory} (for model {model!r} under {os.path.abspath(root)})")
    return directory


def run_dir_parser(description, prog=None):
    """The `MODEL [--output_root ROOT]` command line of the tools that read a grid's run folder."""
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("model")
    p.add_argument("--output_root", default=".")
    return p


def run_dir_of(args, tool):
    """existing_run_dir of the parsed MODEL and ROOT, or None once `TOOL: error: ...` is printed (exit 2)."""
    try:
        return existing_run_dir(args.model, args.output_root)
    except SetupError as e:
        print(f"{tool}: error: {e}", file=sys.stderr)
        return None


def job_stem(directory, job):
    """RUN_DIR/TASK/NAME, a seed rerun's in TASK/seeds/, where best_jobs.job_files never looks: a rerun is
    never a candidate for the best (job_paths.sh makes the same paths)."""
    return os.path.join(directory, job.task, *(["seeds"] if job.is_rerun else []), job.name)


def log_path(directory, job):
    return job_stem(directory, job) + ".log"


def record_path(directory, job):
    return job_stem(directory, job) + ".json"


def is_complete(directory, job):
    return results.read_record(record_path(directory, job)) is not None


# ---------------------------------------------------------------- resources
GIB = 1 << 30


def work_estimate(job):
    """A job's training work in 128-token sequences of a batch of 32: examples x epochs x choices, longer
    sequences costing more (attention), small batches a little more per sequence. Only ratios matter:
    the scheduler starts the biggest jobs first, so no long job is left to run alone at the end."""
    spec = tasks.get(job.task)  # its official training-set size: CMRC2018 in windows, CHID in blanks
    length_cost = job.max_seq_length / 128 * (1 + job.max_seq_length / 512) / 1.25
    batch_cost = (1 + 4 / job.batch_size) / (1 + 4 / 32)
    return spec.train_examples * job.epochs * spec.choices * length_cost * batch_cost


def card_options(job, wanted):
    """Card counts a reading-comprehension job can split over, most first: they must divide both the
    global batch and the accumulation steps, so each card keeps the same micro-batch."""
    return [k for k in range(wanted, 0, -1) if job.batch_size % k == 0 and job.accumulation % k == 0]


# (cards, GiB of GPU memory claimed on each, GiB of host memory, CPU threads of each of its processes)
Placement = collections.namedtuple("Placement", "cards gpu_gib host_gib threads")


def usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def open_gpus(nvml, footprints=None, **options):
    """A GpuPool over the cards NVML sees (those of CUDA_VISIBLE_DEVICES if set), or a SetupError saying
    why there is none."""
    try:
        gpus = GpuPool(nvml, footprints, **options)
    except nvml.NVMLError as e:
        raise SetupError(f"no NVIDIA GPU can be used ({e}); on a CPU use --device cpu --slots N") from None
    except CardError as e:
        raise SetupError(str(e)) from None
    if not len(gpus):
        raise SetupError("NVML sees no GPU; on a CPU use --device cpu --slots N")
    return gpus


class GpuPool:
    """Cards seen through NVML (the real pynvml module or a fake one), and the host they are in.

    A job starts where its card(s) have room by NVML's free memory and by the claims of the running jobs
    (which NVML may not show yet), where fewer than max_jobs_per_gpu jobs run, and while the host has
    room: available memory (psutil, and the host claims of running jobs) and CPU threads. Each process
    gets an equal share of the cores, sized for every card running max_jobs_per_gpu processes."""

    def __init__(
        self,
        nvml,
        footprints=None,
        *,
        max_jobs_per_gpu=1,
        host=None,
        cores=None,
        environ=None,
        margin_gib=1.0,
        host_margin_gib=2.0,
    ):
        self.nvml, self.margin, self.host_margin = nvml, margin_gib, host_margin_gib
        self.footprints = footprints or footprint.Footprints()
        self.max_jobs = max_jobs_per_gpu
        if host is None:
            import psutil

            host = psutil
        self.host = host
        nvml.nvmlInit()
        self.cards = visible_cards(nvml, os.environ if environ is None else environ)
        self.cores = cores or usable_cores()
        self.threads = max(1, self.cores // max(1, len(self.cards) * max_jobs_per_gpu))

    def __len__(self):
        return len(self.cards)

    def names(self, positions):
        """A job's CUDA_VISIBLE_DEVICES: its cards in the user's terms (ordinals or UUIDs)."""
        return ",".join(self.cards[c].name for c in positions)

    def environment(self, placement):
        return {
            "CUDA_VISIBLE_DEVICES": self.names(placement.cards),
            **CUDA_ORDER,
            "OMP_NUM_THREADS": str(placement.threads),
            "FLAGS_allocator_strategy": "auto_growth",
        }

    def describe(self):
        shape = self.footprints.shape
        return (
            f"{len(self)} GPUs ({self.names(range(len(self)))}), at most {self.max_jobs} job(s) a card, "
            f"{self.threads} CPU threads a process of {self.cores} cores; model: {shape.describe()}"
        )

    def refresh(self):
        """Read (total, free) GiB per card and of the host once per scheduling round; within a round the
        claims of the jobs just started stand for the memory NVML and psutil do not show yet."""
        self.memory = [
            (info.total / GIB, info.free / GIB)
            for info in (self.nvml.nvmlDeviceGetMemoryInfo(c.handle) for c in self.cards)
        ]
        vm = self.host.virtual_memory()
        self.host_memory = (vm.total / GIB, vm.available / GIB)

    def place(self, job, claims, running_on, host_claimed=0.0, threads_used=0):
        """A Placement for the job, or None if it does not fit now. A job claiming more than a whole
        card (or the host) by the estimate may still fit: it runs alone, and its real use decides (an
        out-of-memory failure halves its micro-batch)."""
        host_total, host_free = self.host_memory
        host_room = min(host_free, host_total - host_claimed) - self.host_margin
        room = [
            min(free, total - claims[c]) - self.margin if running_on[c] < self.max_jobs else -1.0
            for c, (total, free) in enumerate(self.memory)
        ]
        order = sorted(range(len(self.cards)), key=lambda c: (-room[c], running_on[c], c))
        for k in card_options(job, tasks.get(job.task).grid.cards) if job.is_reading else [1]:
            host_need = min(self.footprints.host(job, k), host_total - self.host_margin)
            if host_need > host_room or threads_used + k * self.threads > max(self.cores, self.threads):
                continue
            fitting = [c for c in order if room[c] >= self.claim(job, [c] * k)]
            if len(fitting) >= k:
                return Placement(fitting[:k], self.claim(job, fitting[:k]), host_need, self.threads)
        return None

    def claim(self, job, positions):
        """GiB the job claims on each of its cards: its footprint, at most a whole card (less the margin)."""
        return min(self.footprints.gpu(job, len(positions)), min(self.memory[c][0] for c in positions) - self.margin)

    def learn(self, running, pids_of, now, out):
        """Read NVML's per-process memory of the jobs that have run a minute: later jobs of the same shape
        claim what it shows. Where NVML cannot tell (no permission, another PID namespace), the estimate
        stays. Returns whether anything new was learned."""
        learned = False
        for r in running:
            if now - r.started < footprint.LEARN_AFTER_S:
                continue
            pids = pids_of(r.process)
            used = 0.0
            for c in r.cards:
                try:
                    processes = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.cards[c].handle)
                except self.nvml.NVMLError:
                    return learned
                used = max(used, sum(p.usedGpuMemory or 0 for p in processes if p.pid in pids) / GIB)
            if used and self.footprints.learn(r.job, len(r.cards), used):
                learned = True
                out(
                    f"> learned: a process of {r.job.task} {r.job.name} on {len(r.cards)} card(s) uses "
                    f"{used:.1f} GiB; its shape ({footprint.key(r.job, len(r.cards))}) now claims "
                    f"{self.footprints.gpu(r.job, len(r.cards)):.1f} GiB"
                )
        return learned


class CpuPool:
    """N CPU slots, one process each: a classification job takes one; with ranks=k > 1 a reading-comprehension
    job takes up to k (as many as divide its batch and accumulation, card_options, and are free), one gloo
    rank on each: the CPU stand-in for a multi-card job."""

    def __init__(self, slots, ranks=1):
        self.slots, self.ranks = slots, ranks

    def __len__(self):
        return self.slots

    def refresh(self):
        pass

    def names(self, positions):
        return ",".join(map(str, positions))

    def environment(self, placement):
        # several ranks: unset (None), as paddle.distributed.launch takes an empty CUDA_VISIBLE_DEVICES
        # for one GPU named "" and fails to place a second rank
        hidden = "" if len(placement.cards) == 1 else None
        return {"CUDA_VISIBLE_DEVICES": hidden, "OMP_NUM_THREADS": str(placement.threads)}

    def place(self, job, claims, running_on, host_claimed=0.0, threads_used=0):
        free = [s for s in range(self.slots) if running_on[s] == 0]
        fitting = [k for k in (card_options(job, self.ranks) if job.is_reading else [1]) if k <= len(free)]
        # threads of each process: every slot's share of the cores, ranks being a process each
        return Placement(free[: fitting[0]], 0.0, 0.0, max(1, usable_cores() // self.slots)) if fitting else None


# ---------------------------------------------------------------- running jobs
# Out of GPU memory, in every form it takes in a log. On a crowded card it often shows at start-up as
# a cuBLAS or cuDNN handle that cannot be made; NCCL reports it as an "unhandled cuda error", which
# counts only beside one of the others (or its own "out of memory"): alone it is a broken link.
OOM_PATTERNS = {
    "paddle": re.compile(r"ResourceExhausted|Out of memory error on GPU", re.I),
    "cuda": re.compile(r"\bout of memory\b|cudaErrorMemoryAllocation|CUDA error\(2\)|CUDA_ERROR_OUT_OF_MEMORY", re.I),
    "cublas": re.compile(r"CUBLAS_STATUS_(?:ALLOC_FAILED|NOT_INITIALIZED)"),
    "cudnn": re.compile(r"CUDNN_STATUS_(?:ALLOC_FAILED|NOT_INITIALIZED)"),
}


def out_of_memory(lines):
    """The name of the first out-of-memory form in a log tail, or None."""
    text = "".join(lines)
    return next((name for name, pattern in OOM_PATTERNS.items() if pattern.search(text)), None)


# The one line of bad input: `error: ...` from the training scripts, `PROG: error: ...` from argparse,
# the wrappers and the warm-up.
ERROR_LINE = re.compile(r"^(?:[\w.-]+: )?error: ")
DATA_ERROR_EXIT = 2
BUSY_WAIT_S = 120  # before a job whose output directory is held by another run is tried again
DEFAULT_STOP_GRACE = 120.0  # seconds a stopped job has to write its resume checkpoint before SIGKILL


def wrapper_messages(process):
    """What the wrapper wrote on stderr (ProcessLauncher's processes; others have none), closed after."""
    messages = getattr(process, "messages", None)
    if messages is None:
        return []
    with messages:
        messages.seek(0)
        return messages.read(1 << 16).decode("utf-8", "replace").splitlines(keepends=True)[-15:]


ATTEMPT = "---- another attempt"  # job_paths.sh's line between the attempts of a job in one log


TAIL_BYTES, TAIL_LINES, TAIL_LINE_CHARS = 1 << 16, 20, 500


def tail(path, lines=TAIL_LINES, start=0):
    """The last lines of a job's log (read from its last 64 KiB, and from byte `start` on), from its
    latest attempt only."""
    try:
        with open(path, "rb") as f:
            f.seek(max(start, f.seek(0, os.SEEK_END) - TAIL_BYTES))
            last = f.read(TAIL_BYTES).decode("utf-8", "replace").splitlines(keepends=True)[-lines:]
    except OSError:
        return []
    starts = [i for i, line in enumerate(last) if line.startswith(ATTEMPT)]
    return last[starts[-1] + 1 :] if starts else last


def kept_tail(lines):
    """What failures.json keeps of a log's tail: its last TAIL_LINES lines, each cut to TAIL_LINE_CHARS, so
    a job that wrote megabytes on one line costs a few KiB there (tail() reads at most 64 KiB a file)."""
    return [line.rstrip("\n")[:TAIL_LINE_CHARS] for line in lines[-TAIL_LINES:]]


def rank_logs(directory, job):
    """{path: size} of the rank logs of a multi-card job (paddle.distributed.launch's workerlog.N, where
    a rank's out-of-memory error is; the job's own log has the launcher's lines). Launch appends to
    them: the sizes at a job's start mark where its attempt begins."""
    ranks = job_stem(directory, job) + ".ranks"
    if os.path.islink(ranks) or not os.path.isdir(ranks):
        return {}
    paths = [os.path.join(ranks, n) for n in sorted(os.listdir(ranks))[:256] if re.fullmatch(r"workerlog\.\d+", n)]
    return {p: os.path.getsize(p) for p in paths if os.path.isfile(p) and not os.path.islink(p)}


def rank_tails(directory, job, since):
    """The last lines each rank logged in this attempt (since: rank_logs at its start)."""
    return [line for path in rank_logs(directory, job) for line in tail(path, 8, since.get(path, 0))]


class ProcessLauncher:
    """Starts a wrapper in a session of its own, with a job token its descendants inherit, so a stop
    reaches every process of the job, ranks in other sessions too (processes.py)."""

    def __init__(self, tools_dir):
        self.tools_dir = tools_dir

    def start(self, argv, env):
        return processes.start(argv, env, self.tools_dir)

    @staticmethod
    def pids(process):
        return processes.job_processes(process)

    @staticmethod
    def stop(process, grace=DEFAULT_STOP_GRACE):
        """SIGTERM to every process of the job, SIGKILL after grace; returns the PIDs that survived
        (normally none) once no process of the job runs. The wrapper shell dies at once, while its
        Python first finishes the step and writes its checkpoint: waiting for the wrapper alone left
        that write running."""
        return processes.stop(process, grace)

    @staticmethod
    def stop_all(running, grace=DEFAULT_STOP_GRACE):
        """stop() of many jobs at once, with one deadline; their survivors, in order."""
        return processes.stop_all(running, grace)


group_running = processes.group_running


@dataclasses.dataclass
class Running:
    job: Job
    process: object
    cards: list
    placement: Placement
    started: float
    rank_logs: dict = dataclasses.field(default_factory=dict)  # their sizes when the job started


class Scheduler:
    """pool: a GpuPool or CpuPool, or a function making one (called only if some job is pending)."""

    def __init__(
        self,
        jobs,
        directory,
        model,
        pool,
        launcher,
        *,
        device="gpu",
        extra_args=(),
        retries=2,
        poll=1.0,
        job_timeout=None,
        stop_grace=DEFAULT_STOP_GRACE,
        clock=time.monotonic,
        sleep=time.sleep,
        out=print,
    ):
        self.jobs, self.dir, self.model, self.pool, self.launcher = list(jobs), directory, model, pool, launcher
        self.device, self.extra_args, self.retries, self.poll = device, list(extra_args), retries, poll
        self.job_timeout = job_timeout  # minutes, or None: no limit
        self.stop_grace = stop_grace  # seconds a stopped job has for its checkpoint, then SIGKILL
        self.lingering = []  # stopped jobs with processes that survived SIGKILL: their claims stay
        self.clock, self.sleep, self.out = clock, sleep, out
        self.claims, self.running_on = [], []  # per card: GiB claimed, jobs running
        self.host_claimed, self.threads_used = 0.0, 0
        self.running = []
        self.attempts = collections.Counter()
        self.failures = {}  # job name -> reason, for the summary and the state file
        self.stopping = None
        self.fresh = set()  # jobs whose resume checkpoint no longer fits them (new accumulation)
        self.not_before = {}  # job -> clock time: a job whose output directory another run holds waits

    def request_stop(self, signum, frame=None):
        self.stopping = signum

    def run(self):
        """Run every job that has no complete record; returns the number of jobs that failed for good."""
        # longest first (ties in grid order): the classic rule against a long job finishing last, alone
        pending = collections.deque(
            sorted((j for j in self.jobs if not is_complete(self.dir, j)), key=lambda j: -work_estimate(j))
        )
        self.out(f"{len(self.jobs) - len(pending)} of {len(self.jobs)} jobs already complete; {len(pending)} to run")
        if not pending:
            return 0
        if callable(self.pool):  # a factory: GPUs are looked at only when there is work for them
            self.pool = self.pool()
        self.claims, self.running_on = [0.0] * len(self.pool), [0] * len(self.pool)
        while (pending or self.running) and self.stopping is None:
            self._reap(pending)
            if hasattr(self.pool, "learn") and self.pool.learn(self.running, self._pids, self.clock(), self.out):
                self._reclaim()
            self._launch(pending)
            if pending or self.running:
                self.sleep(self.poll)
        if self.stopping is not None:
            self.out(
                f"stopping on signal {self.stopping}: ending {len(self.running)} running jobs "
                f"(grace {self.stop_grace:g} s for their checkpoints)"
            )
            running = list(self.running)  # all at once: a grid of 8 jobs must not take 8 graces
            for r, survivors in zip(running, self._stop(running)):
                self._ended(r, survivors)
            self._write_state()
            return None
        self._write_state()
        return len(self.failures)

    def _launch(self, pending):
        if pending:
            self.pool.refresh()
        for job in list(pending):
            if self.not_before.get(job, 0) > self.clock():
                continue
            placed = self.pool.place(job, self.claims, self.running_on, self.host_claimed, self.threads_used)
            if placed is None:
                continue
            env = {
                "CLUE_RUN_DIR": self.dir,
                "CLUE_CARDS": str(len(placed.cards)),
                "PYTHON": sys.executable,
                "PYTHONUNBUFFERED": "1",
                **self.pool.environment(placed),
            }
            argv = job.command(self.model) + ["--device", self.device] + self.extra_args
            if job in self.fresh:  # a killed or failed job otherwise resumes from its checkpoint
                argv += ["--resume", "never"]
            os.makedirs(os.path.dirname(log_path(self.dir, job)), exist_ok=True)
            logs = rank_logs(self.dir, job)
            process = self.launcher.start(argv, env)
            self._account(placed, +1)
            self.running.append(Running(job, process, placed.cards, placed, self.clock(), logs))
            pending.remove(job)
            where = f"{self.device} {self.pool.names(placed.cards)}"
            self.out(f"> start {job.task} {job.name} (accumulation {job.accumulation}) on {where}")

    def _account(self, placed, sign):
        for c in placed.cards:
            self.claims[c] += sign * placed.gpu_gib
            self.running_on[c] += sign
        self.host_claimed += sign * placed.host_gib
        self.threads_used += sign * placed.threads * len(placed.cards)

    def _reclaim(self):
        """Running jobs of a shape whose footprint is now known claim that instead of the estimate."""
        for r in self.running:
            claim = self.pool.claim(r.job, r.cards)
            if claim != r.placement.gpu_gib:
                self._account(r.placement, -1)
                r.placement = r.placement._replace(gpu_gib=claim)
                self._account(r.placement, +1)

    def _release(self, r):
        self._account(r.placement, -1)
        (self.running if r in self.running else self.lingering).remove(r)

    def _stop(self, running):
        """Stop these jobs together, one deadline for all; per job, the PIDs that survived SIGKILL."""
        stop_all = getattr(self.launcher, "stop_all", None)
        if stop_all:
            survivors = stop_all([r.process for r in running], grace=self.stop_grace)
        else:  # a launcher that stops one job at a time (as the tests' fake)
            survivors = [self.launcher.stop(r.process, grace=self.stop_grace) for r in running]
        return [sorted(s or []) for s in survivors]

    def _ended(self, r, survivors):
        """A stopped job's cards are free once no process of it is left; until then they stay claimed."""
        if not survivors:
            self._release(r)
            return
        self.running.remove(r)
        self.lingering.append(r)
        self.out(
            f"> {r.job.task} {r.job.name}: processes {', '.join(map(str, survivors))} survived SIGKILL; "
            f"{self.device} {self.pool.names(r.cards)} stays claimed until they exit"
        )

    def _release_lingering(self):
        pids_of = getattr(self.launcher, "pids", None)
        for r in list(self.lingering):
            if not (pids_of and pids_of(r.process)):
                self.out(
                    f"> {r.job.task} {r.job.name}: its last processes have exited; "
                    f"{self.device} {self.pool.names(r.cards)} released"
                )
                self._release(r)

    def _pids(self, process):
        """The PIDs of a job's processes (its ranks too, where the launcher can tell)."""
        pids_of = getattr(self.launcher, "pids", None)
        return set(pids_of(process)) if pids_of else {process.pid}

    def _reap(self, pending):
        ended = False
        self._release_lingering()
        for r in list(self.running):
            code = r.process.poll()
            minutes = (self.clock() - r.started) / 60
            timed_out = code is None and self.job_timeout is not None and minutes > self.job_timeout
            if code is None and not timed_out:
                continue
            ended = True
            pids_of = getattr(self.launcher, "pids", None)
            if timed_out or pids_of and pids_of(r.process):
                # past its time, or ended leaving processes behind (a rank whose launcher died): stop
                # every process of it, as on a signal, before its cards are given to another job
                self._ended(r, self._stop([r])[0])
            else:
                self._release(r)
            job = r.job
            key = job.task + "/" + job.name
            if not timed_out and code == 0 and is_complete(self.dir, job):
                self.failures.pop(key, None)
                self.out(f"> done {job.task} {job.name} in {minutes:.1f} min")
                continue
            lines = tail(log_path(self.dir, job)) + rank_tails(self.dir, job, r.rank_logs) + wrapper_messages(r.process)
            self.attempts[key] += 1
            error = next((line.strip()[:TAIL_LINE_CHARS] for line in reversed(lines) if ERROR_LINE.match(line)), None)
            retry = False
            if timed_out:
                kind, reason = "time limit", f"exceeded the time limit of {self.job_timeout:g} min"
            elif code == Busy.EXIT:  # e.g. a job of a killed grid still running: wait for it, then retry
                kind, reason = "failed", error or f"exit {code}"
                retry = self.attempts[key] <= self.retries
                self.not_before[job] = self.clock() + BUSY_WAIT_S
            elif code == DATA_ERROR_EXIT or error:
                kind, reason = "data error", error or f"exit {code}"
            elif out_of_memory(lines) and (job.batch_size // job.accumulation) % 2 == 0:
                smaller = dataclasses.replace(job, accumulation=job.accumulation * 2)
                self.fresh.add(smaller)
                self.out(f"> out of memory: {job.task} {job.name}; again with accumulation {smaller.accumulation}")
                pending.appendleft(smaller)
                continue
            else:
                kind, reason = "failed", f"exit {code}" if code else "exit 0 without a results record"
                retry = self.attempts[key] <= self.retries
            self.failures[key] = {
                "task": job.task,
                "job": job.name,
                "kind": kind,
                "reason": reason,
                "attempts": self.attempts[key],
                "log_tail": kept_tail(lines),
            }
            if retry:
                self.out(f"> failed ({reason}) {job.task} {job.name}; retry {self.attempts[key]} of {self.retries}")
                pending.append(job)
                continue
            if kind == "failed":
                self.out(f"> failed ({reason}) {job.task} {job.name}; giving up. Last lines of its log:")
            else:
                self.out(f"> {kind}: {job.task} {job.name}: {reason}; not retried. Last lines of its log:")
            for line in kept_tail(lines)[-5:]:
                self.out("    " + line)
        if ended:
            self._write_state()

    def _write_state(self):
        """failures.json beside the logs: what failed and why (the records are the real state)."""
        path = os.path.join(self.dir, "failures.json")
        if self.failures or os.path.exists(path):
            write_json(path, list(self.failures.values()), ensure_ascii=False, indent=2)


def run_dir_main(argv):
    """`python -m cluebench.grid run-dir MODEL [ROOT]`, for the wrappers: the run folder of MODEL."""
    if len(argv) not in (2, 3) or argv[0] != "run-dir":
        sys.exit("usage: python -m cluebench.grid run-dir MODEL [ROOT]")
    try:
        print(run_dir(*argv[1:]))
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
