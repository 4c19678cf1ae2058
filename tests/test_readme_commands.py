"""Every command the README and docs/ show, run as written on a fresh copy of the project.

Only what a CPU-only test machine needs is changed: the local tiny model for the built-in name and
for /models/my-model, the synthetic data for ~/clue and /shared/clue, a scratch folder for /runs and
/shared/runs, `--device cpu` for `--device gpu`, and few steps (`--max_steps 2` for a training run,
one TNEWS job for a grid). Defaults stay on: the Trainer reports to VisualDL, as it does for users.
The two set-up commands at the top are the demo test and CI itself; the benchmarks are run on
purpose, not by the tests.
"""

import os
import re
import shutil
import subprocess
import sys

from cluebench import results
from helpers import ROOT

import pytest

pytestmark = pytest.mark.slow  # end to end: `pytest -m "not slow"` leaves this module out

README = os.path.join(ROOT, "README.md")
DOCS = sorted(
    os.path.join(ROOT, "docs", name) for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md")
)
SETUP = ("python3 -m venv", ".venv/bin/python -m pytest")
ON_PURPOSE = "benchmarks/"
TRAINING = re.compile(r"(run_clue_classifier(_trainer)?|mrc/run_\w+)\.py")
FEW_JOBS = " --tasks tnews --learning_rates 2e-05 --batch_sizes 16"
SLURM_JOBS = " --tasks tnews --learning_rates 2e-05 --batch_sizes 32"  # a job no block before runs


def readme_commands():
    """[(block number, [command, ...])]: the bash blocks of the README, then of docs/, continuation lines
    joined, comments dropped."""
    text = ""
    for path in [README, *DOCS]:
        with open(path, encoding="utf-8") as f:
            text += f.read() + "\n"
    blocks = []
    for number, block in enumerate(re.findall(r"^ *```bash\n(.*?)^ *```", text, re.S | re.M)):
        joined = re.sub(r"\\\n\s*", "", block)
        commands = [re.sub(r"\s+#\s.*$", "", line).strip() for line in joined.splitlines()]
        blocks.append((number, [c for c in commands if c and not c.startswith("#")]))
    return blocks


BLOCKS = readme_commands()


def test_readme_starts_with_the_two_setup_commands():
    assert BLOCKS[0][1] == [
        "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/python -m cluebench.demo",
        ".venv/bin/python -m pytest -q",
    ]


def localise(command, model, data, runs):
    for name, local in (
        ("ernie-3.0-medium-zh", model),
        ("/models/my-model", model),
        ("~/clue", data),
        ("/runs/my-model", os.path.join(runs, os.path.basename(model))),
        ("/shared/clue", data),
        ("/shared/runs", runs),
        ("/runs", runs),
    ):
        command = command.replace(name, local)
    command = command.replace("--device gpu", "--device cpu")
    if TRAINING.search(command):
        return command + " --max_steps 2"
    if "grid_search.py" in command and "--slurm" in command:  # without --submit: the scripts only
        return command + " --device cpu" + SLURM_JOBS + " -- --max_steps 1"
    if "grid_search.py" in command:
        command += ("" if "--device" in command else " --device cpu --slots 2") + FEW_JOBS
        return command + ("" if " -- " in command else " -- --max_steps 1")
    if "run_cls.sh" in command or "run_mrc.sh" in command:
        return command + " --device cpu --max_steps 2"
    if "cluebench.check" in command:  # every row on the CPU: those needing a GPU say SKIP
        return command + " --device cpu --steps 8"
    if "warmup_dataset_and_model.py" in command:
        return command + " --device cpu"
    return command


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_models, synthetic_data):
    """A copy of the project (commands write relative to it), the data of every task, a tiny model."""
    root = tmp_path_factory.mktemp("readme")
    for folder in ("classification", "mrc", "grid_search_tools", "cluebench"):
        shutil.copytree(
            os.path.join(ROOT, folder), root / "project" / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    return {
        "project": root / "project",
        "data": synthetic_data,
        "runs": str(root / "runs"),
        "model": tiny_models["ernie"],
        "cache": str(root / "cache"),
    }


@pytest.mark.parametrize(
    "number,commands",
    [b for b in BLOCKS[1:] if not any(ON_PURPOSE in c for c in b[1])],
    ids=lambda v: str(v) if isinstance(v, int) else "",
)
def test_readme_block(number, commands, workspace):
    cwd = workspace["project"]
    env = dict(
        os.environ,
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
        CLUEBENCH_CACHE=workspace["cache"],
        SLURM_ARRAY_TASK_ID="0",
        PYTHONUNBUFFERED="1",
    )
    for command in commands:
        if command.startswith("cd "):
            cwd = cwd / command[3:]
            continue
        local = localise(command, workspace["model"], workspace["data"], workspace["runs"])
        proc = subprocess.run(["bash", "-c", local], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"README command failed: {command}\n$ {local}\n{output[-3000:]}"
        check_outcome(command, output, cwd)


def check_outcome(command, output, cwd):
    """What each kind of command must have produced, beyond exiting 0."""
    if TRAINING.search(command):
        out = re.search(r"--output_dir (\S+)", command).group(1)
        record = results.read_record(os.path.join(cwd, out, results.FILENAME))
        assert record is not None and record["throughput"]["optimizer_steps"] == 2, command
        finals = [re.sub(r"\x1b\[[0-9;]*m", "", line).split() for line in output.splitlines() if "best_result:" in line]
        assert finals and finals[-1][6] == record["best"]["value"], command
        if "--do_predict" in command:
            assert record["predictions"] and all(os.path.getsize(p) > 0 for p in record["predictions"]), command
    elif "--dry_run" in command:
        assert re.search(r"^1 jobs for ", output, re.M), output[-2000:]
    elif "--slurm" in command:  # the scripts of the one job, written, not run
        folder, names = re.search(r"^Slurm scripts written to (.+)/: (.+)$", output, re.M).groups()
        assert names.split(", ") == ["cls.sbatch", "warmup.sbatch", "report.sbatch", "submit.sh"], output[-2000:]
        assert all(os.path.isfile(os.path.join(folder, name)) for name in names.split(", "))
        with open(os.path.join(folder, "cls.sbatch"), encoding="utf-8") as f:
            script = f.read()
        assert "#SBATCH --array=0-0%32\n" in script and "#SBATCH --partition=gpu\n" in script, script
        assert "\n0\ttnews\t2e-05_32_0.1\t" in script and "\n1\t" not in script, script
        assert not os.path.exists(os.path.join(os.path.dirname(folder), "tnews", "2e-05_32_0.1.json"))
    elif "grid_search.py" in command:
        assert "All done!" in output, output[-2000:]
        assert re.search(r"^TNEWS\t\d+\.\d\d\t\(2e-05,16,0\.1\)$", output, re.M), output[-2000:]
    elif "leaderboard.py" in command:  # after the grid blocks: the model's row, its files
        row = re.search(r"^\| (\S+) \| ernie \| (\d+\.\d\d) \|", output, re.M)  # the tiny model's folder
        assert row and row.group(1) == "2L64H", output[-2000:]
        folder = os.path.dirname(re.search(r"^\(written: ([^,]+)", output, re.M).group(1))
        assert {"leaderboard.md", "leaderboard.png"} <= set(os.listdir(folder)), output[-2000:]
    elif "extract_result.sh" in command:
        assert re.search(r"^TNEWS\t\d+\.\d\d\t\(2e-05,16,0\.1\)$", output, re.M), output[-2000:]
    elif "run_cls.sh" in command or "run_mrc.sh" in command:
        words = command.split()
        task, name = (
            (words[2], f"{words[3]}_{words[4]}_{words[9]}")
            if "run_cls.sh" in command
            else (words[3], f"{words[5]}_{words[4]}_0.1")
        )
        records = [results.read_record(os.path.join(cwd, d, task, name + ".json")) for d in os.listdir(cwd)]
        assert [r["throughput"]["optimizer_steps"] for r in records if r] == [2], command
    elif "cluebench.check" in command:
        rows = dict(re.findall(r"^(.+?)  +(PASS|FAIL|SKIP)  ", output, re.M))
        assert rows == {
            "Paddle build": "PASS",
            "NVML against CUDA": "SKIP",
            "classification job": "PASS",
            "reading-comprehension job": "PASS",
            "two ranks": "PASS",
            "memory against the claims": "PASS",
            "jobs sharing a card": "SKIP",
            "stop and resume": "PASS",
            "mixed precision": "SKIP",
        }, output[-3000:]
    elif "make_submission.py" in command:  # after the one-job grid: a TNEWS-only zip, checked
        assert re.search(r"^zip: \S+submission.zip \(2 files\)$", output, re.M), output[-2000:]
        assert "OK  tnews11_predict.json  24 ids" in output and "2 files OK, 0 failed" in output, output[-2000:]
    elif "check_submission.py" in command:
        assert "OK  tnews11_predict.json  24 ids" in output and "2 files OK, 0 failed" in output, output[-2000:]
    elif "warmup_dataset_and_model.py" in command:
        assert "warmup: data, model and feature caches ready" in output, output[-2000:]
