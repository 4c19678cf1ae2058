"""Replay the full 134-job grid on 8 simulated GPUs: our scheduler against upstream's policy.

    .venv/bin/python benchmarks/bench_scheduler.py [--gpus 8] [--gib 32] [--seeds 3]

The simulator: each job has a work amount (seconds on one dedicated card) drawn from its task's
official train-set size, epochs, sequence length, choices and batch size (a medium model: half a
base model's, by its layers), and an actual memory need drawn around the scheduler's estimate for
the model (x0.85..1.15). Sharing a card: a job alone keeps its card busy a fraction u of the time
(--busy, per model: the rest is its host side, data, Python and kernel launches); k jobs on a card
together do min(1, k u) of a card's work, less --overhead per extra job (context switches between
their CUDA contexts, their caches evicting each other), shared evenly. A job on k cards advances at
k x its slowest card's share. A job's memory shows in NVML 60 s after it starts; if a card then
holds more than it has, that job dies of out-of-memory. u and the overhead are assumptions, not
measurements (no GPU here): the table shows where packing starts to pay under them. Our policy is grid.Scheduler itself (1 s polls); upstream's is spec section 9:
15 s rounds, one launch per round, a card needs 15 GiB free, 120 s blocking waits (5 tries), one
card per job, reading-comprehension jobs reserve their card (leaked if they fail).
Printed: makespan over the lower bound max(total work / cards, longest job on its most cards).
Also: the time to resume a finished 134-job grid with the real grid_search.py.

Then several nodes of --gpus cards each (--nodes 2 4 8), the same jobs and work, mean of the seeds:
  shards        `--shard i/n` round-robin, each node running grid.Scheduler over its part (as above);
  slurm arrays  `grid_search.py --slurm`: one global queue over every node's cards, a job starting on any free
                card(s) of one node (a reading job needs its registry card count on one node, exclusively),
                best fit, in array submission order: slurm.plan's order (arrays and elements longest first);
  ... grid order  the same arrays with arrays and elements in grid order, for comparison;
  bound         max(total work / all cards, longest job on its cards).
The queue model takes any pending job that fits (Slurm's backfill at its best); strict priority order
would only hold back jobs behind one that does not fit yet.
"""

import argparse
import collections
import heapq
import os
import random
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # for helpers.py
from cluebench import results, tasks  # noqa: E402
from cluebench.grid import footprint, scheduler as grid, slurm  # noqa: E402
from helpers import ROOT  # noqa: E402

GIB = 1 << 30
SEQ_PER_S = 120.0  # training sequences of 128 tokens per second, one card, base model, evaluation included
MEDIUM = footprint.Shape(6, 768, 3072, 40000, 12, 2048, 4, 16, "ernie-3.0-medium-zh")
MODELS = {"base": footprint.BASE, "medium": MEDIUM}


def work_seconds(job, rng, shape=footprint.BASE):
    """Seconds on one dedicated card: the scheduler's size estimate, off by up to 10% either way, scaled by
    the model's layers against a base model's."""
    return grid.work_estimate(job) / SEQ_PER_S * rng.uniform(0.9, 1.1) * shape.layers / footprint.BASE.layers


def actual_memory(jobs, rng, shape=footprint.BASE):
    """GiB one process of each job really needs: the estimate, off by up to 15% either way."""
    return {(j.task, j.name): footprint.gpu_gib(shape, j) * rng.uniform(0.85, 1.15) for j in jobs}


class Cluster:
    """Simulated cards, clock and jobs; also the fake NVML module and the launcher for grid.Scheduler."""

    def __init__(
        self, cards, gib, work, memory, directory, alloc_delay=60.0, shape=footprint.BASE, busy=1.0, overhead=0.0
    ):
        self.total, self.now, self.alloc_delay = gib * GIB, 0.0, alloc_delay
        self.cards, self.work, self.memory, self.dir = cards, work, memory, directory
        self.shape, self.busy, self.overhead = shape, busy, overhead
        self.procs, self.busy_card_seconds = [], 0.0

    # ---- NVML
    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return self.cards

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetMemoryInfo(self, card):
        used = sum(p.mem for p in self.procs if p.alive and p.allocated and card in p.cards)
        return SimpleNamespace(total=self.total, used=used, free=self.total - used)

    def nvmlDeviceGetPciInfo(self, card):
        return SimpleNamespace(busId=f"00000000:{card + 1:02x}:00.0")

    def nvmlDeviceGetUUID(self, card):
        return f"GPU-{card:08x}"

    def nvmlDeviceGetComputeRunningProcesses(self, card):
        return [
            SimpleNamespace(pid=id(p), usedGpuMemory=p.mem)
            for p in self.procs
            if p.alive and p.allocated and card in p.cards
        ]

    def pids(self, proc):
        return {id(proc)}

    # ---- processes
    def start_job(self, job, cards):
        key = (job.task, job.name)
        scale = (job.batch_size // job.accumulation) / (job.batch_size // grid_job(job).accumulation)
        mem = (
            self.memory[key]
            * GIB
            * max(scale, 0.5)
            * (footprint.gpu_gib(self.shape, job, len(cards)) / footprint.gpu_gib(self.shape, job, 1))
        )
        proc = SimpleNamespace(
            job=job,
            cards=cards,
            left=self.work[key],
            mem=mem,
            alive=True,
            allocated=False,
            alloc_at=self.now + self.alloc_delay,
            code=None,
        )
        self.procs.append(proc)
        return proc

    def start(self, argv, env):  # grid.Scheduler's launcher interface
        job = job_from_argv(argv)
        proc = self.start_job(job, [int(c) for c in env["CUDA_VISIBLE_DEVICES"].split(",")])
        proc.poll = lambda p=proc: p.code
        return proc

    def stop(self, proc, grace=None):
        proc.alive, proc.code = False, -15

    def share(self, k):
        """A job's speed on a card it shares with k - 1 others, as a fraction of its speed alone."""
        return min(1.0, 1.0 / (k * self.busy)) * max(0.0, 1.0 - self.overhead * (k - 1))

    def rate(self, p):
        load = collections.Counter(c for q in self.procs if q.alive for c in q.cards)
        return len(p.cards) * min(self.share(load[c]) for c in p.cards)

    def next_event(self):
        times = [p.alloc_at for p in self.procs if p.alive and not p.allocated]
        times += [self.now + p.left / self.rate(p) for p in self.procs if p.alive]
        return min(times) if times else None

    def advance(self, until):
        while True:
            event = self.next_event()
            step_to = until if event is None or event > until else event
            alive = [p for p in self.procs if p.alive]
            rates = {id(p): self.rate(p) for p in alive}
            used_cards = {c for p in alive for c in p.cards}
            self.busy_card_seconds += len(used_cards) * (step_to - self.now)
            for p in alive:
                p.left -= rates[id(p)] * (step_to - self.now)
            self.now = step_to
            for p in alive:
                if not p.allocated and p.alloc_at <= self.now + 1e-9:
                    p.allocated = True
                    for c in p.cards:
                        held = sum(q.mem for q in self.procs if q.alive and q.allocated and c in q.cards)
                        if held > self.total and p.alive:
                            p.alive, p.code = False, 1
                            write_log(self.dir, p.job, "RuntimeError: Out of memory error on GPU\n")
                if p.alive and p.left <= 1e-6:
                    p.alive, p.code = False, 0
                    results.write_record(
                        grid.record_path(self.dir, p.job), {"schema": results.SCHEMA, "status": "complete"}
                    )
            if step_to >= until:
                return


def grid_job(job):
    return next(j for j in grid.full_grid() if (j.task, j.name) == (job.task, job.name))


def job_from_argv(argv):
    if argv[1] == "run_mrc.sh":
        return dataclass_replace(grid_job(grid.Job(argv[3], float(argv[5]), int(argv[4]), 1)), int(argv[6]))
    return dataclass_replace(grid_job(grid.Job(argv[2], float(argv[3]), int(argv[4]), 1, float(argv[9]))), int(argv[8]))


def dataclass_replace(job, accumulation):
    import dataclasses

    return dataclasses.replace(job, accumulation=accumulation)


def write_log(directory, job, text):
    path = grid.log_path(directory, job)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def simulate_ours(jobs, cards, gib, work, memory, shape=footprint.BASE, max_jobs=1, busy=1.0, overhead=0.0):
    with tempfile.TemporaryDirectory() as directory:
        cluster = Cluster(cards, gib, work, memory, directory, shape=shape, busy=busy, overhead=overhead)

        def sleep(seconds):  # nothing changes between events: jump to the next one (at least one poll)
            event = cluster.next_event()
            cluster.advance(max(cluster.now + seconds, event if event is not None else cluster.now + seconds))

        host = SimpleNamespace(virtual_memory=lambda: SimpleNamespace(total=2048 * GIB, available=2048 * GIB))
        pool = grid.GpuPool(
            cluster, footprint.Footprints(shape), max_jobs_per_gpu=max_jobs, host=host, cores=64, environ={}
        )
        scheduler = grid.Scheduler(
            jobs,
            directory,
            "model",
            pool,
            cluster,
            retries=5,
            poll=1.0,
            clock=lambda: cluster.now,
            sleep=sleep,
            out=lambda s: None,
        )
        failed = scheduler.run()
        ooms = sum(1 for p in cluster.procs if p.code == 1)
        return cluster.now, failed, ooms, cluster.busy_card_seconds


def simulate_upstream(jobs, cards, gib, work, memory, busy=1.0, overhead=0.0):
    with tempfile.TemporaryDirectory() as directory:
        cluster = Cluster(cards, gib, work, memory, directory, busy=busy, overhead=overhead)
        queue, running, tries, reserved, failed = collections.deque(jobs), [], collections.Counter(), set(), 0
        while queue or running:
            for p in list(running):
                if p.code is None:
                    continue
                running.remove(p)
                if p.code == 0:
                    if p.job.is_reading:
                        reserved.discard(p.cards[0])  # released on success only
                    continue
                tries[(p.job.task, p.job.name)] += 1
                if tries[(p.job.task, p.job.name)] <= 5:
                    queue.append(p.job)
                else:
                    failed += 1
            if queue:
                job = queue.popleft()
                placed = None
                for attempt in range(5):
                    free = sorted(((cluster.nvmlDeviceGetMemoryInfo(c).free, c) for c in range(cards)), reverse=True)
                    card = next((c for f, c in free if c not in reserved and f >= 15 * GIB), None)
                    if card is not None and attempt < 4:  # upstream drops a card found on the last try
                        placed = card
                        break
                    cluster.advance(cluster.now + 120)  # blocking wait
                if placed is None:
                    queue.append(job)
                else:
                    running.append(cluster.start_job(job, [placed]))
                    if job.is_reading:
                        reserved.add(placed)
            cluster.advance(cluster.now + 15)
        ooms = sum(1 for p in cluster.procs if p.code == 1)
        return cluster.now, failed, ooms, cluster.busy_card_seconds


def simulate_slurm(arrays, nodes, gpus, work):
    """Makespan of array elements in submission order on nodes x gpus exclusive cards: a job on k cards of one
    node takes work / k; whenever cards free up, every pending job that fits starts (best-fit node)."""
    free, now, running, tick = [gpus] * nodes, 0.0, [], 0
    pending = [(job, array.cards) for array in arrays for job in array.jobs]
    while pending or running:
        for item in list(pending):
            job, k = item
            fits = [n for n in range(nodes) if free[n] >= k]
            if fits:
                node = min(fits, key=lambda n: (free[n], n))
                free[node] -= k
                tick += 1
                heapq.heappush(running, (now + work[(job.task, job.name)] / k, tick, node, k))
                pending.remove(item)
        now, _, node, k = heapq.heappop(running)
        free[node] += k
        while running and running[0][0] <= now:
            _, _, node, k = heapq.heappop(running)
            free[node] += k
    return now


def grid_order_arrays(jobs):
    """slurm.plan's arrays, but arrays and their elements in grid order (the order one would write by hand)."""
    arrays = {}
    for job in jobs:
        k = slurm.cards(job)
        arrays.setdefault(
            f"rc{k}" if job.is_reading else "cls", slurm.Array(f"rc{k}" if job.is_reading else "cls", k, [])
        )
        arrays[f"rc{k}" if job.is_reading else "cls"].jobs.append(job)
    return list(arrays.values())


def multi_node(jobs, gpus, gib, seeds, node_counts):
    """Rows (nodes, policy, makespan s, bound s), each the mean over the seeds."""
    with tempfile.TemporaryDirectory() as empty:
        planned = slurm.plan(jobs, empty)[0]
    rows = collections.defaultdict(lambda: [0.0, 0.0])
    for seed in range(seeds):
        rng = random.Random(seed)  # the same draws as the single-node table
        work = {(j.task, j.name): work_seconds(j, rng) for j in jobs}
        memory = actual_memory(jobs, rng)
        longest = max(work[(j.task, j.name)] / slurm.cards(j) for j in jobs)
        for n in node_counts:
            bound = max(sum(work.values()) / (n * gpus), longest)
            shards = max(simulate_ours(grid.select(jobs, shard=(i, n)), gpus, gib, work, memory)[0] for i in range(n))
            for policy, makespan in (
                ("shards (--shard i/n, our scheduler per node)", shards),
                ("slurm arrays, longest first (--slurm)", simulate_slurm(planned, n, gpus, work)),
                ("slurm arrays, grid order", simulate_slurm(grid_order_arrays(jobs), n, gpus, work)),
            ):
                rows[(n, policy)][0] += makespan / seeds
                rows[(n, policy)][1] += bound / seeds
    return [(n, policy, makespan, bound) for (n, policy), (makespan, bound) in rows.items()]


def resume_seconds():
    """Wall time of grid_search.py over a finished 134-job grid (records in place)."""
    with tempfile.TemporaryDirectory() as root:
        for job in grid.full_grid():
            results.write_record(
                grid.record_path(os.path.join(root, "some-model"), job),
                {"schema": results.SCHEMA, "status": "complete", "best": {"value": "50.00"}},
            )
        start = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                os.path.join(ROOT, "grid_search_tools", "grid_search.py"),
                "some-model",
                "--output_root",
                root,
            ],
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
        assert "134 of 134 jobs already complete" in proc.stdout, proc.stdout + proc.stderr
        return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--gib", type=float, default=32)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--nodes", type=int, nargs="*", default=[2, 4, 8], help="node counts of the multi-node table")
    parser.add_argument(
        "--busy",
        type=float,
        nargs=2,
        default=[0.9, 0.6],
        metavar=("BASE", "MEDIUM"),
        help="fraction of its card's time a job alone keeps it busy, base and medium model",
    )
    parser.add_argument("--overhead", type=float, default=0.1, help="throughput a card loses per extra job on it")
    parser.add_argument("--max_jobs", type=int, nargs="*", default=[1, 2, 4], help="--max_jobs_per_gpu values")
    opts = parser.parse_args()
    jobs = grid.full_grid()
    busy = dict(zip(MODELS, opts.busy))
    print(
        f"Packing: {opts.gpus} GPUs of {opts.gib:g} GiB, {len(jobs)} jobs, mean of {opts.seeds} seeds; a job alone "
        f"keeps its card busy {opts.busy[0]:.0%} (base) / {opts.busy[1]:.0%} (medium) of the time, a card loses "
        f"{opts.overhead:.0%} of its throughput per extra job (assumed, not measured)\n"
    )
    print("| model | --max_jobs_per_gpu | makespan (h) | vs 1 | card use | OOM kills | failed |")
    print("|---|---|---|---|---|---|---|")
    for model, shape in MODELS.items():
        alone = None
        for m in opts.max_jobs:
            total = collections.Counter()
            for seed in range(opts.seeds):
                rng = random.Random(seed)
                work = {(j.task, j.name): work_seconds(j, rng, shape) for j in jobs}
                makespan, failed, ooms, used = simulate_ours(
                    jobs,
                    opts.gpus,
                    opts.gib,
                    work,
                    actual_memory(jobs, rng, shape),
                    shape,
                    m,
                    busy[model],
                    opts.overhead,
                )
                total.update(
                    makespan=makespan / opts.seeds,
                    use=used / (makespan * opts.gpus) / opts.seeds,
                    ooms=ooms / opts.seeds,
                    failed=(failed or 0) / opts.seeds,
                )
            alone = alone or total["makespan"]
            print(
                f"| {model} | {m} | {total['makespan'] / 3600:.2f} | {total['makespan'] / alone:.2f} | "
                f"{total['use']:.1%} | {total['ooms']:.1f} | {total['failed']:.1f} |"
            )
    print("\nOne job a card (the default) against upstream's policy, base model:\n")
    print("| seed | policy | makespan (h) | lower bound (h) | ratio | card use | OOM kills | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in range(opts.seeds):
        rng = random.Random(seed)
        work = {(j.task, j.name): work_seconds(j, rng) for j in jobs}
        memory = actual_memory(jobs, rng)
        longest = max(work[(j.task, j.name)] / (tasks.get(j.task).grid.cards if j.is_reading else 1) for j in jobs)
        bound = max(sum(work.values()) / opts.gpus, longest)
        for name, simulate in (("ours", simulate_ours), ("upstream", simulate_upstream)):
            makespan, failed, ooms, used = simulate(
                jobs, opts.gpus, opts.gib, work, memory, busy=busy["base"], overhead=opts.overhead
            )
            print(
                f"| {seed} | {name} | {makespan / 3600:.2f} | {bound / 3600:.2f} | {makespan / bound:.3f} | "
                f"{used / (makespan * opts.gpus):.1%} | {ooms} | {failed} |"
            )
    print(
        f"\n{opts.gpus} GPUs of {opts.gib:g} GiB, {len(jobs)} jobs. Resuming a finished 134-job grid with "
        f"grid_search.py, report and submission included: {resume_seconds():.2f} s."
    )
    if not opts.nodes:
        return
    print(f"\nSeveral nodes of {opts.gpus} GPUs ({opts.gib:g} GiB), mean of {opts.seeds} seeds:\n")
    print("| nodes | policy | makespan (h) | lower bound (h) | ratio |")
    print("|---|---|---|---|---|")
    for n, policy, makespan, bound in multi_node(jobs, opts.gpus, opts.gib, opts.seeds, opts.nodes):
        print(f"| {n} | {policy} | {makespan / 3600:.2f} | {bound / 3600:.2f} | {makespan / bound:.3f} |")


if __name__ == "__main__":
    main()
