"""Stopping grid jobs (cluebench/processes.py and the scheduler's use of it): every process of a job gets
SIGTERM, ranks in sessions of their own too, and time to write its checkpoint; several jobs are stopped
at once; nothing of a job is left when a stop returns. Plain Python processes first, then Paddle's
launcher over plain ranks, then the grid of one two-rank C3 job on CPU, stopped and resumed."""

import os
import re
import signal
import subprocess
import sys
import time

from cluebench import results
from cluebench.grid import processes, scheduler as grid
from helpers import NO_GPU, ROOT, load_script
from test_grid import FakeLauncher, cls_job

import pytest

TOOLS = os.path.join(ROOT, "grid_search_tools")
EVIDENCE = "/tmp/stop_evidence.txt"


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def running(pid):
    """Whether pid is a live process (a zombie, waiting for its reaper, is not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


STARTED = []  # the jobs of the running test, stopped after it whatever happened


@pytest.fixture(autouse=True)
def nothing_left_behind():
    yield
    while STARTED:
        processes.stop(STARTED.pop(), grace=2)


def start(tmp_path, *argv, env=None):
    STARTED.append(processes.start([sys.executable, *argv], env or {}, str(tmp_path)))
    return STARTED[-1]


# A process that, on SIGTERM, notes the time, is busy `delay` seconds more (its checkpoint), notes the
# time again and exits 143: files NAME.term and NAME.exit in OUT. With --session it first starts itself
# again in a session of its own (os.setsid) as NAME-grandchild, and waits.
BUSY = """
import os, signal, subprocess, sys, time
out, name, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
def note(what):
    with open(os.path.join(out, f"{name}.{what}"), "w") as f:
        f.write(repr(time.time()))
got = []
signal.signal(signal.SIGTERM, lambda *_: got.append(note("term")))
if "--session" in sys.argv:
    subprocess.Popen([sys.executable, __file__, out, name + "-grandchild", sys.argv[-1]], start_new_session=True)
with open(os.path.join(out, f"{name}.pid"), "w") as f:
    f.write(str(os.getpid()))
while not got:
    time.sleep(0.01)
time.sleep(delay)
note("exit")
sys.exit(143)
"""


def noted(tmp_path, name, what):
    return float((tmp_path / f"{name}.{what}").read_text())


# ---------------------------------------------------------------- processes.py on plain processes
def test_stop_reaches_a_grandchild_in_its_own_session_and_waits_for_it(tmp_path):
    busy = script(tmp_path, "busy.py", BUSY)
    job = start(tmp_path, busy, str(tmp_path), "child", "0", "--session", "1.0")
    wait_for(lambda: (tmp_path / "child-grandchild.pid").exists(), 30, "the grandchild")
    grandchild = int((tmp_path / "child-grandchild.pid").read_text())
    assert os.getsid(grandchild) != os.getsid(job.pid)  # out of reach of the job's process group
    assert grandchild in processes.job_processes(job) and job.pid in processes.job_processes(job)

    assert processes.stop(job, grace=30) == []
    assert (tmp_path / "child-grandchild.exit").exists()  # it had its second
    assert not running(grandchild) and processes.job_processes(job) == [] and job.returncode == 143
    # the child, its parent in the job's own session, heard SIGTERM only once the grandchild had exited:
    # as paddle.distributed.launch over its ranks, it could otherwise have killed it early
    assert noted(tmp_path, "child", "term") >= noted(tmp_path, "child-grandchild", "exit")


def test_sigterm_ignored_gets_sigkill_after_the_grace(tmp_path):
    stubborn = script(
        tmp_path,
        "stubborn.py",
        (
            "import os, signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "if len(sys.argv) == 2:\n"
            "    subprocess.Popen([sys.executable, __file__, sys.argv[1], 'grandchild'], start_new_session=True)\n"
            "open(os.path.join(sys.argv[1], f'{len(sys.argv)}.pid'), 'w').write(str(os.getpid()))\n"
            "time.sleep(120)\n"
        ),
    )
    job = start(tmp_path, stubborn, str(tmp_path))
    wait_for(lambda: (tmp_path / "3.pid").exists() and (tmp_path / "2.pid").exists(), 30, "both processes")
    grandchild = int((tmp_path / "3.pid").read_text())
    began = time.monotonic()
    assert processes.stop(job, grace=1.0) == []
    assert time.monotonic() - began >= 1.0  # the grace was given in full
    assert job.returncode == -signal.SIGKILL and not running(grandchild)


def test_stop_all_signals_every_job_before_any_has_exited(tmp_path):
    busy = script(tmp_path, "busy.py", BUSY)
    jobs = [start(tmp_path, busy, str(tmp_path), f"job{i}", "1.0") for i in range(3)]
    wait_for(lambda: all((tmp_path / f"job{i}.pid").exists() for i in range(3)), 30, "the jobs")
    assert processes.stop_all(jobs, grace=30) == [[], [], []]
    terms = [noted(tmp_path, f"job{i}", "term") for i in range(3)]
    exits = [noted(tmp_path, f"job{i}", "exit") for i in range(3)]
    assert max(terms) < min(exits)  # together, not one after another: 3 jobs take one grace, not 3
    assert [j.returncode for j in jobs] == [143] * 3


def test_a_process_of_the_job_is_found_by_its_token_after_its_parent_died(tmp_path):
    orphan = script(
        tmp_path,
        "orphan.py",
        (
            "import os, subprocess, sys, time\n"
            "if len(sys.argv) == 2:  # the wrapper: starts the orphan-to-be in a session of its own, exits\n"
            "    subprocess.Popen([sys.executable, __file__, sys.argv[1], 'orphan'], start_new_session=True)\n"
            "    sys.exit(0)\n"
            "open(os.path.join(sys.argv[1], 'orphan.pid'), 'w').write(str(os.getpid()))\n"
            "time.sleep(120)\n"
        ),
    )
    job = start(tmp_path, orphan, str(tmp_path))
    other = start(tmp_path, "-c", "import time; time.sleep(120)")  # another job: its processes are not ours
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        assert job.wait(timeout=30) == 0
        wait_for(lambda: (tmp_path / "orphan.pid").exists(), 30, "the orphan")
        pid = int((tmp_path / "orphan.pid").read_text())
        assert processes.job_processes(job) == [pid]  # neither the other job's nor a stranger's (no token)
        assert job.token != other.token and processes.job_processes(other) == [other.pid]
        assert processes.stop(job, grace=10) == [] and not running(pid)
        assert running(other.pid) and running(stranger.pid)  # untouched
    finally:
        stranger.kill()
        stranger.wait()


@NO_GPU
@pytest.mark.slow  # Paddle's launcher (it imports Paddle)
def test_paddle_launcher_leaves_a_slow_rank_its_checkpoint(tmp_path):
    """paddle.distributed.launch kills the other ranks 3 s after one exits (controllers/controller.py,
    watch: pod.stop(timeout=3), seen within its 1 s polls); rank 0's checkpoint here takes 8 s after rank 1
    has gone."""
    rank = script(
        tmp_path,
        "rank.py",
        (
            "import os, signal, sys, time\n"
            "out, rank = sys.argv[1], os.environ['PADDLE_TRAINER_ID']\n"
            "got = []\n"
            "signal.signal(signal.SIGTERM, lambda *_: got.append(1))\n"
            "open(os.path.join(out, f'ready.{rank}'), 'w').write(str(os.getpid()))\n"
            "while not got:\n"
            "    time.sleep(0.01)\n"
            "if rank == '0':\n"
            "    time.sleep(8)\n"
            "    open(os.path.join(out, 'saved'), 'w').write('written')\n"
            "sys.exit(143)\n"
        ),
    )
    job = start(
        tmp_path,
        "-m",
        "paddle.distributed.launch",
        "--nproc_per_node",
        "2",
        "--log_dir",
        str(tmp_path / "logs"),
        rank,
        str(tmp_path),
        env={"CUDA_VISIBLE_DEVICES": None},
    )
    wait_for(lambda: all((tmp_path / f"ready.{r}").exists() for r in (0, 1)), 120, "both ranks")
    ranks = [int((tmp_path / f"ready.{r}").read_text()) for r in (0, 1)]
    assert all(os.getsid(pid) != os.getsid(job.pid) for pid in ranks)  # sessions of their own
    assert processes.stop(job, grace=60) == []
    assert (tmp_path / "saved").read_text() == "written"
    assert processes.job_processes(job) == [] and not any(map(running, ranks))


# ---------------------------------------------------------------- the scheduler
class StopAllLauncher(FakeLauncher):
    """A fake launcher that stops jobs together, some of whose processes may outlive SIGKILL."""

    def __init__(self, *args, survivors=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.survivors, self.alive = [], survivors or {}, {}

    def stop_all(self, running, grace):
        self.calls.append(([p.pid for p in running], grace))
        for p in running:
            self.stop(p, grace)
            self.alive[p.pid] = self.survivors.get(p.pid, [])
        return [self.alive[p.pid] for p in running]

    def pids(self, process):
        return self.alive.get(process.pid, [])


def scheduler_of(tmp_path, jobs, launcher, pool, **kwargs):
    lines = []

    def sleep(_):
        launcher.round += 1

    return grid.Scheduler(
        jobs, str(tmp_path), "m", pool, launcher, device="cpu", sleep=sleep, out=lines.append, **kwargs
    ), lines


def test_signal_stops_the_running_jobs_together_with_the_grace(tmp_path):
    launcher = StopAllLauncher(str(tmp_path), duration=1000)
    scheduler, lines = scheduler_of(
        tmp_path, [cls_job(lr=1e-5), cls_job(lr=2e-5)], launcher, grid.CpuPool(2), stop_grace=7.5
    )
    scheduler.sleep = lambda _: scheduler.request_stop(15)
    assert scheduler.run() is None
    assert launcher.calls == [([1000, 1001], 7.5)]  # one call: one deadline for both
    assert "stopping on signal 15: ending 2 running jobs (grace 7.5 s for their checkpoints)" in lines
    assert scheduler.running_on == [0, 0] and scheduler.running == []


def test_default_grace_and_one_at_a_time_launchers(tmp_path):
    launcher = FakeLauncher(str(tmp_path), duration=1000)  # no stop_all: stopped one by one
    scheduler, lines = scheduler_of(tmp_path, [cls_job()], launcher, grid.CpuPool(1))
    scheduler.sleep = lambda _: scheduler.request_stop(2)
    assert scheduler.run() is None
    assert [p.grace for p in launcher.stopped] == [grid.DEFAULT_STOP_GRACE] == [120.0]
    assert "stopping on signal 2: ending 1 running jobs (grace 120 s for their checkpoints)" in lines


def test_a_card_stays_claimed_while_a_timed_out_job_has_processes_left(tmp_path):
    # one slot; the first job runs past its time limit and a process of it outlives SIGKILL for a round
    launcher = StopAllLauncher(str(tmp_path), duration=1000, survivors={1000: [4242]})
    jobs = [cls_job(lr=1e-5, bs=16), cls_job(lr=2e-5)]  # batch 16 first (more work)
    scheduler, lines = scheduler_of(tmp_path, jobs, launcher, grid.CpuPool(1), job_timeout=2, stop_grace=3)
    scheduler.clock = lambda: launcher.round * 60.0

    def sleep(_):
        launcher.round += 1
        if launcher.round == 5:  # the survivor exits
            launcher.alive[1000] = []
        if launcher.round == 6:
            launcher.duration = 1  # the second job ends at its next poll

    scheduler.sleep = sleep
    assert scheduler.run() == 1
    assert launcher.calls == [([1000], 3)]
    assert [p.round for p in launcher.started] == [0, 5]  # the slot was free only once 4242 had gone
    assert "> tnews 1e-05_16_0.1: processes 4242 survived SIGKILL; cpu 0 stays claimed until they exit" in lines
    assert "> tnews 1e-05_16_0.1: its last processes have exited; cpu 0 released" in lines
    assert scheduler.running_on == [0] and scheduler.lingering == []


def test_cpu_ranks_take_slots_as_cards(tmp_path, monkeypatch):
    monkeypatch.setattr(grid, "usable_cores", lambda: 8)
    pool = grid.CpuPool(4, ranks=2)
    c3 = grid.Job("c3", 2e-5, 24, 12, 0.1, 8, 512)  # 24 and 12 split over 2 ranks
    odd = grid.Job("c3", 3e-5, 24, 3, 0.1, 8, 512)  # 3 accumulation steps do not: one rank
    placed = pool.place(c3, [0.0] * 4, [0, 0, 0, 0])
    assert placed.cards == [0, 1] and placed.threads == 2  # 8 cores // 4 slots, for each rank
    assert pool.environment(placed) == {"CUDA_VISIBLE_DEVICES": None, "OMP_NUM_THREADS": "2"}
    assert pool.place(odd, [0.0] * 4, [0, 0, 0, 0]).cards == [0]
    assert pool.place(cls_job(), [0.0] * 4, [1, 1, 1, 0]).cards == [3]
    assert pool.environment(pool.place(cls_job(), [0.0] * 4, [1, 1, 1, 0]))["CUDA_VISIBLE_DEVICES"] == ""
    assert pool.place(c3, [0.0] * 4, [1, 1, 1, 0]).cards == [3]  # the most that fit
    assert pool.place(c3, [0.0] * 4, [1, 1, 1, 1]) is None

    launcher = FakeLauncher(str(tmp_path))
    scheduler, lines = scheduler_of(tmp_path, [c3, cls_job(), cls_job(lr=1e-5), cls_job(lr=3e-5)], launcher, pool)
    assert scheduler.run() == 0
    assert [p.env["CLUE_CARDS"] for p in launcher.started] == ["2", "1", "1", "1"]
    assert "> start c3 2e-05_24_0.1 (accumulation 12) on cpu 0,1" in lines
    assert [p.round for p in launcher.started] == [0, 0, 0, 2]  # 2 + 1 + 1 slots, then the fourth job


def test_start_removes_variables_given_as_none(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    job = start(
        tmp_path,
        "-c",
        "import os, sys; sys.exit('CUDA_VISIBLE_DEVICES' in os.environ)",
        env={"CUDA_VISIBLE_DEVICES": None, "OMP_NUM_THREADS": "3"},
    )
    assert job.wait(timeout=30) == 0 and job.token.startswith(f"{os.getpid()}-")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--cpu_ranks", "2"], "--cpu_ranks is for --device cpu; on GPUs a job's ranks are its cards"),
        (["--device", "cpu", "--slots", "2", "--cpu_ranks", "3"], "--cpu_ranks 3: at most --slots (2)"),
        (["--device", "cpu", "--cpu_ranks", "0"], "argument --cpu_ranks: must be an integer >= 1, not '0'"),
        (["--stop_grace", "0"], "argument --stop_grace: must be a number > 0, not '0'"),
        (["--stop_grace", "inf"], "argument --stop_grace: must be a number > 0, not 'inf'"),
    ],
)
def test_grid_search_flags(flags, message, monkeypatch, capsys):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__ inside grid_search_tools/
    monkeypatch.setattr(sys, "argv", ["grid_search.py"])  # argparse's name for it
    parse = load_script("grid_search_tools/grid_search.py").parse_args
    with pytest.raises(SystemExit) as exit:
        parse(["some-model", *flags])
    assert exit.value.code == 2 and capsys.readouterr().err.splitlines()[-1] == "grid_search.py: error: " + message
    args = parse(["some-model", "--device", "cpu", "--slots", "3", "--cpu_ranks", "3", "--stop_grace", "2.5"])
    assert (args.cpu_ranks, args.stop_grace) == (3, 2.5)
    args = parse(["some-model"])
    assert (args.cpu_ranks, args.stop_grace) == (1, None)  # None: main() sizes it from the model's checkpoint


# ---------------------------------------------------------------- the grid: a two-rank C3 job on CPU
def job_table(grid_pid):
    """(pid, ppid, sid, state, cmdline) of every live process whose CLUE_JOB_TOKEN a grid_search.py of
    that PID gave (processes.start names the grid's PID in each token)."""
    rows = []
    for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if not any(e.startswith(f"{processes.TOKEN}={grid_pid}-".encode()) for e in f.read().split(b"\0")):
                    continue
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if fields[0] not in (b"Z", b"X"):
            rows.append((pid, int(fields[1]), int(fields[3]), fields[0].decode(), cmdline))
    return rows


def table_text(rows):
    return "".join(f"{pid}\t{ppid}\t{sid}\t{state}\t{cmd[:200]}\n" for pid, ppid, sid, state, cmd in rows) or "(none)\n"


GRID = [
    "--device",
    "cpu",
    "--slots",
    "2",
    "--cpu_ranks",
    "2",
    "--tasks",
    "c3",
    "--learning_rates",
    "2e-05",
    "--batch_sizes",
    "24",
    "--skip_warmup",
    "--poll",
    "0.3",
    "--stop_grace",
    "60",
]
# 2 ranks of micro-batch 2 over 22 features: 6 updates an epoch, 180 in all, about 15 s of training;
# a learning rate high enough that the dev accuracy moves, so the best result is not the first one
JOB_FLAGS = [
    "--",
    "--max_seq_length",
    "64",
    "--logging_steps",
    "1",
    "--batch_size",
    "2",
    "--gradient_accumulation_steps",
    "1",
    "--num_train_epochs",
    "30",
    "--learning_rate",
    "1e-3",
]


def grid_command(model, data, root):
    return [sys.executable, "grid_search.py", model, *GRID, "--data_dir", data, "--output_root", str(root), *JOB_FLAGS]


def grid_env(root):
    return dict(os.environ, PYTHONUNBUFFERED="1", CLUEBENCH_CACHE=str(root / "feature-cache"))


def outcome(record_file):
    """What must not depend on the stop: the dev history, the best result, the steps, the predictions."""
    record = results.read_record(record_file)
    files = {os.path.basename(p): open(p, "rb").read() for p in record["predictions"]}
    return record["best"], record["history"], record["throughput"]["optimizer_steps"], files


@NO_GPU
@pytest.mark.slow
def test_grid_stop_checkpoints_both_ranks_and_resumes_to_the_same_end(tiny_models, synthetic_data, tmp_path):
    tools_before = sorted(os.listdir(TOOLS))
    model, root = tiny_models["ernie"], tmp_path / "runs"
    job = grid.select(grid.full_grid(), ["c3"], [2e-5], [24])[0]
    directory = grid.run_dir(model, str(root))
    ranks = os.path.join(directory, "c3", job.name + ".ranks")
    logs = [os.path.join(ranks, f"workerlog.{r}") for r in (0, 1)]

    def read(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    proc = subprocess.Popen(
        grid_command(model, synthetic_data, root),
        cwd=TOOLS,
        env=grid_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            lambda: all("global step" in read(log) for log in logs) or proc.poll() is not None,
            240,
            "both ranks training",
        )
        before = job_table(proc.pid)
        proc.send_signal(signal.SIGTERM)
        during, deadline = [], time.monotonic() + 120  # what the stop looks like, for the evidence file
        while proc.poll() is None and time.monotonic() < deadline:
            rows = [(pid, state) for pid, _, _, state, _ in job_table(proc.pid)]
            if not during or during[-1][1] != rows:
                during.append((time.monotonic(), rows))
            time.sleep(0.02)
        output = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    after = job_table(proc.pid)
    stopped = [re.findall(r"SIGTERM: stopped at step (\d+);", read(log)) for log in logs]
    with open(EVIDENCE, "w") as f:
        f.write(
            f"grid_search.py pid {proc.pid}, exit status {proc.returncode}\n"
            f"columns: pid ppid sid state cmdline\n\n== before SIGTERM to the grid\n{table_text(before)}\n"
            f"== while it stopped (pid, state) each time the set changed\n"
        )
        start = during[0][0] if during else 0
        f.writelines(f"+{t - start:.2f}s {rows}\n" for t, rows in during)
        f.write(f"\n== after the grid exited\n{table_text(after)}\n== the ranks' stop lines\n")
        f.writelines(line + "\n" for log in logs for line in read(log).splitlines() if "SIGTERM:" in line)
        f.write(f"\n== grid output (end)\n{output[-1500:]}")

    assert proc.returncode == 130, output[-3000:]
    assert "stopping on signal 15: ending 1 running jobs (grace 60 s for their checkpoints)" in output
    assert len(before) == 4, table_text(before)  # the wrapper, the launcher and two ranks, in two more sessions
    assert len({sid for _, _, sid, _, _ in before}) == 3
    assert stopped[0] and stopped[0] == stopped[1], stopped  # both ranks, at the same step
    step = int(stopped[0][0])
    assert 0 < step < 180
    assert os.path.exists(os.path.join(directory, "c3", job.name, "resume.pdckpt"))
    assert after == [] and not any(running(pid) for pid, *_ in before)
    assert not grid.is_complete(directory, job)

    sizes = [len(read(log)) for log in logs]
    again = subprocess.run(
        grid_command(model, synthetic_data, root),
        cwd=TOOLS,
        env=grid_env(root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout[-3000:]
    for log, size in zip(logs, sizes):  # each rank went on from the checkpoint
        assert re.search(rf"resuming from \S+: step {step}, ", read(log)[size:]), read(log)[size:][-2000:]

    plain_root = tmp_path / "plain"
    plain = subprocess.run(
        grid_command(model, synthetic_data, plain_root),
        cwd=TOOLS,
        env=grid_env(plain_root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plain.returncode == 0, plain.stdout[-3000:]
    resumed = outcome(grid.record_path(directory, job))
    assert resumed == outcome(grid.record_path(grid.run_dir(model, str(plain_root)), job))
    assert resumed[2] == 180 and resumed[0]["step"] > 6  # a best result past the first evaluation
    assert sorted(os.listdir(TOOLS)) == tools_before


def test_a_job_that_ends_leaving_a_rank_behind_has_it_stopped_before_its_slot_is_reused(tmp_path):
    """A launcher that dies leaves its ranks (own sessions) running: the grid stops them, then frees the slot."""
    tools = tmp_path / "tools"
    tools.mkdir()
    pid_file = tmp_path / "rank.pid"
    (tools / "run_cls.sh").write_text(  # the "rank" sleeps in a session of its own; the "launcher" fails
        f'setsid {sys.executable} -c \'import os, time; open("{pid_file}", "w").write(str(os.getpid())); '
        f"time.sleep(60)' &\nwhile [ ! -s {pid_file} ]; do sleep 0.05; done\nexit 1\n"
    )
    lines = []
    scheduler = grid.Scheduler(
        [cls_job()],
        str(tmp_path / "runs"),
        "m",
        grid.CpuPool(1),
        grid.ProcessLauncher(str(tools)),
        device="cpu",
        retries=0,
        poll=0.1,
        stop_grace=5,
        out=lines.append,
    )
    assert scheduler.run() == 1
    rank = int(pid_file.read_text())
    assert not running(rank) and scheduler.running_on == [0] and scheduler.lingering == []
    assert any(line.startswith("> failed (exit 1) tnews 2e-05_32_0.1; giving up") for line in lines)
