"""The CLUE hyper-parameter grid, where its logs and records live, and the scheduler that runs it.

The scheduler keeps every card busy: it polls every second, starts as many jobs as fit, judges a
card by its free memory and by what running jobs have claimed on it, gives reading-comprehension
jobs several cards, retries failures (an out-of-memory one with half the micro-batch), releases
claims however a job ends, and stops cleanly on SIGINT/SIGTERM. A job whose results record is
complete is done: restarting skips it before any GPU is looked at.

Not retried, since a retry would fail the same way: a data error (exit status 2, the training
scripts' bad-input status, or an `error: ` line in the log's tail) and a job that ran past the
time limit (job_timeout minutes; it is ended like a stopped one). Both go to failures.json.
"""
import collections
import dataclasses
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from . import results, tasks
from .fileio import Busy, is_local_path, write_json

# ---------------------------------------------------------------- the grid (upstream's; rows from the registry)
CLS_TASKS = tasks.names("classification", in_grid=True)
MRC_TASKS = tasks.names("reading", in_grid=True)
REPORT_ORDER = tasks.REPORT_ORDER


@dataclasses.dataclass(frozen=True)
class Job:
    task: str
    learning_rate: float
    batch_size: int  # effective batch: per card for classification, global for reading comprehension
    accumulation: int
    dropout: float = 0.1
    epochs: int = 0
    max_seq_length: int = 0

    @property
    def is_mrc(self):
        return self.task in MRC_TASKS

    @property
    def name(self):
        """LR_BS_DROPOUT as upstream, numbers as Python's str() writes them (1e-05, 0.1)."""
        return f"{self.learning_rate}_{self.batch_size}_{self.dropout}"

    def command(self, model):
        """The wrapper's argv (positional arguments of spec §7/§8); no shell ever parses it."""
        if self.is_mrc:
            return ["bash", "run_mrc.sh", model, self.task, str(self.batch_size), str(self.learning_rate),
                    str(self.accumulation)]
        return ["bash", "run_cls.sh", self.task, str(self.learning_rate), str(self.batch_size), str(self.epochs),
                str(self.max_seq_length), model, str(self.accumulation), str(self.dropout)]


def full_grid():
    """The 134 jobs of the upstream grid, in its order: each classification task over learning rates,
    batch sizes and its settings; then the extra batch sizes (CLUEWSC2020's 8); then the reading tasks,
    learning rate by batch size."""
    jobs = []
    for task in CLS_TASKS:
        g = tasks.get(task).grid
        jobs += [Job(task, lr, bs, gas, dropout, epochs, seq) for lr in g.learning_rates for bs in g.batch_sizes
                 for epochs, seq, gas, dropout in g.settings]
    for task in CLS_TASKS:
        g = tasks.get(task).grid
        jobs += [Job(task, lr, bs, gas, dropout, epochs, seq) for bs in g.extra_batch_sizes
                 for lr in g.learning_rates for epochs, seq, gas, dropout in g.settings]
    first = tasks.get(MRC_TASKS[0]).grid  # the reading tasks share their learning rates and batch sizes
    for lr in first.learning_rates:
        for bs in first.batch_sizes:
            for task in MRC_TASKS:
                g = tasks.get(task).grid
                jobs.append(Job(task, lr, bs, g.accumulation_for(bs), 0.1, g.epochs, g.max_seq_length))
    return jobs


def select(jobs, tasks=None, learning_rates=None, batch_sizes=None, shard=None):
    """Narrow the grid; shard=(i, n) keeps every n-th job from the i-th, a disjoint, fixed part."""
    kept = [j for j in jobs if (not tasks or j.task in tasks)
            and (not learning_rates or any(abs(j.learning_rate - lr) < 1e-12 for lr in learning_rates))
            and (not batch_sizes or j.batch_size in batch_sizes)]
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
    elif is_local_path(model) or parent and os.path.isdir(parent) and any(
            _holds_model(os.path.join(parent, entry)) for entry in os.listdir(parent)):
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


def log_path(directory, job):
    return os.path.join(directory, job.task, job.name + ".log")


def record_path(directory, job):
    return os.path.join(directory, job.task, job.name + ".json")


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


def memory_gib(job, cards=1):
    """Estimated GPU memory of one process of the job, for a base-size model (~110M parameters):
    weights, gradients and AdamW state (~2.5 GiB with the CUDA context) plus activations, which grow
    with tokens per micro-batch and, through attention, with sequence length."""
    micro = job.batch_size // cards // (job.accumulation // cards if job.is_mrc else job.accumulation)
    sequences = micro * tasks.get(job.task).choices
    return 2.5 + sequences * job.max_seq_length * (1 + job.max_seq_length / 512) / 1024 * 0.9


def card_options(job, wanted):
    """Card counts a reading-comprehension job can split over, most first: they must divide both the
    global batch and the accumulation steps, so each card keeps the same micro-batch."""
    return [k for k in range(wanted, 0, -1) if job.batch_size % k == 0 and job.accumulation % k == 0]


def open_gpus(nvml):
    """A GpuPool over every card NVML sees, or a SetupError saying why there is none."""
    try:
        gpus = GpuPool(nvml)
    except nvml.NVMLError as e:
        raise SetupError(f"no NVIDIA GPU can be used ({e}); on a CPU use --device cpu --slots N") from None
    if not len(gpus):
        raise SetupError("NVML sees no GPU; on a CPU use --device cpu --slots N")
    return gpus


class GpuPool:
    """Cards seen through NVML (the real pynvml module or a fake one)."""

    def __init__(self, nvml, margin_gib=1.0):
        self.nvml, self.margin = nvml, margin_gib
        nvml.nvmlInit()
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]

    def __len__(self):
        return len(self.handles)

    def refresh(self):
        """Read (total, free) GiB per card once per scheduling round; within a round the claims of the
        jobs just started stand for the memory NVML does not show yet."""
        self.cards = [(info.total / GIB, info.free / GIB)
                      for info in map(self.nvml.nvmlDeviceGetMemoryInfo, self.handles)]

    def place(self, job, claims, running_on):
        """(cards, GiB claimed per card) for the job, or None if it does not fit now."""
        cards = self.cards
        available = [min(free, total - claims[c]) - self.margin for c, (total, free) in enumerate(cards)]
        order = sorted(range(len(cards)), key=lambda c: (-available[c], running_on[c], c))
        for k in card_options(job, tasks.get(job.task).grid.cards) if job.is_mrc else [1]:
            need = memory_gib(job, k)
            fitting = [c for c in order if available[c] >= need]
            if len(fitting) >= k:
                return fitting[:k], need
        return None


class CpuPool:
    """N CPU slots, one job each."""

    def __init__(self, slots):
        self.slots = slots

    def __len__(self):
        return self.slots

    def refresh(self):
        pass

    def place(self, job, claims, running_on):
        free = [s for s in range(self.slots) if running_on[s] == 0]
        return ([free[0]], 0.0) if free else None


# ---------------------------------------------------------------- running jobs
OOM = re.compile(r"out of memory|ResourceExhausted|cudaErrorMemoryAllocation|CUDA error\(2\)", re.I)
# The one line of bad input: `error: ...` from the training scripts, `PROG: error: ...` from argparse,
# the wrappers and the warm-up.
ERROR_LINE = re.compile(r"^(?:[\w.-]+: )?error: ")
DATA_ERROR_EXIT = 2
BUSY_WAIT_S = 120  # before a job whose output directory is held by another run is tried again


def wrapper_messages(process):
    """What the wrapper wrote on stderr (ProcessLauncher's processes; others have none), closed after."""
    messages = getattr(process, "messages", None)
    if messages is None:
        return []
    with messages:
        messages.seek(0)
        return messages.read(1 << 16).decode("utf-8", "replace").splitlines(keepends=True)[-15:]


ATTEMPT = "---- another attempt"  # job_paths.sh's line between the attempts of a job in one log


def tail(path, lines=15):
    """The last lines of a job's log, from its latest attempt only."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            last = list(collections.deque(f, maxlen=lines))
    except OSError:
        return []
    starts = [i for i, line in enumerate(last) if line.startswith(ATTEMPT)]
    return last[starts[-1] + 1:] if starts else last


class ProcessLauncher:
    """Starts a wrapper in its own process group, so a stop reaches the job's whole tree."""

    def __init__(self, tools_dir):
        self.tools_dir = tools_dir

    def start(self, argv, env):
        # the wrapper's own complaints (bad arguments) come before its log exists: keep them in an
        # unnamed file, which no leftover grandchild can make a read of block
        messages = tempfile.TemporaryFile()
        process = subprocess.Popen(argv, cwd=self.tools_dir, env=dict(os.environ, **env),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=messages,
                                   start_new_session=True)
        process.messages = messages
        return process

    @staticmethod
    def stop(process, grace=15.0):
        """SIGTERM to the job's process group, SIGKILL after grace; returns when no process of the
        group is left running. The wrapper shell dies at once, while its Python first finishes the
        step and writes its checkpoint: waiting for the wrapper alone left that write running."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                process.poll()  # reaps the wrapper
                if not group_running(process.pid):
                    return
                time.sleep(0.05)


def group_running(pgid):
    """Whether a process of group pgid is still running (zombies, waiting for their reaper, are not)."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:  # no /proc: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


@dataclasses.dataclass
class Running:
    job: Job
    process: object
    cards: list
    claim: float
    started: float


class Scheduler:
    """pool: a GpuPool or CpuPool, or a function making one (called only if some job is pending)."""

    def __init__(self, jobs, directory, model, pool, launcher, *, device="gpu", extra_args=(), retries=2,
                 poll=1.0, job_timeout=None, clock=time.monotonic, sleep=time.sleep, out=print):
        self.jobs, self.dir, self.model, self.pool, self.launcher = list(jobs), directory, model, pool, launcher
        self.device, self.extra_args, self.retries, self.poll = device, list(extra_args), retries, poll
        self.job_timeout = job_timeout  # minutes, or None: no limit
        self.clock, self.sleep, self.out = clock, sleep, out
        self.claims, self.running_on = [], []
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
        pending = collections.deque(sorted((j for j in self.jobs if not is_complete(self.dir, j)),
                                           key=lambda j: -work_estimate(j)))
        self.out(f"{len(self.jobs) - len(pending)} of {len(self.jobs)} jobs already complete; {len(pending)} to run")
        if not pending:
            return 0
        if callable(self.pool):  # a factory: GPUs are looked at only when there is work for them
            self.pool = self.pool()
        self.claims, self.running_on = [0.0] * len(self.pool), [0] * len(self.pool)
        while (pending or self.running) and self.stopping is None:
            self._reap(pending)
            self._launch(pending)
            if pending or self.running:
                self.sleep(self.poll)
        if self.stopping is not None:
            self.out(f"stopping on signal {self.stopping}: ending {len(self.running)} running jobs")
            for r in list(self.running):
                self.launcher.stop(r.process)
                self._release(r)
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
            placed = self.pool.place(job, self.claims, self.running_on)
            if placed is None:
                continue
            cards, claim = placed
            env = {"CLUE_RUN_DIR": self.dir, "CLUE_CARDS": str(len(cards)), "PYTHON": sys.executable,
                   "PYTHONUNBUFFERED": "1"}
            if self.device == "gpu":
                env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, cards))
                env["FLAGS_allocator_strategy"] = "auto_growth"
            else:
                env["CUDA_VISIBLE_DEVICES"] = ""
                env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // len(self.pool)))
            argv = job.command(self.model) + ["--device", self.device] + self.extra_args
            if job in self.fresh:  # a killed or failed job otherwise resumes from its checkpoint
                argv += ["--resume", "never"]
            os.makedirs(os.path.join(self.dir, job.task), exist_ok=True)
            process = self.launcher.start(argv, env)
            for c in cards:
                self.claims[c] += claim
                self.running_on[c] += 1
            self.running.append(Running(job, process, cards, claim, self.clock()))
            pending.remove(job)
            where = f"{self.device} {','.join(map(str, cards))}"
            self.out(f"> start {job.task} {job.name} (accumulation {job.accumulation}) on {where}")

    def _release(self, r):
        for c in r.cards:
            self.claims[c] -= r.claim
            self.running_on[c] -= 1
        self.running.remove(r)

    def _reap(self, pending):
        ended = False
        for r in list(self.running):
            code = r.process.poll()
            minutes = (self.clock() - r.started) / 60
            timed_out = code is None and self.job_timeout is not None and minutes > self.job_timeout
            if code is None and not timed_out:
                continue
            if timed_out:
                self.launcher.stop(r.process)  # its whole process group, as on a stop
            ended = True
            self._release(r)
            job = r.job
            key = job.task + "/" + job.name
            if not timed_out and code == 0 and is_complete(self.dir, job):
                self.failures.pop(key, None)
                self.out(f"> done {job.task} {job.name} in {minutes:.1f} min")
                continue
            lines = tail(log_path(self.dir, job)) + wrapper_messages(r.process)
            self.attempts[key] += 1
            error = next((line.strip() for line in reversed(lines) if ERROR_LINE.match(line)), None)
            retry = False
            if timed_out:
                kind, reason = "time limit", f"exceeded the time limit of {self.job_timeout:g} min"
            elif code == Busy.EXIT:  # e.g. a job of a killed grid still running: wait for it, then retry
                kind, reason = "failed", error or f"exit {code}"
                retry = self.attempts[key] <= self.retries
                self.not_before[job] = self.clock() + BUSY_WAIT_S
            elif code == DATA_ERROR_EXIT or error:
                kind, reason = "data error", error or f"exit {code}"
            elif OOM.search("".join(lines)) and (job.batch_size // job.accumulation) % 2 == 0:
                smaller = dataclasses.replace(job, accumulation=job.accumulation * 2)
                self.fresh.add(smaller)
                self.out(f"> out of memory: {job.task} {job.name}; again with accumulation {smaller.accumulation}")
                pending.appendleft(smaller)
                continue
            else:
                kind, reason = "failed", f"exit {code}" if code else "exit 0 without a results record"
                retry = self.attempts[key] <= self.retries
            self.failures[key] = {"task": job.task, "job": job.name, "kind": kind, "reason": reason,
                                  "attempts": self.attempts[key], "log_tail": [line.rstrip("\n") for line in lines]}
            if retry:
                self.out(f"> failed ({reason}) {job.task} {job.name}; retry {self.attempts[key]} of {self.retries}")
                pending.append(job)
                continue
            if kind == "failed":
                self.out(f"> failed ({reason}) {job.task} {job.name}; giving up. Last lines of its log:")
            else:
                self.out(f"> {kind}: {job.task} {job.name}: {reason}; not retried. Last lines of its log:")
            for line in lines[-5:]:
                self.out("    " + line.rstrip("\n"))
        if ended:
            self._write_state()

    def _write_state(self):
        """failures.json beside the logs: what failed and why (the records are the real state)."""
        path = os.path.join(self.dir, "failures.json")
        if self.failures or os.path.exists(path):
            write_json(path, list(self.failures.values()), ensure_ascii=False, indent=2)


if __name__ == "__main__":  # `python -m cluebench.grid run-dir MODEL [ROOT]`, for the wrappers
    if len(sys.argv) not in (3, 4) or sys.argv[1] != "run-dir":
        sys.exit("usage: python -m cluebench.grid run-dir MODEL [ROOT]")
    try:
        print(run_dir(*sys.argv[2:]))
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
