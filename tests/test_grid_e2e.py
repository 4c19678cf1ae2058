"""grid_search.py on CPU slots with the tiny model: real jobs, extract tables, stop and resume."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

from cluebench import results
from cluebench.grid import scheduler as grid
from helpers import ROOT

import pytest

pytestmark = pytest.mark.slow  # end to end: `pytest -m "not slow"` leaves this module out

TOOLS = os.path.join(ROOT, "grid_search_tools")


def grid_search(model, data, root, *args, wait=True):
    command = [
        sys.executable,
        "grid_search.py",
        model,
        "--device",
        "cpu",
        "--slots",
        "2",
        "--data_dir",
        data,
        "--output_root",
        str(root),
        "--poll",
        "0.3",
        *args,
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1", CLUEBENCH_CACHE=str(root / "feature-cache"))
    if not wait:
        return subprocess.Popen(
            command, cwd=TOOLS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
    return subprocess.run(command, cwd=TOOLS, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(autouse=True)
def tools_untouched():
    """Jobs run in grid_search_tools/: they must leave nothing there (all output under tmp_path)."""
    before = sorted(os.listdir(TOOLS))
    yield
    assert sorted(os.listdir(TOOLS)) == before


def test_cpu_grid_and_extract(tiny_models, synthetic_data, tmp_path):
    proc = grid_search(
        tiny_models["ernie"],
        synthetic_data,
        tmp_path,
        "--tasks",
        "tnews",
        "afqmc",
        "c3",
        "--learning_rates",
        "2e-05",
        "--batch_sizes",
        "16",
        "24",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    directory = grid.run_dir(tiny_models["ernie"], str(tmp_path))
    jobs = grid.select(grid.full_grid(), ["tnews", "afqmc", "c3"], [2e-5], [16, 24])
    assert [(j.task, j.name) for j in jobs] == [
        ("afqmc", "2e-05_16_0.1"),
        ("tnews", "2e-05_16_0.1"),
        ("c3", "2e-05_24_0.1"),
    ]
    records = {j.task: results.read_record(grid.record_path(directory, j)) for j in jobs}
    assert all(records.values())
    # the warm-up built the C3 features with the keys the job uses: the job only read them
    with open(grid.log_path(directory, jobs[2]), encoding="utf-8") as f:
        c3_log = f.read()
    assert c3_log.count("features from cache") == 3 and " built " not in c3_log  # train, dev, test1.1
    assert records["c3"]["hyperparameters"]["gradient_accumulation_steps"] == 12
    assert records["tnews"]["hyperparameters"]["device"] == "cpu"

    out = proc.stdout[proc.stdout.index("AFQMC\tTNEWS") :]
    lines = out.splitlines()
    values = dict(zip(lines[0].split("\t"), lines[1].split("\t")))
    assert values["AFQMC"] == records["afqmc"]["best"]["value"] and values["C3"] == records["c3"]["best"]["value"]
    assert values["CMRC2018"] == "0" and lines[1].endswith("\t")
    assert lines[2:6] == [
        "=" * 68,
        "Best hyper-parameters list: ",
        "=" * 68,
        "TASK\tresult\t(lr, batch_size, dropout_p)",
    ]
    assert lines[6:9] == [
        f"AFQMC\t{records['afqmc']['best']['value']}\t(2e-05,16,0.1)",
        f"TNEWS\t{records['tnews']['best']['value']}\t(2e-05,16,0.1)",
        f"C3\t{records['c3']['best']['value']}\t(2e-05,24,0.1)",
    ]
    with open(os.path.join(directory, "results.md")) as f:
        table = f.read().splitlines()
    avg = sum(float(r["best"]["value"]) for r in records.values()) / 3
    assert table[2].split(" | ")[1] == f"{avg:.2f}"

    # extract_result.sh alone prints the same, and resuming the finished grid starts nothing
    alone = subprocess.run(
        ["bash", "extract_result.sh", tiny_models["ernie"], "--output_root", str(tmp_path)],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHON=sys.executable),
    )
    assert alone.stdout == out  # the grid ends with the same tables
    assert alone.stderr == (
        f"(also written: {directory}/results.csv and results.md)\n"
        f"(report: {directory}/report/report.md and its figures)\n"
    )
    again = grid_search(
        tiny_models["ernie"],
        synthetic_data,
        tmp_path,
        "--tasks",
        "tnews",
        "afqmc",
        "c3",
        "--learning_rates",
        "2e-05",
        "--batch_sizes",
        "16",
        "24",
    )
    assert "3 of 3 jobs already complete; 0 to run" in again.stdout and "> start" not in again.stdout


def test_sigterm_then_resume(tiny_models, synthetic_data, tmp_path):
    args = (
        "--tasks",
        "tnews",
        "afqmc",
        "--learning_rates",
        "1e-05",
        "2e-05",
        "--batch_sizes",
        "16",
        "--slots",
        "1",
        "--skip_warmup",
    )
    proc = grid_search(tiny_models["bert"], synthetic_data, tmp_path, *args, wait=False)
    directory = grid.run_dir(tiny_models["bert"], str(tmp_path))
    jobs = grid.select(grid.full_grid(), ["tnews", "afqmc"], [1e-5, 2e-5], [16])
    deadline = time.time() + 300
    while not any(grid.is_complete(directory, j) for j in jobs) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the next job is under way
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, output[-2000:]
    assert "stopping on signal 15" in output and "run the same command again to resume" in output
    finished = {(j.task, j.name) for j in jobs if grid.is_complete(directory, j)}
    assert 1 <= len(finished) < len(jobs)  # how many finished depends on timing; the resume below is exact
    leftover = subprocess.run(["pgrep", "-f", "run_clue_classifier.py.*" + tiny_models["bert"]], capture_output=True)
    assert leftover.stdout == b""  # the job's whole process group is gone

    again = grid_search(tiny_models["bert"], synthetic_data, tmp_path, *args)
    assert again.returncode == 0, again.stdout[-2000:]
    started = {tuple(line.split()[2:4]) for line in again.stdout.splitlines() if line.startswith("> start")}
    assert started == {(j.task, j.name) for j in jobs} - finished  # the unfinished ones, each once
    assert again.stdout.count("> start") == len(started)
    assert all(grid.is_complete(directory, j) for j in jobs)
    assert sorted(n for n in os.listdir(os.path.join(directory, "tnews")) if n.endswith(".json")) == [
        "1e-05_16_0.1.json",
        "2e-05_16_0.1.json",
    ]


def test_model_path_with_space_and_semicolon(tiny_models, synthetic_data, tmp_path):
    odd = tmp_path / "models" / "my model;touch pwned"
    shutil.copytree(tiny_models["ernie"], odd)
    proc = grid_search(
        str(odd),
        synthetic_data,
        tmp_path / "runs",
        "--tasks",
        "tnews",
        "--learning_rates",
        "5e-05",
        "--batch_sizes",
        "32",
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    record = results.read_record(str(tmp_path / "runs" / "my model;touch pwned" / "tnews" / "5e-05_32_0.1.json"))
    assert record["model"] == str(odd)
    assert not os.path.exists(os.path.join(TOOLS, "pwned")) and not os.path.exists(tmp_path / "pwned")
    assert f"TNEWS\t{record['best']['value']}\t(5e-05,32,0.1)" in proc.stdout


def test_jobs_differing_only_in_dropout_run_side_by_side(tiny_models, synthetic_data, tmp_path):
    # the two IFLYTEK jobs of a learning rate and batch size start in the same round; each training run
    # locks its output folder, so they must not share one
    proc = grid_search(
        tiny_models["ernie"],
        synthetic_data,
        tmp_path,
        "--tasks",
        "iflytek",
        "--learning_rates",
        "2e-05",
        "--batch_sizes",
        "16",
        "--skip_warmup",
        "--",
        "--max_steps",
        "2",
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    started = [line for line in proc.stdout.splitlines() if line.startswith("> start")]
    assert started == [
        "> start iflytek 2e-05_16_0.1 (accumulation 1) on cpu 0",
        "> start iflytek 2e-05_16_0.0 (accumulation 1) on cpu 1",
    ]
    directory = grid.run_dir(tiny_models["ernie"], str(tmp_path))
    assert sorted(os.listdir(os.path.join(directory, "iflytek"))) == [
        "2e-05_16_0.0",
        "2e-05_16_0.0.json",
        "2e-05_16_0.0.log",
        "2e-05_16_0.1",
        "2e-05_16_0.1.json",
        "2e-05_16_0.1.log",
    ]
    for name in ("2e-05_16_0.1", "2e-05_16_0.0"):  # each job's own folder: its predictions and VisualDL scalars
        job = os.path.join(directory, "iflytek", name)
        record = results.read_record(job + ".json")
        assert record["hyperparameters"]["dropout"] == float(name.rsplit("_", 1)[1])
        assert record["hyperparameters"]["output_dir"] == job + "/"
        assert record["predictions"] == [os.path.join(job, "iflytek_predict.json")]
        assert sorted(os.listdir(job)) == ["iflytek_predict.json", "visualdl"]


def test_warmup_offline_without_data_fails_in_one_line(tiny_models, tmp_path):
    closed = "http://127.0.0.1:9"  # nothing listens: every download fails at once, network or not
    env = dict(
        os.environ,
        HTTPS_PROXY=closed,
        HTTP_PROXY=closed,
        https_proxy=closed,
        http_proxy=closed,
        PPNLP_HOME=str(tmp_path),
        CLUEBENCH_CACHE=str(tmp_path),
        HF_DATASETS_OFFLINE="1",
        HF_HUB_OFFLINE="1",
    )
    warmup = [sys.executable, os.path.join(TOOLS, "warmup_dataset_and_model.py"), tiny_models["ernie"], "--tasks"]
    proc = subprocess.run(warmup + ["tnews"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("warmup:")]
    assert errors == [
        "warmup: error: PaddleNLP clue/tnews: download failed (RuntimeError); pass --data_dir with "
        "the official tnews_public files"
    ]
    proc = subprocess.run(warmup + ["c3"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("warmup:")]
    assert proc.returncode == 2 and len(errors) == 1
    assert re.fullmatch(
        r"warmup: error: HuggingFace clue/c3: download failed \(\w+\); pass --data_dir with the "
        r"official c3_public files",
        errors[0],
    )
