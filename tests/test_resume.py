"""A killed run resumes from its checkpoint and ends exactly as an uninterrupted one: the same evaluations,
the same best_result and byte-identical prediction files (CPU, same seed)."""

import os
import re
import subprocess
import sys

from cluebench import results
from cluebench.train import resume
from helpers import NO_GPU, ROOT, run_python

import pytest

pytestmark = pytest.mark.slow  # end to end: `pytest -m "not slow"` leaves this module out

SCRIPT = "classification/run_clue_classifier.py"
PREDICTIONS = ("tnews11_predict.json", "tnews10_predict.json")


def flags(model, data, out, *extra):
    # 64 examples in batches of 8: 8 steps an epoch, 24 in all; evaluations at 5, 10, 15, 20 and 24
    return [
        "--task_name",
        "tnews",
        "--model_name_or_path",
        model,
        "--data_dir",
        data,
        "--device",
        "cpu",
        "--output_dir",
        str(out),
        "--max_seq_length",
        "64",
        "--do_train",
        "--do_predict",
        "--batch_size",
        "8",
        "--num_train_epochs",
        "3",
        "--learning_rate",
        "5e-3",
        "--save_steps",
        "5",
        "--logging_steps",
        "1",
        *extra,
    ]


def faulty(where, n, sig, args):
    return run_python(["tests/faults.py", where, str(n), sig, SCRIPT, *args], timeout=300)


def outcome(out):
    """What must not depend on an interruption."""
    record = results.read_record(str(out / results.FILENAME))
    files = {name: (out / name).read_bytes() for name in PREDICTIONS}
    return record["best"], record["history"], record["throughput"]["optimizer_steps"], files


def resumed_from(proc):
    found = re.findall(r"resuming from \S+: step (\d+), epoch (\d+), batch (\d+)", proc.stderr + proc.stdout)
    return [tuple(map(int, f)) for f in found]


@pytest.fixture(scope="module")
def reference(tiny_models, synthetic_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "out"
    proc = run_python([SCRIPT, *flags(tiny_models["ernie"], synthetic_data, out)], timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    best, history, steps, files = outcome(out)
    assert [h["step"] for h in history] == [5, 10, 15, 20, 24] and steps == 24
    assert not (out / resume.FILENAME).exists()  # removed once the record is written
    return best, history, steps, files


# where, n, signal, extra flags, the step the rerun resumes from (epoch, batch), left-over files removed
CASES = {
    "SIGKILL inside an epoch": ("loss", 13, "KILL", [], (10, 1, 2), 0),
    "SIGKILL during an evaluation": ("evaluate", 3, "KILL", [], (10, 1, 2), 0),
    "SIGKILL while the checkpoint is written": ("checkpoint", 2, "KILL", [], (5, 0, 5), 1),
    "SIGTERM inside an epoch": ("loss", 13, "TERM", [], (13, 1, 5), 0),
    "SIGKILL after a timed checkpoint": ("loss", 13, "KILL", ["--checkpoint_minutes", "0.00001"], (12, 1, 4), 0),
}


@pytest.mark.parametrize("case", CASES)
def test_killed_run_resumes_to_the_same_end(case, reference, tiny_models, synthetic_data, tmp_path):
    where, n, sig, extra, position, leftovers = CASES[case]
    out = tmp_path / "out"
    args = flags(tiny_models["ernie"], synthetic_data, out, *extra)
    killed = faulty(where, n, sig, args)
    assert killed.returncode == (143 if sig == "TERM" else -9), killed.stderr[-2000:]
    assert (out / resume.FILENAME).exists() and not (out / results.FILENAME).exists()
    again = run_python([SCRIPT, *args], timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert resumed_from(again) == [position]
    if leftovers:
        assert f"removed {leftovers} leftovers of killed runs" in again.stderr
    assert outcome(out) == reference
    assert not (out / resume.FILENAME).exists()


def test_a_different_run_refuses_the_checkpoint(reference, tiny_models, synthetic_data, tmp_path):
    out = tmp_path / "out"
    args = flags(tiny_models["ernie"], synthetic_data, out)
    assert faulty("loss", 13, "KILL", args).returncode == -9
    other = run_python([SCRIPT, *args, "--learning_rate", "1e-3"], timeout=300)
    assert other.returncode == 2
    assert other.stderr.strip().splitlines()[-1] == (
        f"error: {out / resume.FILENAME}: resume checkpoint of a different run: it was made with --learning_rate "
        "0.005, this run has 0.001; pass --resume never to start over, or another --output_dir"
    )
    fresh = run_python([SCRIPT, *args, "--resume", "never"], timeout=300)
    assert fresh.returncode == 0 and resumed_from(fresh) == []
    assert outcome(out) == reference


@NO_GPU
def test_two_ranks_resume(tiny_models, synthetic_data, tmp_path):
    """SIGTERM reaches rank 0 alone: both ranks agree to stop at the same step, and resume together."""

    def launch(out, logs, *prefix):
        command = [
            sys.executable,
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            "2",
            "--log_dir",
            str(logs),
            *prefix,
            *flags(tiny_models["ernie"], synthetic_data, out),
        ]
        return subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1")
        )

    plain = launch(tmp_path / "plain", tmp_path / "plain-logs", SCRIPT)
    assert plain.returncode == 0, plain.stderr[-2000:]
    stopped = launch(tmp_path / "out", tmp_path / "logs1", "tests/faults.py", "loss", "4", "TERM", SCRIPT)
    assert stopped.returncode != 0
    log0 = (tmp_path / "logs1" / "workerlog.0").read_text()
    assert "SIGTERM: stopped at step 4;" in log0
    assert "SIGTERM: stopped at step 4;" in (tmp_path / "logs1" / "workerlog.1").read_text()
    again = launch(tmp_path / "out", tmp_path / "logs2", SCRIPT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert resumed_from(subprocess.CompletedProcess([], 0, (tmp_path / "logs2" / "workerlog.0").read_text(), "")) == [
        (4, 0, 4)
    ]
    assert outcome(tmp_path / "out") == outcome(tmp_path / "plain")


def test_trainer_skips_a_checkpoint_cut_short(tiny_models, synthetic_data, tmp_path):
    """PaddleNLP writes a checkpoint file by file: a kill leaves one without its last files. The rerun
    resumes from the newest whole one and says so, with no traceback."""
    out = tmp_path / "out"
    command = [
        "classification/run_clue_classifier_trainer.py",
        "--dataset",
        "clue tnews",
        "--data_dir",
        synthetic_data,
        "--model_name_or_path",
        tiny_models["ernie"],
        "--output_dir",
        str(out),
        "--device",
        "cpu",
        "--do_train",
        "--do_eval",
        "--max_steps",
        "6",
        "--logging_steps",
        "2",
        "--save_steps",
        "2",
        "--per_device_train_batch_size",
        "8",
        "--max_seq_length",
        "64",
    ]
    first = run_python(command, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert sorted(d for d in os.listdir(out) if d.startswith("checkpoint-")) == [
        "checkpoint-2",
        "checkpoint-4",
        "checkpoint-6",
    ]
    (out / results.FILENAME).unlink()  # as if the run had been killed while writing checkpoint-6:
    rng = out / "checkpoint-6" / "rng_state.pth"
    rng.write_bytes(rng.read_bytes()[:20])  # its last file cut short
    (out / "checkpoint-4" / "rng_state.pth").unlink()  # and an older one never finished either
    again = run_python(command, timeout=300)
    output = again.stdout + again.stderr
    assert again.returncode == 0 and "Traceback" not in output, output[-3000:]
    assert f"removed {out / 'checkpoint-6'}: cut short by a kill" in output
    assert f"removed {out / 'checkpoint-4'}: cut short by a kill" in output
    assert f"resuming from {out / 'checkpoint-2'}" in output
    record = results.read_record(str(out / results.FILENAME))
    assert [h["step"] for h in record["history"]] == [2, 4, 6]


MRC_CASES = {  # task: (where, n, signal, the step the rerun resumes from (epoch, batch))
    "c3": ("loss", 7, "TERM", (7, 1, 1)),  # 6 steps an epoch: stopped at the first step of the second
    "chid": ("loss", 10, "KILL", (6, 1, 0)),  # 6 steps an epoch: killed inside the second, the first checkpointed
    "cmrc2018": ("evaluate", 2, "KILL", (39, 1, 0)),  # 39 steps an epoch: killed in the second evaluation
}


@pytest.mark.parametrize("task", MRC_CASES)
def test_reading_comprehension_resumes_to_the_same_end(task, tiny_models, synthetic_data, tmp_path):
    where, n, sig, position = MRC_CASES[task]

    def args(out):
        return [
            "--model_name_or_path",
            tiny_models["ernie"],
            "--data_dir",
            synthetic_data,
            "--device",
            "cpu",
            "--output_dir",
            str(out),
            "--cache_dir",
            str(tmp_path / "cache"),
            "--max_seq_length",
            "64",
            "--do_train",
            "--do_predict",
            "--num_train_epochs",
            "3",
            "--batch_size",
            "4",
            "--gradient_accumulation_steps",
            "1",
            "--learning_rate",
            "1e-3",
            "--logging_steps",
            "1",
            *(["--doc_stride", "32"] if task == "cmrc2018" else []),
        ]

    script = f"mrc/run_{task}.py"
    plain = run_python([script, *args(tmp_path / "plain")], timeout=300)
    assert plain.returncode == 0, plain.stderr[-2000:]
    killed = run_python(["tests/faults.py", where, str(n), sig, script, *args(tmp_path / "out")], timeout=300)
    assert killed.returncode == (143 if sig == "TERM" else -9), killed.stderr[-2000:]
    again = run_python([script, *args(tmp_path / "out")], timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert resumed_from(again) == [position]

    def end(out):
        record = results.read_record(str(out / results.FILENAME))
        files = {os.path.basename(p): open(p, "rb").read() for p in record["predictions"]}
        return record["best"], record["history"], record["throughput"]["optimizer_steps"], files

    assert end(tmp_path / "out") == end(tmp_path / "plain")
    assert not (tmp_path / "out" / resume.FILENAME).exists()


def test_grid_job_resumes_after_preemption(tiny_models, synthetic_data, tmp_path):
    """A grid job stopped by SIGTERM (a preemption) leaves its checkpoint; the next grid_search.py resumes
    it without any flag, and its log keeps both attempts."""
    shim = tmp_path / "python"  # the wrapper's interpreter: the training run, with SIGTERM at its 7th step
    shim.write_text(
        f'#!/bin/bash\nif [ "$1" = -u ]; then shift; exec {sys.executable} {ROOT}/tests/faults.py '
        f'loss 7 TERM "$@"; fi\nexec {sys.executable} "$@"\n'
    )
    shim.chmod(0o755)
    tools = os.path.join(ROOT, "grid_search_tools")
    job = ["tnews", "2e-05", "16", "2", "64", tiny_models["ernie"], "1", "0.1"]
    flags = ["--data_dir", synthetic_data, "--device", "cpu", "--save_steps", "3", "--logging_steps", "1"]
    env = dict(os.environ, PYTHON=str(shim), CLUE_RUN_DIR=str(tmp_path / "runs" / "ernie"))
    stopped = subprocess.run(
        ["bash", "run_cls.sh", *job, *flags], cwd=tools, env=env, capture_output=True, text=True, timeout=300
    )
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    log = tmp_path / "runs" / "ernie" / "tnews" / "2e-05_16_0.1.log"
    assert "SIGTERM: stopped at step 7;" in log.read_text()
    grid_run = subprocess.run(
        [
            sys.executable,
            "grid_search.py",
            tiny_models["ernie"],
            "--device",
            "cpu",
            "--slots",
            "1",
            "--data_dir",
            synthetic_data,
            "--output_root",
            str(tmp_path / "runs"),
            "--tasks",
            "tnews",
            "--learning_rates",
            "2e-05",
            "--batch_sizes",
            "16",
            "--skip_warmup",
            "--",
            "--num_train_epochs",
            "2",
            "--save_steps",
            "3",
            "--logging_steps",
            "1",
            "--max_seq_length",
            "64",
        ],
        cwd=tools,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert grid_run.returncode == 0, grid_run.stdout[-2000:]
    text = log.read_text()
    assert "---- another attempt of this job" in text and "resuming from " in text
    assert re.search(r"resuming from \S+: step 7, epoch 1, batch 3,", text)
    record = results.read_record(str(log)[: -len(".log")] + ".json")
    assert [h["step"] for h in record["history"]] == [3, 6, 8] and record["throughput"]["optimizer_steps"] == 8
