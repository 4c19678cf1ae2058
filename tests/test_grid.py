"""The grid and its scheduler, with a fake NVML and fake jobs (no GPU, no training)."""
import json
import os
from types import SimpleNamespace

import pynvml
import pytest

from cluebench import grid, results

GIB = 1 << 30


def test_full_grid_matches_upstream():
    jobs = grid.full_grid()
    assert len(jobs) == 134 and sum(j.is_mrc for j in jobs) == 18
    counts = {t: sum(j.task == t for j in jobs) for t in grid.CLS_TASKS + grid.MRC_TASKS}
    assert counts == {"afqmc": 12, "tnews": 12, "iflytek": 24, "ocnli": 12, "cmnli": 12, "cluewsc2020": 32,
                      "csl": 12, "chid": 6, "cmrc2018": 6, "c3": 6}
    assert jobs[0].command("m") == ["bash", "run_cls.sh", "afqmc", "1e-05", "16", "3", "128", "m", "1", "0.1"]
    assert jobs[0].name == "1e-05_16_0.1"
    assert [j.name for j in jobs if j.task == "iflytek"][:2] == ["1e-05_16_0.1", "1e-05_16_0.0"]
    assert all(j.accumulation == 2 and j.max_seq_length == 256 for j in jobs if j.task == "csl")
    wsc8 = [j for j in jobs if j.task == "cluewsc2020" and j.batch_size == 8]
    assert [j.name for j in wsc8] == [f"{lr}_8_{d}" for lr in ("1e-05", "2e-05", "3e-05", "5e-05") for d in ("0.1", "0.0")]
    mrc = [j.command("m") for j in jobs if j.is_mrc]
    assert mrc[:3] == [["bash", "run_mrc.sh", "m", "chid", "32", "1e-05", "8"],
                       ["bash", "run_mrc.sh", "m", "cmrc2018", "32", "1e-05", "4"],
                       ["bash", "run_mrc.sh", "m", "c3", "32", "1e-05", "16"]]
    assert mrc[5] == ["bash", "run_mrc.sh", "m", "c3", "24", "1e-05", "12"]


def test_select_and_shards():
    jobs = grid.full_grid()
    assert len(grid.select(jobs, tasks=["tnews"], learning_rates=[2e-5], batch_sizes=[32])) == 1
    parts = [grid.select(jobs, shard=(i, 3)) for i in range(3)]
    names = [(j.task, j.name) for part in parts for j in part]
    assert len(names) == len(set(names)) == 134  # disjoint, and together the whole grid
    assert parts[1] == grid.select(jobs, shard=(1, 3))  # deterministic


def test_run_dir_never_inside_the_model(tmp_path):
    model = tmp_path / "models" / "my model"
    model.mkdir(parents=True)
    assert grid.run_dir(str(model), "/runs") == "/runs/my model"
    assert grid.run_dir("ernie-3.0-medium-zh") == "./ernie-3.0-medium-zh"


class FakeNVML:
    """GPUs with a total and externally used memory; running fake jobs add their use to their cards."""

    def __init__(self, totals_gib, used_gib=None):
        self.total = [t * GIB for t in totals_gib]
        self.external = [u * GIB for u in (used_gib or [0] * len(totals_gib))]
        self.jobs = []  # FakeProcess objects holding memory

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return len(self.total)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetMemoryInfo(self, h):
        used = self.external[h] + sum(p.memory for p in self.jobs if h in p.cards and p.running)
        return SimpleNamespace(total=self.total[h], used=used, free=self.total[h] - used)


class FakeProcess:
    def __init__(self, launcher, argv, env):
        self.argv, self.env, self.launcher = argv, env, launcher
        self.cards = [int(c) for c in env["CUDA_VISIBLE_DEVICES"].split(",")] if env.get("CUDA_VISIBLE_DEVICES") else []
        self.polls, self.running, self.memory = 0, True, 0
        self.outcome = launcher.outcome(self)

    def poll(self):
        if not self.running:
            return self.code
        self.polls += 1
        self.memory = 3 * GIB  # allocated once started
        if self.polls < self.launcher.duration:
            return None
        self.running = False
        self.code, log_text = self.outcome
        job = self.launcher.job_of(self.argv)
        os.makedirs(os.path.dirname(grid.log_path(self.launcher.dir, job)), exist_ok=True)
        with open(grid.log_path(self.launcher.dir, job), "w") as f:
            f.write(log_text)
        if self.code == 0:
            results.write_record(grid.record_path(self.launcher.dir, job), {
                "schema": results.SCHEMA, "status": "complete", "best": {"value": "50.00"}})
        return self.code


class FakeLauncher:
    def __init__(self, directory, nvml=None, duration=2, outcomes=None):
        self.dir, self.nvml, self.duration = directory, nvml, duration
        self.outcomes = outcomes or {}  # job name/task -> list of (code, log) for successive attempts
        self.started, self.stopped = [], []

    def job_of(self, argv):
        if argv[1] == "run_mrc.sh":
            return grid.Job(argv[3], float(argv[5]), int(argv[4]), int(argv[6]))
        return grid.Job(argv[2], float(argv[3]), int(argv[4]), int(argv[8]), float(argv[9]))

    def outcome(self, process):
        job = self.job_of(process.argv)
        queue = self.outcomes.get(f"{job.task}/{job.name}", [])
        return queue.pop(0) if queue else (0, "best_result: 50.00\n")

    def start(self, argv, env):
        process = FakeProcess(self, argv, env)
        self.started.append(process)
        if self.nvml:
            self.nvml.jobs.append(process)
        return process

    def stop(self, process):
        process.running, process.code = False, -15
        self.stopped.append(process)


def make(tmp_path, jobs, nvml, **kwargs):
    launcher = FakeLauncher(str(tmp_path), nvml, **{k: kwargs.pop(k) for k in ("duration", "outcomes") if k in kwargs})
    pool = grid.GpuPool(nvml) if nvml else grid.CpuPool(kwargs.pop("slots", 2))
    lines = []
    scheduler = grid.Scheduler(jobs, str(tmp_path), "model", pool, launcher, sleep=lambda s: None, out=lines.append,
                               device="gpu" if nvml else "cpu", **kwargs)
    return scheduler, launcher, lines


def cls_job(task="tnews", lr=2e-5, bs=32, accumulation=1):
    return grid.Job(task, lr, bs, accumulation, 0.1, 3, 128)


def test_jobs_go_only_where_they_fit(tmp_path):
    # a classification job of batch 32 at length 128 needs ~7 GiB: card 0 has 5 free, card 1 has 16
    need = grid.memory_gib(cls_job())
    assert 6.5 < need < 7.5
    nvml = FakeNVML([16, 16], used_gib=[11, 0])
    jobs = [cls_job(lr=lr) for lr in (1e-5, 2e-5, 3e-5)]
    scheduler, launcher, _ = make(tmp_path, jobs, nvml, duration=3)
    assert scheduler.run() == 0
    assert all(p.cards == [1] for p in launcher.started)
    # two fit on card 1 at once (2 x 7 GiB + 1 GiB margin <= 16): the first two start together
    assert [p.polls for p in launcher.started] == [3, 3, 3]
    assert launcher.started[2].env is not launcher.started[0].env and scheduler.claims == [0.0, 0.0]


def test_claims_count_before_memory_shows(tmp_path):
    # NVML shows no use yet for a just-started job; its claim still keeps a second job off the card
    nvml = FakeNVML([10])
    scheduler, launcher, _ = make(tmp_path, [cls_job(lr=1e-5), cls_job(lr=2e-5)], nvml, duration=2)
    scheduler.run()
    assert len(launcher.started) == 2
    first, second = launcher.started
    assert first.polls == 2 and second.polls == 2  # the second started only after the first ended


def test_multi_card_jobs_get_distinct_cards(tmp_path):
    nvml = FakeNVML([32] * 4)
    chid = grid.Job("chid", 1e-5, 32, 8, 0.1, 3, 64)
    scheduler, launcher, _ = make(tmp_path, [chid], nvml)
    scheduler.run()
    (process,) = launcher.started
    assert sorted(process.cards) == [0, 1, 2, 3] and process.env["CLUE_CARDS"] == "4"


def test_fewer_cards_when_fewer_are_free(tmp_path):
    nvml = FakeNVML([32] * 4, used_gib=[0, 0, 31, 31])
    cmrc, c3 = grid.Job("cmrc2018", 1e-5, 24, 4, 0.1, 2, 512), grid.Job("c3", 1e-5, 24, 12, 0.1, 8, 512)
    scheduler, launcher, _ = make(tmp_path, [c3, cmrc], nvml)
    scheduler.run()
    by_task = {launcher.job_of(p.argv).task: p for p in launcher.started}
    assert len(by_task["c3"].cards) == 2 and by_task["c3"].env["CLUE_CARDS"] == "2"  # 24 / 2 and 12 / 2
    assert len(set(by_task["c3"].cards)) == 2


def test_failure_retries_and_releases_claims(tmp_path):
    nvml = FakeNVML([16])
    job = cls_job()
    scheduler, launcher, lines = make(tmp_path, [job], nvml, retries=2,
                                      outcomes={f"tnews/{job.name}": [(1, "boom\nTraceback: x\n")] * 5})
    assert scheduler.run() == 1
    assert len(launcher.started) == 3 and scheduler.claims == [0.0] and scheduler.running_on == [0]
    with open(tmp_path / "failures.json") as f:
        (failure,) = json.load(f)
    assert failure["reason"] == "exit 1" and failure["attempts"] == 3 and failure["log_tail"][-1] == "Traceback: x"


def test_out_of_memory_halves_the_micro_batch(tmp_path):
    nvml = FakeNVML([16])
    job = cls_job(bs=64)
    scheduler, launcher, lines = make(tmp_path, [job], nvml, outcomes={
        f"tnews/{job.name}": [(1, "RuntimeError: ResourceExhaustedError: Out of memory error on GPU 0\n")]})
    assert scheduler.run() == 0
    assert [p.argv[8] for p in launcher.started] == ["1", "2"]  # accumulation 1, then 2: micro-batch 64 -> 32
    assert [p.argv[4] for p in launcher.started] == ["64", "64"]  # same effective batch, same result file
    assert results.read_record(grid.record_path(str(tmp_path), job)) is not None


def test_finished_grid_launches_nothing(tmp_path):
    jobs = grid.full_grid()
    for job in jobs:
        results.write_record(grid.record_path(str(tmp_path), job), {"schema": results.SCHEMA, "status": "complete"})

    class NoGpu:
        def __len__(self):
            return 8

        def place(self, *a):
            raise AssertionError("a GPU was looked at")

    launcher = FakeLauncher(str(tmp_path))
    lines = []
    scheduler = grid.Scheduler(jobs, str(tmp_path), "m", NoGpu(), launcher, sleep=lambda s: None, out=lines.append)
    assert scheduler.run() == 0 and launcher.started == []
    assert lines[0] == "134 of 134 jobs already complete; 0 to run"


def test_stop_then_restart_completes_every_job_once(tmp_path):
    nvml = FakeNVML([16])  # two jobs fit at a time: two waves
    jobs = [cls_job(lr=lr, bs=bs) for lr in (1e-5, 2e-5) for bs in (16, 32)]
    scheduler, launcher, _ = make(tmp_path, jobs, nvml, duration=2)
    rounds = [0]

    def sleep(_):
        rounds[0] += 1
        if rounds[0] == 3:  # a signal arrives while the second wave of jobs runs
            scheduler.request_stop(15)

    scheduler.sleep = sleep
    assert scheduler.run() is None
    assert launcher.stopped and scheduler.claims == [0.0] and scheduler.running_on == [0]
    done_before = {j.name for j in jobs if grid.is_complete(str(tmp_path), j)}
    assert 0 < len(done_before) < len(jobs)

    again, launcher2, _ = make(tmp_path, jobs, FakeNVML([16]))
    assert again.run() == 0
    relaunched = {launcher2.job_of(p.argv).name for p in launcher2.started}
    assert relaunched == {j.name for j in jobs} - done_before  # nothing finished runs twice
    records = [n for n in os.listdir(tmp_path / "tnews") if n.endswith(".json")]
    assert sorted(records) == sorted(j.name + ".json" for j in jobs)


def test_cpu_slots(tmp_path):
    scheduler, launcher, _ = make(tmp_path, [cls_job(lr=lr) for lr in (1e-5, 2e-5, 3e-5)], None, slots=2, duration=2)
    assert scheduler.run() == 0
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in launcher.started] == ["", "", ""]
    assert [p.polls for p in launcher.started] == [2, 2, 2] and len(launcher.started) == 3


def test_real_nvml_absent_is_an_error_not_a_hang():
    with pytest.raises(pynvml.NVMLError):
        grid.GpuPool(pynvml)
