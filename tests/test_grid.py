"""The grid and its scheduler, with a fake NVML and fake jobs (no GPU, no training)."""

import dataclasses
import json
import os
import sys
from types import SimpleNamespace

from cluebench import results
from cluebench.grid import best_jobs, footprint, scheduler as grid
from helpers import load_script

import pynvml
import pytest

GIB = 1 << 30


def test_full_grid_matches_upstream():
    jobs = grid.full_grid()
    assert len(jobs) == 134 and sum(j.is_reading for j in jobs) == 18
    counts = {t: sum(j.task == t for j in jobs) for t in grid.CLS_TASKS + grid.READING_TASKS}
    assert counts == {
        "afqmc": 12,
        "tnews": 12,
        "iflytek": 24,
        "ocnli": 12,
        "cmnli": 12,
        "cluewsc2020": 32,
        "csl": 12,
        "chid": 6,
        "cmrc2018": 6,
        "c3": 6,
    }
    assert jobs[0].command("m") == ["bash", "run_cls.sh", "afqmc", "1e-05", "16", "3", "128", "m", "1", "0.1"]
    assert jobs[0].name == "1e-05_16_0.1"
    assert [j.name for j in jobs if j.task == "iflytek"][:2] == ["1e-05_16_0.1", "1e-05_16_0.0"]
    assert all(j.accumulation == 2 and j.max_seq_length == 256 for j in jobs if j.task == "csl")
    wsc8 = [j for j in jobs if j.task == "cluewsc2020" and j.batch_size == 8]
    assert [j.name for j in wsc8] == [
        f"{lr}_8_{d}" for lr in ("1e-05", "2e-05", "3e-05", "5e-05") for d in ("0.1", "0.0")
    ]
    mrc = [j.command("m") for j in jobs if j.is_reading]
    assert mrc[:3] == [
        ["bash", "run_mrc.sh", "m", "chid", "32", "1e-05", "8"],
        ["bash", "run_mrc.sh", "m", "cmrc2018", "32", "1e-05", "4"],
        ["bash", "run_mrc.sh", "m", "c3", "32", "1e-05", "16"],
    ]
    assert mrc[5] == ["bash", "run_mrc.sh", "m", "c3", "24", "1e-05", "12"]


def test_select_and_shards():
    jobs = grid.full_grid()
    assert len(grid.select(jobs, tasks=["tnews"], learning_rates=[2e-5], batch_sizes=[32])) == 1
    parts = [grid.select(jobs, shard=(i, 3)) for i in range(3)]
    names = [(j.task, j.name) for part in parts for j in part]
    assert [len(part) for part in parts] == [45, 45, 44]
    assert len(names) == len(set(names)) == 134  # disjoint, and together the whole grid
    assert parts[1] == grid.select(jobs, shard=(1, 3))  # deterministic


def test_off_grid_rates_add_jobs_after_upstreams():
    assert grid.upstream_rates() == [1e-5, 2e-5, 3e-5, 5e-5]
    # rates some task has (5e-05: classification only) stay filters; 5e-3 is 0.005, said once
    assert grid.off_grid([2e-5, 0.005, 5e-5, 5e-3, 1e-3]) == [0.005, 0.001]
    assert grid.off_grid(None) == grid.off_grid([3e-5]) == []
    upstream, jobs = grid.full_grid(), grid.full_grid([0.005])
    assert jobs[:134] == upstream  # upstream's order and shards unchanged
    added = jobs[134:]
    assert all(j.learning_rate == 0.005 for j in added)
    # each task at its own batch sizes and settings, as at one of its upstream rates
    for task in grid.CLS_TASKS + grid.READING_TASKS:
        at_1e5 = [
            dataclasses.replace(j, learning_rate=0.005) for j in upstream if j.task == task and j.learning_rate == 1e-5
        ]
        assert sorted(at_1e5, key=str) == sorted((j for j in added if j.task == task), key=str), task
    tnews = grid.select(jobs, ["tnews"], [0.005], [16])
    assert [j.name for j in tnews] == ["0.005_16_0.1"] and best_jobs.hyperparameters("0.005_16_0.1")
    assert tnews[0].command("m") == ["bash", "run_cls.sh", "tnews", "0.005", "16", "3", "128", "m", "1", "0.1"]
    c3 = grid.select(jobs, ["c3"], [0.005], [24])
    assert [j.command("m") for j in c3] == [["bash", "run_mrc.sh", "m", "c3", "24", "0.005", "12"]]
    assert grid.select(jobs, learning_rates=[2e-5]) == grid.select(upstream, learning_rates=[2e-5])  # as before


def test_grid_search_off_grid_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__ inside grid_search_tools/
    monkeypatch.setenv("PYTHON", sys.executable)  # main() sets it for the wrappers
    monkeypatch.setattr(sys, "argv", ["grid_search.py"])  # argparse's program name
    script = load_script("grid_search_tools/grid_search.py")
    base = [
        "some-model",
        "--device",
        "cpu",
        "--output_root",
        str(tmp_path),
        "--tasks",
        "tnews",
        "c3",
        "--batch_sizes",
        "16",
        "24",
        "--learning_rates",
    ]
    # without the flag a rate upstream lacks is taken for a typo, as before: one line, exit 2
    for argv, message in (
        [
            base + ["7e-05"],
            "--tasks, --learning_rates and --batch_sizes together select no job "
            "of the grid (7e-05 not in it: --off_grid adds jobs at such rates)",
        ],
        [base[:-1] + ["--off_grid"], "--off_grid needs --learning_rates: the rates to add"],
    ):
        with pytest.raises(SystemExit) as e:
            script.parse_args(argv)
        assert e.value.code == 2 and capsys.readouterr().err.splitlines()[-1] == "grid_search.py: error: " + message
    args = script.parse_args(base + ["2e-05", "0.005", "--off_grid"])
    assert args.off_grid_rates == [0.005]
    assert script.main(base + ["2e-05", "0.005", "--off_grid", "--dry_run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("4 jobs for some-model")
    assert out[1] == (
        "  learning rate 0.005: not in upstream's grid (1e-05 2e-05 3e-05 5e-05); 2 jobs at it, "
        "with each task's usual batch sizes and settings"
    )
    assert out[2:] == [
        "  bash run_cls.sh tnews 2e-05 16 3 128 some-model 1 0.1",
        "  bash run_mrc.sh some-model c3 24 2e-05 12",
        "  bash run_cls.sh tnews 0.005 16 3 128 some-model 1 0.1",
        "  bash run_mrc.sh some-model c3 24 0.005 12",
    ]
    assert os.listdir(tmp_path) == []  # a dry run writes nothing


def test_run_dir_never_inside_the_model(tmp_path):
    model = tmp_path / "models" / "my model"
    model.mkdir(parents=True)
    assert grid.run_dir(str(model), "/runs") == "/runs/my model"
    assert grid.run_dir("ernie-3.0-medium-zh") == "./ernie-3.0-medium-zh"


class FakeNVML:
    """GPUs with a total and externally used memory; running fake jobs add their use to their cards.
    Handles are NVML indices; bus_order[i] is the place of NVML's card i in PCI bus order (CUDA's
    ordinal under CUDA_DEVICE_ORDER=PCI_BUS_ID), by default the same."""

    NVMLError = pynvml.NVMLError  # what grid.open_gpus catches, as on the real module

    def __init__(self, totals_gib, used_gib=None, bus_order=None):
        self.total = [t * GIB for t in totals_gib]
        self.external = [u * GIB for u in (used_gib or [0] * len(totals_gib))]
        self.bus_order = list(bus_order or range(len(totals_gib)))
        self.jobs = []  # FakeProcess objects holding memory

    def nvmlDeviceGetPciInfo(self, h):
        return SimpleNamespace(busId=f"00000000:{0x18 + 0x10 * self.bus_order[h]:02X}:00.0".encode())

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{self.bus_order[h]:x}{h:x}c0ffee-0000-0000-0000-00000000000{h:x}"

    def handles_of(self, visible):
        """NVML indices of a CUDA_VISIBLE_DEVICES the scheduler gave (ordinals in PCI order, or UUIDs)."""
        names = [n for n in visible.split(",") if n]
        return [
            next(h for h in range(len(self.total)) if self.nvmlDeviceGetUUID(h) == n)
            if n.startswith("GPU-")
            else self.bus_order.index(int(n))
            for n in names
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=p.pid, usedGpuMemory=p.memory) for p in self.jobs if h in p.cards and p.running]

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
        self.cards = launcher.nvml.handles_of(env["CUDA_VISIBLE_DEVICES"]) if launcher.nvml else []
        self.pid = 1000 + len(launcher.started)
        self.polls, self.running, self.memory = 0, True, 0
        self.round = launcher.round  # the scheduling round it started in
        self.outcome = launcher.outcome(self)

    def poll(self):
        if not self.running:
            return self.code
        self.polls += 1
        self.memory = self.launcher.memory_gib * GIB  # allocated once started
        if self.polls < self.launcher.duration:
            return None
        self.running = False
        self.code, log_text = self.outcome
        job = self.launcher.job_of(self.argv)
        os.makedirs(os.path.dirname(grid.log_path(self.launcher.dir, job)), exist_ok=True)
        with open(grid.log_path(self.launcher.dir, job), "w") as f:
            f.write(log_text)
        if self.code == 0:
            results.write_record(
                grid.record_path(self.launcher.dir, job),
                {"schema": results.SCHEMA, "status": "complete", "best": {"value": "50.00"}},
            )
        return self.code


class FakeLauncher:
    def __init__(self, directory, nvml=None, duration=2, outcomes=None, memory_gib=3):
        self.dir, self.nvml, self.duration, self.memory_gib = directory, nvml, duration, memory_gib
        self.outcomes = outcomes or {}  # job name/task -> list of (code, log) for successive attempts
        self.started, self.stopped = [], []
        self.round = 0  # counted by the scheduler's sleeps (make() below)

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

    def stop(self, process, grace=None):
        process.running, process.code, process.grace = False, -15, grace
        self.stopped.append(process)


def fake_host(total_gib=1024, available_gib=None):
    """psutil's virtual_memory() of a host with that much memory."""
    memory = SimpleNamespace(
        total=total_gib * GIB, available=(total_gib if available_gib is None else available_gib) * GIB
    )
    return SimpleNamespace(virtual_memory=lambda: memory)


def make(tmp_path, jobs, nvml, **kwargs):
    """A Scheduler over fake jobs; with nvml, a GpuPool of a roomy 64-core host taking up to 8 jobs a card
    (so memory decides) unless pool= options say otherwise."""
    launcher = FakeLauncher(
        str(tmp_path), nvml, **{k: kwargs.pop(k) for k in ("duration", "outcomes", "memory_gib") if k in kwargs}
    )
    options = dict(dict(max_jobs_per_gpu=8, host=fake_host(), cores=64, environ={}), **kwargs.pop("pool", {}))
    pool = grid.GpuPool(nvml, **options) if nvml else grid.CpuPool(kwargs.pop("slots", 2))
    lines = []

    def sleep(seconds):
        launcher.round += 1

    scheduler = grid.Scheduler(
        jobs,
        str(tmp_path),
        "model",
        pool,
        launcher,
        sleep=sleep,
        out=lines.append,
        device="gpu" if nvml else "cpu",
        **kwargs,
    )
    return scheduler, launcher, lines


def cls_job(task="tnews", lr=2e-5, bs=32, accumulation=1):
    return grid.Job(task, lr, bs, accumulation, 0.1, 3, 128)


def test_jobs_go_only_where_they_fit(tmp_path):
    # a classification job of batch 32 at length 128 of a base model needs ~6 GiB: card 0 has 5 free, card 1 16
    need = footprint.gpu_gib(footprint.BASE, cls_job())
    assert 5.5 < need < 6.5
    nvml = FakeNVML([16, 16], used_gib=[11, 0])
    jobs = [cls_job(lr=lr) for lr in (1e-5, 2e-5, 3e-5)]
    scheduler, launcher, _ = make(tmp_path, jobs, nvml, duration=3)
    assert scheduler.run() == 0
    assert [p.cards for p in launcher.started] == [[1], [1], [1]]
    # two fit on card 1 at once (2 x 6 GiB + 1 GiB margin <= 16): the first two start together, the
    # third when they end (their third poll, in round 3)
    assert [p.round for p in launcher.started] == [0, 0, 3]
    assert scheduler.claims == [0.0, 0.0] and scheduler.running_on == [0, 0]


def test_claims_count_before_memory_shows(tmp_path):
    # NVML shows no use yet for a just-started job; its claim still keeps a second job off the card
    nvml = FakeNVML([10])
    scheduler, launcher, _ = make(tmp_path, [cls_job(lr=1e-5), cls_job(lr=2e-5)], nvml, duration=2)
    scheduler.run()
    # the second starts only in the round the first ends (its second poll), not beside it
    assert [p.round for p in launcher.started] == [0, 2]


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
    started = [(launcher.job_of(p.argv).task, sorted(p.cards), p.env["CLUE_CARDS"], p.round) for p in launcher.started]
    # only cards 0 and 1 are free: C3 (first, the bigger job) splits over them (24 / 2 and 12 / 2
    # divide), and CMRC2018 fits beside it at once (9.7 + 7.9 GiB per card, of 32)
    assert started == [("c3", [0, 1], "2", 0), ("cmrc2018", [0, 1], "2", 0)]


def test_failure_retries_and_releases_claims(tmp_path):
    nvml = FakeNVML([16])
    job = cls_job()
    scheduler, launcher, lines = make(
        tmp_path, [job], nvml, retries=2, outcomes={f"tnews/{job.name}": [(1, "boom\nTraceback: x\n")] * 5}
    )
    assert scheduler.run() == 1
    assert len(launcher.started) == 3 and scheduler.claims == [0.0] and scheduler.running_on == [0]
    with open(tmp_path / "failures.json") as f:
        (failure,) = json.load(f)
    assert failure == {
        "task": "tnews",
        "job": job.name,
        "kind": "failed",
        "reason": "exit 1",
        "attempts": 3,
        "log_tail": ["boom", "Traceback: x"],
    }
    start = "> start tnews 2e-05_32_0.1 (accumulation 1) on gpu 0"
    assert lines == [
        "0 of 1 jobs already complete; 1 to run",
        start,
        "> failed (exit 1) tnews 2e-05_32_0.1; retry 1 of 2",
        start,
        "> failed (exit 1) tnews 2e-05_32_0.1; retry 2 of 2",
        start,
        "> failed (exit 1) tnews 2e-05_32_0.1; giving up. Last lines of its log:",
        "    boom",
        "    Traceback: x",
    ]


def test_failures_json_keeps_a_bounded_tail(tmp_path):
    # a job that wrote megabytes on one line, then many lines: failures.json keeps 20 lines of 500 characters
    job = cls_job()
    flood = "x" * (4 << 20) + "\n" + "".join(f"line {i} " + "y" * 900 + "\n" for i in range(100))
    scheduler, _, lines = make(tmp_path, [job], FakeNVML([16]), retries=0, outcomes={f"tnews/{job.name}": [(1, flood)]})
    assert scheduler.run() == 1
    with open(tmp_path / "failures.json") as f:
        (failure,) = json.load(f)
    assert len(failure["log_tail"]) == 20 and failure["log_tail"][-1].startswith("line 99 ")
    assert {len(line) for line in failure["log_tail"]} == {500}
    assert os.path.getsize(tmp_path / "failures.json") < 16 << 10
    assert max(len(line) for line in lines) < 600


def test_out_of_memory_halves_the_micro_batch(tmp_path):
    nvml = FakeNVML([16])
    job = cls_job(bs=64)
    scheduler, launcher, lines = make(
        tmp_path,
        [job],
        nvml,
        outcomes={f"tnews/{job.name}": [(1, "RuntimeError: ResourceExhaustedError: Out of memory error on GPU 0\n")]},
    )
    assert scheduler.run() == 0
    assert [p.argv[8] for p in launcher.started] == ["1", "2"]  # accumulation 1, then 2: micro-batch 64 -> 32
    assert [p.argv[4] for p in launcher.started] == ["64", "64"]  # same effective batch, same result file
    # the first attempt's resume checkpoint is of another accumulation: the retry starts over
    assert ["--resume", "never"] == launcher.started[1].argv[-2:] and "--resume" not in launcher.started[0].argv
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
    nvml = FakeNVML([13])  # two jobs fit at a time: two waves
    jobs = [cls_job(lr=lr, bs=bs) for lr in (1e-5, 2e-5) for bs in (16, 32)]
    scheduler, launcher, _ = make(tmp_path, jobs, nvml, duration=2)
    rounds = [0]

    def sleep(_):
        rounds[0] += 1
        if rounds[0] == 3:  # a signal arrives while the second wave of jobs runs
            scheduler.request_stop(15)

    scheduler.sleep = sleep
    assert scheduler.run() is None
    # batch 16 costs more per sequence: those two run first and finish; the batch-32 two are stopped
    assert [launcher.job_of(p.argv).name for p in launcher.stopped] == ["1e-05_32_0.1", "2e-05_32_0.1"]
    assert scheduler.claims == [0.0] and scheduler.running_on == [0]
    done_before = {j.name for j in jobs if grid.is_complete(str(tmp_path), j)}
    assert done_before == {"1e-05_16_0.1", "2e-05_16_0.1"}

    again, launcher2, _ = make(tmp_path, jobs, FakeNVML([13]))
    assert again.run() == 0
    relaunched = {launcher2.job_of(p.argv).name for p in launcher2.started}
    assert sorted(relaunched) == ["1e-05_32_0.1", "2e-05_32_0.1"] and len(launcher2.started) == 2  # none twice
    records = [n for n in os.listdir(tmp_path / "tnews") if n.endswith(".json")]
    assert sorted(records) == sorted(j.name + ".json" for j in jobs)


def test_cpu_slots(tmp_path):
    scheduler, launcher, _ = make(tmp_path, [cls_job(lr=lr) for lr in (1e-5, 2e-5, 3e-5)], None, slots=2, duration=2)
    assert scheduler.run() == 0
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in launcher.started] == ["", "", ""]
    assert [p.round for p in launcher.started] == [0, 0, 2]  # two slots: the third waits for one


class BrokenNVML(FakeNVML):
    """NVML as on a machine without the NVIDIA driver: nvmlInit fails as the real one does there."""

    def nvmlInit(self):
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)


def grid_search_without_gpus(nvml, tmp_path, monkeypatch, capsys):
    """grid_search.py's main() in this process, `import pynvml` giving the fake: (exit status, stderr)."""
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__ inside grid_search_tools/
    monkeypatch.setenv("PYTHON", sys.executable)  # main() sets it for the wrappers
    monkeypatch.chdir(tmp_path)
    script = load_script("grid_search_tools/grid_search.py")
    code = script.main(
        [
            "some-model",
            "--skip_warmup",
            "--output_root",
            str(tmp_path),
            "--tasks",
            "tnews",
            "--learning_rates",
            "2e-05",
            "--batch_sizes",
            "32",
        ]
    )
    return code, capsys.readouterr().err


def test_no_nvidia_driver_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    code, err = grid_search_without_gpus(BrokenNVML([]), tmp_path, monkeypatch, capsys)
    assert (code, err) == (
        2,
        "grid_search: error: no NVIDIA GPU can be used (NVML Shared Library Not Found); "
        "on a CPU use --device cpu --slots N\n",
    )
    assert os.listdir(tmp_path) == []  # nothing started, nothing written


def test_nvml_with_zero_devices_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    code, err = grid_search_without_gpus(FakeNVML([]), tmp_path, monkeypatch, capsys)
    assert (code, err) == (2, "grid_search: error: NVML sees no GPU; on a CPU use --device cpu --slots N\n")
    assert os.listdir(tmp_path) == []


def test_a_run_folder_is_not_taken_for_a_local_model(tmp_path, monkeypatch):
    """`hfl/roberta-wwm-ext` run from the output root: its run folder ./hfl/roberta-wwm-ext exists after the
    first run, and must not turn the name into a local path (the second run looked elsewhere)."""
    monkeypatch.chdir(tmp_path)
    first = grid.run_dir("hfl/roberta-wwm-ext")
    os.makedirs(os.path.join(first, "tnews"))
    assert grid.run_dir("hfl/roberta-wwm-ext") == first == "./hfl/roberta-wwm-ext"
    assert grid.run_dir("hfl/rbt3") == "./hfl/rbt3"
    (tmp_path / "models" / "ernie").mkdir(parents=True)
    (tmp_path / "models" / "ernie" / "config.json").write_text("{}")
    assert grid.run_dir("models/ernie", "out") == "out/ernie"
    with pytest.raises(grid.SetupError, match="model directory not found: models/ernei"):
        grid.run_dir("models/ernei")


@pytest.mark.slow  # subprocesses and a signal
def test_stop_returns_when_the_jobs_python_has_finished(tmp_path):
    """The wrapper shell dies on SIGTERM at once; its Python finishes its checkpoint first: stop waits for it."""
    import subprocess

    done = tmp_path / "checkpoint"
    child = (
        "import signal, time, pathlib\n"
        "def on_term(*_):\n"
        f"    time.sleep(0.5); pathlib.Path({str(done)!r}).write_text('written'); raise SystemExit(143)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        f"pathlib.Path({str(tmp_path / 'ready')!r}).touch()\n"
        "time.sleep(60)\n"
    )
    wrapper = subprocess.Popen(["bash", "-c", f'"{sys.executable}" -c "$0"; echo never', child], start_new_session=True)
    while not (tmp_path / "ready").exists():
        assert wrapper.poll() is None
    grid.ProcessLauncher.stop(wrapper)
    assert done.read_text() == "written" and not grid.group_running(wrapper.pid)
