"""grid_search.py --slurm: the job-array scripts (cluebench/slurm.py) and, through a stand-in sbatch that runs
every element here on the CPU, a real submission and its resubmission."""

import collections
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time

from cluebench import results
from cluebench.grid import scheduler as grid, slurm
from helpers import ROOT

import pytest

TOOLS = os.path.join(ROOT, "grid_search_tools")
OPTIONS = {
    "partition": "gpu",
    "account": "clue",
    "time": "12:00:00",
    "array_limit": 8,
    "cpus_per_gpu": 6,
    "mem_per_gpu": "40G",
}


def complete(directory, job):
    results.write_record(grid.record_path(directory, job), {"schema": results.SCHEMA, "status": "complete"})


def write(tmp_path, jobs=None, model="/models/my model's", tools=TOOLS, **kwargs):
    """slurm.write into tmp_path/runs (a space in every path); (RUN_DIR, its slurm folder, printed lines)."""
    directory = str(tmp_path / "my runs" / os.path.basename(model))
    lines = []
    kwargs = dict(
        dict(
            device="gpu",
            flags=["--data_dir", "/data/my clue", "--max_steps", "1"],
            data_dir="/data/my clue",
            root=str(tmp_path / "my runs"),
            options=OPTIONS,
            python=sys.executable,
        ),
        **kwargs,
    )
    folder = slurm.write(
        grid.full_grid() if jobs is None else jobs, directory, model, tools=tools, out=lines.append, **kwargs
    )
    return directory, folder, lines


def read(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as f:
        return f.read()


def job_table(script):
    """The (index, task, name, ...) rows of an array script's own table."""
    text = script.split("<<'TABLE'\n", 1)[1].split("\nTABLE\n", 1)[0]
    return [line.split("\t") for line in text.splitlines() if not line.startswith("#")]


# ---------------------------------------------------------------- the arrays of the full grid
def test_full_grid_arrays_by_hand_from_the_registry(tmp_path):
    arrays, done = slurm.plan(grid.full_grid(), str(tmp_path))
    # classification: 7 tasks x 4 learning rates x 3 batch sizes x their settings (IFLYTEK and CLUEWSC2020
    # two each) = 108, plus CLUEWSC2020's batch 8 (4 x 2) = 116, one card each; reading comprehension:
    # 3 learning rates x 2 batch sizes per task, CHID and C3 on 4 cards (12), CMRC2018 on 2 (6). 134 in all.
    assert done == 0
    assert [(a.name, a.cards, len(a.jobs)) for a in arrays] == [("rc4", 4, 12), ("cls", 1, 116), ("rc2", 2, 6)]
    tasks = {a.name: collections.Counter(j.task for j in a.jobs) for a in arrays}
    assert tasks["rc4"] == {"chid": 6, "c3": 6} and tasks["rc2"] == {"cmrc2018": 6}
    assert tasks["cls"] == {
        "afqmc": 12,
        "tnews": 12,
        "iflytek": 24,
        "ocnli": 12,
        "cmnli": 12,
        "cluewsc2020": 32,
        "csl": 12,
    }
    assert collections.Counter(j for a in arrays for j in a.jobs) == collections.Counter(grid.full_grid())
    # longest first within an array, and the arrays by their longest job: CHID (4 cards) starts first
    for a in arrays:
        sizes = [slurm.duration(j) for j in a.jobs]
        assert sizes == sorted(sizes, reverse=True)
    assert [j.task for j in arrays[0].jobs[:6]] == ["chid"] * 6 and arrays[1].jobs[0].task == "cmnli"
    # on the CPU every element is one process: a single reading-comprehension array
    cpu = slurm.plan(grid.full_grid(), str(tmp_path), device="cpu")[0]
    assert [(a.name, a.cards, len(a.jobs)) for a in cpu] == [("rc1", 1, 18), ("cls", 1, 116)]


def test_scripts_for_the_full_grid(tmp_path):
    directory, folder, lines = write(tmp_path)
    assert folder == os.path.join(directory, "slurm")
    assert lines[0] == "0 of 134 jobs already complete (left out of the arrays); 134 to run"
    assert lines[1:4] == [
        "  rc4.sbatch: 12 elements, 4 GPUs each (chid, c3)",
        "  cls.sbatch: 116 elements, 1 GPU each (cmnli, ocnli, csl, tnews, afqmc, cluewsc2020, iflytek)",
        "  rc2.sbatch: 6 elements, 2 GPUs each (cmrc2018)",
    ]
    assert sorted(os.listdir(folder)) == [
        "cls.sbatch",
        "logs",
        "rc2.sbatch",
        "rc4.sbatch",
        "report.sbatch",
        "submit.sh",
        "warmup.sbatch",
    ]
    output = '"' + folder + '/logs/%A_%a.out"'
    arrays = {a.name: a for a in slurm.plan(grid.full_grid(), directory)[0]}
    for name, cards, last in (("cls", 1, 115), ("rc4", 4, 11), ("rc2", 2, 5)):
        script = read(folder, name + ".sbatch")
        sbatch = [line for line in script.splitlines() if line.startswith("#SBATCH")]
        assert sbatch == [
            f"#SBATCH --job-name=clue-{name}",
            f"#SBATCH --array=0-{last}%8",
            "#SBATCH --requeue",
            "#SBATCH --signal=B:TERM@120",
            "#SBATCH --kill-on-invalid-dep=yes",
            "#SBATCH --nodes=1",
            "#SBATCH --ntasks=1",
            f"#SBATCH --gres=gpu:{cards}",
            "#SBATCH --cpus-per-gpu=6",
            "#SBATCH --mem-per-gpu=40G",
            "#SBATCH --partition=gpu",
            "#SBATCH --account=clue",
            "#SBATCH --time=12:00:00",
            f"#SBATCH --output={output}",
        ]
        # every #SBATCH line before the first command (sbatch reads no further)
        first_command = next(i for i, line in enumerate(script.splitlines()) if line and not line.startswith("#"))
        assert all(i < first_command for i, line in enumerate(script.splitlines()) if line.startswith("#SBATCH"))
        # paths quoted for bash: a space and a quote in the model path, spaces in the run folder
        assert "MODEL='/models/my model'\"'\"'s'\n" in script and f"RUN_DIR={shlex.quote(directory)}\n" in script
        assert "FLAGS=(--device gpu --data_dir '/data/my clue' --max_steps 1)\n" in script
        assert (f"export CLUE_CARDS={cards}\n" in script) == (name != "cls")
        rows = job_table(script)
        assert [int(r[0]) for r in rows] == list(range(last + 1))
        assert [(r[1], r[2]) for r in rows] == [(j.task, j.name) for j in arrays[name].jobs]
        subprocess.run(["bash", "-n", os.path.join(folder, name + ".sbatch")], check=True)
    for name in ("warmup.sbatch", "report.sbatch", "submit.sh"):
        subprocess.run(["bash", "-n", os.path.join(folder, name)], check=True)
    warmup = read(folder, "warmup.sbatch")
    assert "#SBATCH --gres=gpu:1\n" in warmup and "#SBATCH --array" not in warmup
    assert warmup.rstrip().endswith(
        "--device gpu --tasks afqmc tnews iflytek ocnli cmnli cluewsc2020 csl chid "
        "cmrc2018 c3 --data_dir '/data/my clue'"
    )
    assert "--gres" not in read(folder, "report.sbatch")
    submit = [line for line in read(folder, "submit.sh").splitlines() if "=$(submit" in line]
    assert submit == [
        "warmup=$(submit warmup.sbatch)",
        "rc4=$(submit --dependency=afterok:$warmup rc4.sbatch)",
        "cls=$(submit --dependency=afterok:$warmup cls.sbatch)",
        "rc2=$(submit --dependency=afterok:$warmup rc2.sbatch)",
        "report=$(submit --dependency=afterany:$rc4:$cls:$rc2 report.sbatch)",
    ]


def test_sbatch_output_path_escapes():
    assert slurm.sbatch_path('/r/50%/a "b"', "%A_%a.out") == '"/r/50%%/a \\"b\\"/%A_%a.out"'
    with pytest.raises(grid.SetupError):
        slurm.sbatch_path("/r/a\\b", "%j.out")


def test_complete_jobs_are_left_out(tmp_path):
    directory, folder, _ = write(tmp_path)
    jobs = grid.full_grid()
    done = [j for j in jobs if j.task == "chid"] + [j for j in jobs if j.task == "tnews"][:10]
    for job in done:
        complete(directory, job)
    _, folder, lines = write(tmp_path)
    assert lines[0] == "16 of 134 jobs already complete (left out of the arrays); 118 to run"
    # without CHID the longest element is a CMNLI job (C3's on 4 cards take less): the classification array first
    assert lines[1:4] == [
        "  cls.sbatch: 106 elements, 1 GPU each (cmnli, ocnli, csl, tnews, afqmc, cluewsc2020, iflytek)",
        "  rc4.sbatch: 6 elements, 4 GPUs each (c3)",
        "  rc2.sbatch: 6 elements, 2 GPUs each (cmrc2018)",
    ]
    scripts = {name: job_table(read(folder, name + ".sbatch")) for name in ("cls", "rc4", "rc2")}
    listed = {(row[1], row[2]) for rows in scripts.values() for row in rows}
    assert listed == {(j.task, j.name) for j in jobs} - {(j.task, j.name) for j in done}
    assert "#SBATCH --array=0-5%8" in read(folder, "rc4.sbatch")
    assert (
        read(folder, "warmup.sbatch").split("--tasks ")[1].split(" --")[0]
        == "afqmc tnews iflytek ocnli cmnli cluewsc2020 csl cmrc2018 c3"
    )

    # every CMRC2018 job done: no rc2 array left (its old script goes); every job: nothing written at all
    for job in jobs:
        if job.task == "cmrc2018":
            complete(directory, job)
    _, folder, _ = write(tmp_path)
    assert sorted(os.listdir(folder)) == [
        "cls.sbatch",
        "logs",
        "rc4.sbatch",
        "report.sbatch",
        "submit.sh",
        "warmup.sbatch",
    ]
    for job in jobs:
        complete(directory, job)
    _, nothing, lines = write(tmp_path)
    assert nothing is None and lines == ["134 of 134 jobs already complete (left out of the arrays); 0 to run"]
    assert os.listdir(folder) == ["logs"]


# ---------------------------------------------------------------- an element runs exactly its job
FAKE_WRAPPER = """#!/bin/bash
{{ printf '%s\\n' "$@"; echo "CLUE_CARDS=${{CLUE_CARDS:-}} CLUE_RUN_DIR=$CLUE_RUN_DIR PWD=$PWD"; }} > "$FAKE_OUT/$(basename "$0")"
"""


@pytest.fixture
def fake_tools(tmp_path):
    """A grid_search_tools/ whose wrappers only write down their arguments and environment."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("run_cls.sh", "run_mrc.sh"):
        (tools / name).write_text(FAKE_WRAPPER.format())
    return tools


def element(script, index, tmp_path, **popen):
    env = dict(os.environ, FAKE_OUT=str(tmp_path), SLURM_ARRAY_JOB_ID="77")
    env.pop("SLURM_ARRAY_TASK_ID", None)
    if index is not None:
        env["SLURM_ARRAY_TASK_ID"] = str(index)
    if popen:
        return subprocess.Popen(["bash", script], cwd=tmp_path, env=env, **popen)
    return subprocess.run(["bash", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)


def test_each_element_runs_exactly_its_job(tmp_path, fake_tools):
    model = "/models/my model's"
    directory, folder, _ = write(tmp_path, model=model, tools=str(fake_tools))
    arrays = {a.name: a for a in slurm.plan(grid.full_grid(), directory)[0]}
    flags = ["--device", "gpu", "--data_dir", "/data/my clue", "--max_steps", "1"]
    for name, index in (("cls", 0), ("cls", 115), ("rc4", 7), ("rc2", 5)):
        job = arrays[name].jobs[index]
        proc = element(os.path.join(folder, name + ".sbatch"), index, tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"element {index} of array 77: {job.task} {job.name} on ")
        argv = job.command(model)
        with open(tmp_path / argv[1], encoding="utf-8") as f:
            written = f.read().splitlines()
        cards = "" if name == "cls" else name[2:]
        assert written == argv[2:] + flags + [f"CLUE_CARDS={cards} CLUE_RUN_DIR={directory} PWD={fake_tools}"]

    proc = element(os.path.join(folder, "cls.sbatch"), 116, tmp_path)
    assert (proc.returncode, proc.stderr) == (2, "cls.sbatch: error: no job 116 in its table\n")
    proc = element(os.path.join(folder, "cls.sbatch"), None, tmp_path)
    assert proc.returncode != 0 and "not an array element: submit this script with sbatch" in proc.stderr


@pytest.mark.parametrize(
    "what, kwargs",
    [
        ("the model", {"model": "/models/odd\ntouch pwned;/m"}),
        ("the model", {"model": "/models/tab\there"}),
        ("--partition", {"options": {"partition": "gpu\n"}}),
        ("a job flag", {"flags": ["--note", "a\x1bb"]}),
    ],
)
def test_a_control_character_in_a_script_value_is_refused(tmp_path, what, kwargs):
    with pytest.raises(grid.SetupError, match=f"^{what} .*control character"):
        write(tmp_path, **kwargs)
    assert not (tmp_path / "my runs").exists()  # nothing written


def test_a_non_utf8_model_folder_is_one_line(tmp_path):
    with pytest.raises(grid.SetupError, match=r"^the model '/models/\\udcff': is not UTF-8"):
        write(tmp_path, model=os.fsdecode(b"/models/\xff"))


@pytest.mark.slow  # a subprocess
def test_a_trailing_line_break_in_a_slurm_flag_is_refused(tmp_path):
    proc = grid_search(tmp_path, "--slurm", "--partition", "gpu\n")
    assert (proc.returncode, proc.stderr.splitlines()[-1]) == (
        2,
        "grid_search.py: error: --partition 'gpu\\n': letters, digits and . , + - _ only",
    )


@pytest.mark.slow  # subprocesses and a signal
def test_sigterm_reaches_the_job_and_the_element_waits_for_it(tmp_path, fake_tools):
    # the wrapper's training run, as resume.py does: on SIGTERM it finishes its step, writes its checkpoint, exits
    (fake_tools / "run_cls.sh").write_text(
        "#!/bin/bash\n"
        'bash -c \'trap "sleep 1; touch \\"$FAKE_OUT/checkpoint\\"; exit 143" TERM; touch "$FAKE_OUT/started"; '
        "while :; do sleep 0.1; done'\n"
    )
    _, folder, _ = write(tmp_path, tools=str(fake_tools))
    proc = element(
        os.path.join(folder, "cls.sbatch"), 3, tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 20
    while not (tmp_path / "started").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # what --signal=B:TERM@120 sends the batch shell
    assert proc.wait(timeout=20) == 143
    assert (tmp_path / "checkpoint").exists()  # the element ended only after the job had


# ---------------------------------------------------------------- grid_search.py's flags
def grid_search(tmp_path, *flags, env=None):
    full = {k: v for k, v in os.environ.items() if k != "CLUE_RUN_DIR"}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, os.path.join(TOOLS, "grid_search.py"), "some-model", "--output_root", str(tmp_path), *flags],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--submit"], "--submit goes with --slurm"),
        (["--partition", "gpu"], "--partition goes with --slurm"),
        (["--slurm", "--time", "soon"], "--time 'soon' is not a Slurm time (MINUTES, HH:MM:SS, DAYS-HH[:MM[:SS]])"),
        (["--slurm", "--mem_per_gpu", "lots"], "--mem_per_gpu 'lots' is not a Slurm size (e.g. 32G, 4096M)"),
        (
            ["--slurm", "--partition", "gpu\n#SBATCH --x"],
            "--partition 'gpu\\n#SBATCH --x': letters, digits and . , + - _ only",
        ),
        (["--slurm", "--array_limit", "0"], "argument --array_limit: must be an integer >= 1, not '0'"),
        (
            ["--slurm", "--device", "cpu", "--slots", "2"],
            "--slots is for jobs run here; with --slurm each job gets its own allocation",
        ),
        (["--slurm", "--job_timeout", "60"], "--job_timeout is for jobs run here; with --slurm give each job --time"),
    ],
)
def test_bad_slurm_flags(tmp_path, flags, message):
    proc = grid_search(tmp_path, *flags)
    assert (proc.returncode, proc.stdout, proc.stderr.splitlines()[-1]) == (2, "", "grid_search.py: error: " + message)
    assert os.listdir(tmp_path) == []


def test_submit_without_sbatch_is_one_line(tmp_path):
    proc = grid_search(tmp_path, "--slurm", "--submit", "--tasks", "tnews", env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert proc.stderr == (
        "grid_search: error: --submit: sbatch is not on PATH (no Slurm here); without --submit "
        "the scripts are only written\n"
    )
    assert os.listdir(tmp_path) == []  # nothing written


def test_slurm_writes_scripts_without_paddle(tmp_path):
    proc = grid_search(tmp_path, "--slurm", "--tasks", "c3", "--learning_rates", "1e-05")
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "some-model" / "slurm"
    assert f"Slurm scripts written to {folder}/: rc4.sbatch, warmup.sbatch, report.sbatch, submit.sh" in proc.stdout
    assert f"Submit them with: bash {folder}/submit.sh" in proc.stdout
    assert "#SBATCH --array=0-1\n" in (folder / "rc4.sbatch").read_text()


# ---------------------------------------------------------------- a submission, through a stand-in sbatch
STUB_SBATCH = r"""#!/bin/bash
# A stand-in for Slurm's sbatch: runs the job here and now (an array's elements one after another, on this
# machine), its output where the script's #SBATCH --output says; prints the job id as sbatch does.
set -u
STATE=$(dirname "$0")
deps=none parsable=0
while [[ $1 == --* ]]; do
    case $1 in
        --parsable) parsable=1 ;;
        --dependency=*) deps=${1#--dependency=} ;;
        *) echo "sbatch stub: unexpected option $1" >&2; exit 1 ;;
    esac
    shift
done
script=$1
id=$(( $(cat "$STATE/last_id" 2>/dev/null || echo 1000) + 1 ))
echo "$id" > "$STATE/last_id"
echo "$id $deps $(basename "$script")" >> "$STATE/submitted"
output=$(sed -n 's/^#SBATCH --output="\(.*\)"$/\1/p' "$script")
range=$(sed -n 's/^#SBATCH --array=\([0-9]*-[0-9]*\).*$/\1/p' "$script")
run() {
    local out=${output//"%A"/$id} status=0
    out=${out//"%a"/$1}
    out=${out//"%j"/$id}
    if [ -n "$1" ]; then
        SLURM_JOB_ID=$id SLURM_ARRAY_JOB_ID=$id SLURM_ARRAY_TASK_ID=$1 bash "$script" > "$out" 2>&1 < /dev/null || status=$?
    else
        SLURM_JOB_ID=$id bash "$script" > "$out" 2>&1 < /dev/null || status=$?
    fi
    echo "$id${1:+_$1} exit $status" >> "$STATE/ran"
}
if [ -n "$range" ]; then
    for ((i = ${range%-*}; i <= ${range#*-}; i++)); do run "$i"; done
else
    run ""
fi
if [ "$parsable" = 1 ]; then echo "$id"; else echo "Submitted batch job $id"; fi
"""


@pytest.mark.slow
def test_submit_through_a_stub_sbatch_then_resubmit(tiny_models, synthetic_data, tmp_path):
    before = sorted(os.listdir(TOOLS))
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "sbatch").write_text(STUB_SBATCH)
    (stub / "sbatch").chmod(stat.S_IRWXU)
    model = tmp_path / "models" / "my model"
    shutil.copytree(tiny_models["ernie"], model)
    root = tmp_path / "my runs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "CLUE_RUN_DIR"))}
    env.update(PATH=f"{stub}{os.pathsep}{env['PATH']}", CLUEBENCH_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    argv = [
        sys.executable,
        "grid_search.py",
        str(model),
        "--slurm",
        "--submit",
        "--device",
        "cpu",
        "--data_dir",
        synthetic_data,
        "--output_root",
        str(root),
        "--tasks",
        "tnews",
        "--learning_rates",
        "2e-05",
        "--batch_sizes",
        "16",
        "32",
        "--",
        "--max_steps",
        "1",
    ]
    proc = subprocess.run(argv, cwd=TOOLS, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    directory = str(root / "my model")
    folder = os.path.join(directory, "slurm")
    jobs = grid.select(grid.full_grid(), ["tnews"], [2e-5], [16, 32])  # batch 16 is the longer: element 0
    assert [j.name for j in jobs] == ["2e-05_16_0.1", "2e-05_32_0.1"]
    assert (stub / "submitted").read_text().splitlines() == [
        "1001 none warmup.sbatch",
        "1002 afterok:1001 cls.sbatch",
        "1003 afterany:1002 report.sbatch",
    ]
    assert (stub / "ran").read_text().splitlines() == ["1001 exit 0", "1002_0 exit 0", "1002_1 exit 0", "1003 exit 0"]
    assert "cls.sbatch: array job 1002 (2 elements, 1 CPU process each)" in proc.stdout
    assert "report.sbatch: job 1003, once the arrays have ended" in proc.stdout
    records = {}
    for index, job in enumerate(jobs):
        record = results.read_record(grid.record_path(directory, job))
        assert record is not None and record["throughput"]["optimizer_steps"] == 1
        assert record["model"] == str(model) and record["hyperparameters"]["device"] == "cpu"
        records[job] = os.stat(grid.record_path(directory, job)).st_mtime_ns
        with open(os.path.join(folder, "logs", f"1002_{index}.out"), encoding="utf-8") as f:
            assert f.read().startswith(f"element {index} of array 1002: tnews {job.name} on ")
    with open(os.path.join(folder, "logs", "warmup_1001.out"), encoding="utf-8") as f:
        assert "warmup: data, model and feature caches ready for tnews" in f.read()
    with open(os.path.join(folder, "logs", "report_1003.out"), encoding="utf-8") as f:
        report = f.read()
    best = max(jobs, key=lambda j: float(results.read_record(grid.record_path(directory, j))["best"]["value"]))
    assert f"\t({best.learning_rate},{best.batch_size},0.1)" in report and "submission.zip" in report
    logs = {j: open(grid.log_path(directory, j), encoding="utf-8").read() for j in jobs}

    # the same scripts submitted again: every element exits at once, nothing is rerun
    again = subprocess.run(
        ["bash", os.path.join(folder, "submit.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert (stub / "ran").read_text().splitlines()[4:] == [
        "1004 exit 0",
        "1005_0 exit 0",
        "1005_1 exit 0",
        "1006 exit 0",
    ]
    for index, job in enumerate(jobs):
        with open(os.path.join(folder, "logs", f"1005_{index}.out"), encoding="utf-8") as f:
            assert f.read().splitlines()[1:] == [f"skip: {grid.record_path(directory, job)} is complete"]
        assert os.stat(grid.record_path(directory, job)).st_mtime_ns == records[job]
        assert open(grid.log_path(directory, job), encoding="utf-8").read() == logs[job]

    # and grid_search.py --slurm --submit again: every job complete, nothing submitted
    last = subprocess.run(argv, cwd=TOOLS, env=env, capture_output=True, text=True, timeout=300)
    assert last.returncode == 0, last.stdout + last.stderr
    assert "2 of 2 jobs already complete (left out of the arrays); 0 to run" in last.stdout
    assert "Nothing to submit: every job is complete." in last.stdout
    assert len((stub / "submitted").read_text().splitlines()) == 6
    assert sorted(os.listdir(TOOLS)) == before  # the jobs ran in grid_search_tools/ and left nothing there
