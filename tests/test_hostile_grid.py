"""Bad input to the grid-search tools: one clear line, exit status 2, nothing half-done, no hang.

The command-line cases run as subprocesses in tmp_path; the scheduler cases use the fake NVML,
launcher and clock of test_grid.py, and the real launcher on real (tiny) processes.
"""

import json
import os
import subprocess
import sys

from cluebench import results, synthetic
from cluebench.grid import scheduler as grid
from helpers import ROOT
from test_grid import FakeNVML, cls_job, make

import pytest

TOOLS = os.path.join(ROOT, "grid_search_tools")
TABLE_HEAD = "AFQMC\tTNEWS\tIFLYTEK\tCMNLI\tOCNLI\tCLUEWSC2020\tCSL\tCMRC2018\tCHID\tC3\n"
SEPARATOR = "=" * 68 + "\nBest hyper-parameters list: \n" + "=" * 68 + "\nTASK\tresult\t(lr, batch_size, dropout_p)\n"


def run(argv, cwd, env=None, timeout=60):
    """A tool run from tmp_path, the bound on its time being what makes a hang a failure."""
    # without CLUE_RUN_DIR a wrapper's run folder would be cwd/MODEL: any folder made shows in tmp_path
    full = {k: v for k, v in os.environ.items() if k != "CLUE_RUN_DIR"}
    full.update(PYTHON=sys.executable, **(env or {}))
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=full, timeout=timeout)


# ---------------------------------------------------------------- grid_search.py flags
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--slots", "0"], "argument --slots: must be an integer >= 1, not '0'"),  # hung before
        (["--shard", "abc"], "argument --shard: must be i/n with 0 <= i < n (e.g. 0/8), not 'abc'"),
        (["--shard", "3/3"], "argument --shard: must be i/n with 0 <= i < n (e.g. 0/8), not '3/3'"),
        (["--shard=-1/3"], "argument --shard: must be i/n with 0 <= i < n (e.g. 0/8), not '-1/3'"),
        (["--retries", "-1"], "argument --retries: must be an integer >= 0, not '-1'"),
        (["--poll", "0"], "argument --poll: must be a number > 0, not '0'"),
        (["--poll", "nan"], "argument --poll: must be a number > 0, not 'nan'"),
        (["--job_timeout", "0"], "argument --job_timeout: must be a number > 0, not '0'"),
        (
            ["--learning_rates", "7e-05"],
            "--tasks, --learning_rates and --batch_sizes together select no job of the grid "
            "(7e-05 not in it: --off_grid adds jobs at such rates)",
        ),
    ],
)
def test_grid_search_bad_flag(tmp_path, flags, message):
    proc = run([sys.executable, os.path.join(TOOLS, "grid_search.py"), "some-model", *flags], tmp_path, timeout=20)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines()[-1] == "grid_search.py: error: " + message
    assert proc.stderr.startswith("usage: grid_search.py") and "Traceback" not in proc.stderr
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- the scheduler: time limit, data errors
def test_job_past_its_time_limit_is_ended_and_not_retried(tmp_path):
    job = cls_job()
    scheduler, launcher, lines = make(tmp_path, [job], FakeNVML([16]), duration=1000, retries=2, job_timeout=2)
    scheduler.clock = lambda: launcher.round * 60.0  # a minute per scheduling round
    assert scheduler.run() == 1
    # round 3 is past 2 minutes: stopped there (whole group, as on a signal), once, its claim released
    assert [p.round for p in launcher.started] == [0] and launcher.stopped == launcher.started
    assert launcher.round == 3 and scheduler.claims == [0.0] and scheduler.running_on == [0]
    assert lines[1:] == [
        "> start tnews 2e-05_32_0.1 (accumulation 1) on gpu 0",
        "> learned: a process of tnews 2e-05_32_0.1 on 1 card(s) uses 3.0 GiB; its shape "
        "(tnews/32/128/1) now claims 3.3 GiB",
        "> time limit: tnews 2e-05_32_0.1: exceeded the time limit of 2 min; not retried. Last lines of its log:",
    ]
    with open(tmp_path / "failures.json") as f:
        assert json.load(f) == [
            {
                "task": "tnews",
                "job": "2e-05_32_0.1",
                "kind": "time limit",
                "reason": "exceeded the time limit of 2 min",
                "attempts": 1,
                "log_tail": [],
            }
        ]


ERROR = "error: /data/tnews_public/train.json:3: field 'label': missing"


@pytest.mark.parametrize(
    "code, log, reason",
    [
        (2, f"loading\n{ERROR}\n", ERROR),  # the training scripts' bad-input exit
        (1, f"loading\n{ERROR}\nlaunch: worker 0 exited\n", ERROR),  # under paddle.distributed.launch
        (2, "loading\n", "exit 2"),  # the status alone says it
    ],
)
def test_data_error_is_not_retried(tmp_path, code, log, reason):
    job = cls_job()
    scheduler, launcher, lines = make(
        tmp_path, [job], FakeNVML([16]), retries=2, outcomes={f"tnews/{job.name}": [(code, log)] * 3}
    )
    assert scheduler.run() == 1 and len(launcher.started) == 1
    with open(tmp_path / "failures.json") as f:
        assert json.load(f) == [
            {
                "task": "tnews",
                "job": job.name,
                "kind": "data error",
                "reason": reason,
                "attempts": 1,
                "log_tail": log.splitlines(),
            }
        ]
    assert lines[2] == f"> data error: tnews 2e-05_32_0.1: {reason}; not retried. Last lines of its log:"


def real_scheduler(tmp_path, job, tools, **kwargs):
    lines = []
    scheduler = grid.Scheduler(
        [job],
        str(tmp_path / "run"),
        "m",
        grid.CpuPool(1),
        grid.ProcessLauncher(tools),
        device="cpu",
        poll=0.05,
        out=lines.append,
        **kwargs,
    )
    return scheduler, lines


def test_wrapper_refusal_reaches_failures_json(tmp_path):
    # the real run_cls.sh refuses a learning rate of nan on its stderr, before any log: the
    # scheduler still has the line
    job = grid.Job("tnews", float("nan"), 32, 1, 0.1, 3, 128)
    scheduler, lines = real_scheduler(tmp_path, job, TOOLS, retries=2)
    assert scheduler.run() == 1
    with open(tmp_path / "run" / "failures.json") as f:
        (failure,) = json.load(f)
    assert failure == {
        "task": "tnews",
        "job": "nan_32_0.1",
        "kind": "data error",
        "reason": "run_cls.sh: error: LR 'nan' is not a number",
        "attempts": 1,
        "log_tail": [
            "run_cls.sh: error: LR 'nan' is not a number",
            "usage: bash run_cls.sh TASK LR BS EPOCH MAX_SEQ_LEN MODEL GRAD_ACC DROPOUT [flags]",
        ],
    }
    assert sum(line.startswith("> start") for line in lines) == 1
    assert os.listdir(tmp_path / "run" / "tnews") == []  # the wrapper made no log


def test_time_limit_ends_the_whole_process_group(tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    # a job that would run for a minute, its real work in a child process
    (tools / "run_cls.sh").write_text('sleep 60 &\necho $! > "$CLUE_RUN_DIR/child.pid"\nwait\n')
    scheduler, lines = real_scheduler(tmp_path, cls_job(), str(tools), job_timeout=0.01)
    assert scheduler.run() == 1
    assert (
        "> time limit: tnews 2e-05_32_0.1: exceeded the time limit of 0.01 min; not retried. "
        "Last lines of its log:" in lines
    )
    pid = int((tmp_path / "run" / "child.pid").read_text())
    try:  # gone, or a zombie waiting for init: either way not running
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z")


# ---------------------------------------------------------------- extract_result.sh
def extract(root, model="m"):
    return run(["bash", os.path.join(TOOLS, "extract_result.sh"), model, "--output_root", str(root)], root, timeout=30)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def log_line(value):
    """A best_result line as the training scripts log it: the value is field 7."""
    return f"[2024-05-01 10:00:00,000] [    INFO] - best_result: {value}\n"


def test_extract_skips_a_bad_log_line_and_prints_the_rest(tmp_path):
    write(tmp_path / "m" / "tnews" / "1e-05_16_0.1.log", log_line("55.10"))
    write(tmp_path / "m" / "tnews" / "2e-05_16_0.1.log", log_line("abc"))
    write(tmp_path / "m" / "afqmc" / "1e-05_16_0.1.log", log_line("nan"))
    proc = extract(tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == (
        TABLE_HEAD + "0\t55.10\t0\t0\t0\t0\t0\t0\t0\t0\t\n" + SEPARATOR + "TNEWS\t55.10\t(1e-05,16,0.1)\n"
    )
    assert proc.stderr.splitlines() == [
        f"extract: warning: {tmp_path}/m/afqmc/1e-05_16_0.1.log: best_result: 'nan' is not a result (NN.NN or "
        f"EM/F1); skipped",
        f"extract: warning: {tmp_path}/m/tnews/2e-05_16_0.1.log: best_result: 'abc' is not a result (NN.NN or "
        f"EM/F1); skipped",
        f"(also written: {tmp_path}/m/results.csv and results.md)",
        f"(report: {tmp_path}/m/report/report.md and its figures)",
    ]


def test_extract_skips_a_bad_record(tmp_path):
    def record(best):
        return json.dumps({"schema": results.SCHEMA, "status": "complete", "best": best})

    write(tmp_path / "m" / "c3" / "1e-05_24_0.1.json", record({}))  # valid JSON, best.value missing
    write(tmp_path / "m" / "c3" / "2e-05_24_0.1.json", record({"value": "71.3.2"}))
    write(tmp_path / "m" / "c3" / "3e-05_24_0.1.json", record({"value": "64.00"}))
    write(tmp_path / "m" / "cmrc2018" / "1e-05_32_0.1.json", record({"value": "101.00/88.10"}))
    proc = extract(tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == (
        TABLE_HEAD + "0\t0\t0\t0\t0\t0\t0\t0\t0\t64.00\t\n" + SEPARATOR + "C3\t64.00\t(3e-05,24,0.1)\n"
    )
    assert proc.stderr.splitlines() == [
        f"extract: warning: {tmp_path}/m/cmrc2018/1e-05_32_0.1.json: best.value: '101.00/88.10' is over 100%; skipped",
        f"extract: warning: {tmp_path}/m/c3/1e-05_24_0.1.json: no best.value; skipped",
        f"extract: warning: {tmp_path}/m/c3/2e-05_24_0.1.json: best.value: '71.3.2' is not a result (NN.NN or "
        f"EM/F1); skipped",
        f"(also written: {tmp_path}/m/results.csv and results.md)",
        f"(report: {tmp_path}/m/report/report.md and its figures)",
    ]


def test_extract_missing_model_folder_is_an_error(tmp_path):
    write(tmp_path / "ernie-3.0-medium-zh" / "tnews" / "1e-05_16_0.1.log", log_line("55.10"))
    proc = extract(tmp_path, "ernie-3.0-medium")  # misspelt
    assert (proc.returncode, proc.stdout) == (2, "")
    assert (
        proc.stderr == f"extract: error: no results folder {tmp_path}/ernie-3.0-medium (for model "
        f"'ernie-3.0-medium' under {tmp_path})\n"
    )
    assert sorted(os.listdir(tmp_path)) == ["ernie-3.0-medium-zh"]


# ---------------------------------------------------------------- the wrappers
CLS_USAGE = "usage: bash run_cls.sh TASK LR BS EPOCH MAX_SEQ_LEN MODEL GRAD_ACC DROPOUT [flags]"
MRC_USAGE = "usage: bash run_mrc.sh MODEL TASK BATCH_SIZE LR GRAD_ACCU_STEPS [flags]"


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["run_cls.sh", "../x", "2e-05", "32", "3", "128", "m", "1", "0.1"],
            "run_cls.sh: error: TASK '../x' is not one of: afqmc tnews iflytek ocnli cmnli cluewsc2020 csl bustm",
        ),
        (
            ["run_cls.sh", "tnews", "2e-5x", "32", "3", "128", "m", "1", "0.1"],
            "run_cls.sh: error: LR '2e-5x' is not a number",
        ),
        (
            ["run_cls.sh", "tnews", "2e-05", "0", "3", "128", "m", "1", "0.1"],
            "run_cls.sh: error: BS '0' is not a positive integer",
        ),
        (
            ["run_cls.sh", "tnews", "2e-05", "32", "3", "128", "m", "1", "-0.1"],
            "run_cls.sh: error: DROPOUT '-0.1' is not a number",
        ),
        (
            ["run_mrc.sh", "m", "../x", "32", "2e-05", "4"],
            "run_mrc.sh: error: TASK '../x' is not one of: chid cmrc2018 c3",
        ),
        (["run_mrc.sh", "m", "cmrc2018", "32", "fast", "4"], "run_mrc.sh: error: LR 'fast' is not a number"),
        (
            ["run_mrc.sh", "m", "cmrc2018", "3.2", "2e-05", "4"],
            "run_mrc.sh: error: BATCH_SIZE '3.2' is not a positive integer",
        ),
    ],
)
def test_wrapper_bad_argument(tmp_path, argv, message):
    proc = run(["bash", os.path.join(TOOLS, argv[0]), *argv[1:]], tmp_path, timeout=20)
    usage = CLS_USAGE if argv[0] == "run_cls.sh" else MRC_USAGE
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"{message}\n{usage}\n")
    assert os.listdir(tmp_path) == [] and not os.path.exists(tmp_path.parent / "x")  # no RUN_DIR, no escape


# ---------------------------------------------------------------- warm-up
@pytest.mark.slow  # a subprocess
def test_warmup_data_error_in_a_cache_build_is_one_line(tiny_models, tmp_path):
    # the data files exist (the first check passes); the C3 script, run in-process, finds one truncated
    synthetic.write_c3(str(tmp_path / "data"))
    broken = tmp_path / "data" / "c3_public" / "m-train.json"
    broken.write_text('[["doc"], ')
    proc = run(
        [
            sys.executable,
            os.path.join(TOOLS, "warmup_dataset_and_model.py"),
            tiny_models["ernie"],
            "--device",
            "cpu",
            "--tasks",
            "c3",
            "--data_dir",
            str(tmp_path / "data"),
        ],
        tmp_path,
        env={"CLUEBENCH_CACHE": str(tmp_path / "cache")},
        timeout=300,
    )
    expected = f"warmup: error: {broken}:1: truncated JSON, column 11"
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if "error:" in line.lower()] == [expected]
    assert proc.stderr.splitlines()[-1] == expected


@pytest.mark.slow  # a subprocess
def test_warmup_model_without_config_is_one_line(synthetic_data, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    proc = run(
        [
            sys.executable,
            os.path.join(TOOLS, "warmup_dataset_and_model.py"),
            str(model),
            "--tasks",
            "tnews",
            "--data_dir",
            synthetic_data,
            "--device",
            "cpu",
        ],
        tmp_path,
        timeout=300,
    )
    expected = f"warmup: error: cannot use model '{model}': {model}: model directory has no config.json"
    assert (proc.returncode, proc.stdout, "Traceback" in proc.stderr) == (2, "", False)
    # paddle's own import warning (OMP_NUM_THREADS) may precede it on stderr
    assert [line for line in proc.stderr.splitlines() if "error" in line] == [expected]
    assert proc.stderr.splitlines()[-1] == expected


@pytest.mark.slow  # a subprocess
def test_warmup_unknown_task_is_an_argparse_error(tmp_path):
    proc = run(
        [sys.executable, os.path.join(TOOLS, "warmup_dataset_and_model.py"), "m", "--tasks", "tnewz"],
        tmp_path,
        timeout=300,
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines()[-1] == (
        "warmup_dataset_and_model.py: error: argument --tasks: invalid choice: 'tnewz' (choose from 'afqmc', "
        "'tnews', 'iflytek', 'ocnli', 'cmnli', 'cluewsc2020', 'csl', 'chid', 'cmrc2018', 'c3')"
    )
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- found by a hostile sweep
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--device", "cpu", "--slots", "1000000000000"], "--slots 1000000000000: at most 256"),  # MemoryError before
        (["--slots", "4"], "--slots is for --device cpu; on GPUs the jobs go wherever they fit"),  # ignored before
    ],
)
def test_grid_search_more_bad_flags(tmp_path, flags, message):
    proc = run([sys.executable, os.path.join(TOOLS, "grid_search.py"), "some-model", *flags], tmp_path, timeout=20)
    assert (proc.returncode, proc.stderr.splitlines()[-1]) == (2, "grid_search.py: error: " + message)
    assert os.listdir(tmp_path) == []


def test_grid_search_output_root_that_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    proc = run(
        [sys.executable, os.path.join(TOOLS, "grid_search.py"), "some-model", "--output_root", "afile"],
        tmp_path,
        timeout=20,
    )
    assert (proc.returncode, proc.stderr.splitlines()[-1]) == (
        2,
        "grid_search.py: error: --output_root afile is a file, not a directory",
    )


def test_mistyped_model_path_makes_no_folder(tmp_path):
    """A wrapper or grid given a model path that does not exist says so, instead of creating logs there."""
    typo = tmp_path / "models" / "mymodle"
    (tmp_path / "models").mkdir()
    proc = run(
        [sys.executable, os.path.join(TOOLS, "grid_search.py"), str(typo), "--device", "cpu"], tmp_path, timeout=20
    )
    assert (proc.returncode, proc.stderr.splitlines()[-1]) == (
        2,
        f"grid_search.py: error: model directory not found: {typo}",
    )
    wrapper = run(
        ["bash", os.path.join(TOOLS, "run_cls.sh"), "tnews", "2e-05", "16", "3", "128", str(typo), "1", "0.1"],
        tmp_path,
        timeout=20,
    )
    assert (wrapper.returncode, wrapper.stderr) == (2, f"error: model directory not found: {typo}\n")
    assert os.listdir(tmp_path / "models") == []


@pytest.mark.slow  # a subprocess run
def test_training_refusal_is_said_on_the_terminal(tiny_models, synthetic_data, tmp_path):
    """run by hand, a wrapper whose training script refuses its input shows that one line too"""
    proc = run(
        [
            "bash",
            os.path.join(TOOLS, "run_cls.sh"),
            "tnews",
            "2e-05",
            "16",
            "3",
            "1024",
            tiny_models["ernie"],
            "1",
            "0.1",
            "--device",
            "cpu",
            "--data_dir",
            synthetic_data,
        ],
        tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: --max_seq_length 1024: exceeds the 512 positions of {tiny_models['ernie']} (max_position_embeddings)\n"
    )


def test_extract_names_an_unreadable_record(tmp_path):
    write(tmp_path / "m" / "tnews" / "1e-05_16_0.1.json", '{"schema": "cluebench.res')  # cut short
    write(tmp_path / "m" / "tnews" / "2e-05_16_0.1.json", "[]")
    write(tmp_path / "m" / "tnews" / "2e-05_16_0.1.log", log_line("51.00"))
    proc = extract(tmp_path)
    assert proc.returncode == 0 and "TNEWS\t51.00\t(2e-05,16,0.1)" in proc.stdout
    assert proc.stderr.splitlines()[:2] == [
        f"extract: warning: {tmp_path}/m/tnews/1e-05_16_0.1.json: not a complete results record; skipped",
        f"extract: warning: {tmp_path}/m/tnews/2e-05_16_0.1.json: not a complete results record; reading its log",
    ]


@pytest.mark.parametrize("model, message", [("", "'' names no model"), (".", "'.' names no model")])
def test_extract_without_a_model_name(tmp_path, model, message):
    proc = extract(tmp_path, model)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"extract: error: {message}\n")
    assert os.listdir(tmp_path) == []


def test_busy_output_directory_waits_and_retries(tmp_path):
    """Exit 75: another run (say a job of a killed grid) holds the job's output directory. Not a data error:
    the job is tried again once the wait is over."""
    job = cls_job()
    busy = "error: /runs/m/tnews/2e-05_32_0.1/: output directory is in use by pid 9 on h since t\n"
    scheduler, launcher, lines = make(
        tmp_path, [job], FakeNVML([16]), outcomes={f"tnews/{job.name}": [(75, busy), (0, "best_result: 50.00\n")]}
    )
    scheduler.clock = lambda: launcher.round * 30.0  # half a minute per round
    assert scheduler.run() == 0
    assert [p.round for p in launcher.started] == [0, 2 + grid.BUSY_WAIT_S // 30]
    assert lines[2].startswith("> failed (error: /runs/m/tnews/2e-05_32_0.1/: output directory is in use")
