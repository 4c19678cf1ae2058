"""The Trainer script's checkpoints on one rank and on several: PaddleNLP 2.8.1 names the RNG file by the
number of ranks (rng_state.pth, rng_state_2.pth), the script judges a checkpoint by the files written for its
number, without unpickling anything, and a killed two-rank run resumes from its newest whole checkpoint.

Run as a script (by paddle.distributed.launch, in the test below) it is the training script with a kill
made certain: rank 0 stops half way through checkpoint-6's RNG file, for the test to SIGKILL every rank there.
"""

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import types
import uuid

from cluebench import results
from cluebench.fileio import DataError
from helpers import NO_GPU, ROOT, load_script

import pytest

SCRIPT = "classification/run_clue_classifier_trainer.py"
TRAINER = load_script(SCRIPT)
STALL = "CLUEBENCH_STALL_MARKER"  # set: rank 0 stalls in checkpoint-6 and creates this file
TAG = "CLUEBENCH_TRAINER_RANKS_RUN"  # in the environment of every process of a launch, to find them all


def pickled(obj):
    return pickle.dumps(obj, protocol=4)  # as paddle.save writes them


def make_checkpoint(path, world_size, optimizer=True):
    """The files PaddleNLP 2.8.1 writes into a checkpoint, by hand (plus ones the judgement ignores)."""
    os.makedirs(path)
    files = {
        "model_state.pdparams": pickled({"w": list(range(200))}),
        "trainer_state.json": json.dumps({"global_step": 2, "log_history": []}).encode(),
        TRAINER.rng_file(world_size): pickled([{"python": "a.b.c", "numpy": list(range(50))}] * world_size),
        "config.json": b"{}",
        "training_args.bin": pickled({}),
    }
    if optimizer:
        files.update({"optimizer.pdopt": pickled({"m": [0.5] * 100}), "scheduler.pdparams": pickled({"last_lr": 1})})
    for name, data in files.items():
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    return path


def cut(path, size):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:size])


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def cut_at_a_stop_byte(path):
    """Cut just after a b"." inside the pickle: its last byte is a STOP's, but it is not whole."""
    with open(path, "rb") as f:
        data = f.read()
    cut(path, data.index(b".") + 1)


def rng(ws):
    return TRAINER.rng_file(ws)


def trainer_args(out, world_size=2):
    """What checkpoints_of reads of PaddleNLP's TrainingArguments."""
    return types.SimpleNamespace(
        output_dir=str(out),
        do_train=True,
        overwrite_output_dir=False,
        world_size=world_size,
        ignore_save_lr_and_optim=False,
    )


@pytest.mark.parametrize("world_size", [1, 2])
def test_names_of_the_rng_file(world_size):
    assert rng(world_size) == {1: "rng_state.pth", 2: "rng_state_2.pth"}[world_size]


@pytest.mark.parametrize("world_size", [1, 2])
def test_a_whole_checkpoint_is_whole_for_its_number_of_ranks_alone(world_size, tmp_path):
    path = make_checkpoint(str(tmp_path / "checkpoint-2"), world_size)
    assert TRAINER.whole(path, world_size)
    assert not TRAINER.whole(path, 3 - world_size)  # 1 <-> 2: the other's RNG file is not there
    # --ignore_save_lr_and_optim: no optimizer or scheduler, and whole all the same
    bare = make_checkpoint(str(tmp_path / "checkpoint-4"), world_size, optimizer=False)
    assert TRAINER.whole(bare, world_size, optimizer=False) and not TRAINER.whole(bare, world_size)


DAMAGE = {  # what a kill (or someone else) leaves, done to a whole checkpoint of ws ranks
    "the RNG file missing": lambda p, ws: os.unlink(os.path.join(p, rng(ws))),
    "the RNG file of the other number of ranks": lambda p, ws: os.rename(
        os.path.join(p, rng(ws)), os.path.join(p, rng(3 - ws))
    ),
    "the RNG file cut to 20 bytes": lambda p, ws: cut(os.path.join(p, rng(ws)), 20),
    "the RNG file cut at a STOP byte": lambda p, ws: cut_at_a_stop_byte(os.path.join(p, rng(ws))),
    "the RNG file empty": lambda p, ws: cut(os.path.join(p, rng(ws)), 0),
    "the RNG file a link to a whole one": lambda p, ws: (
        os.rename(os.path.join(p, rng(ws)), os.path.join(p, "elsewhere")),
        os.symlink(os.path.join(p, "elsewhere"), os.path.join(p, rng(ws))),
    ),
    "the RNG file a FIFO": lambda p, ws: (os.unlink(os.path.join(p, rng(ws))), os.mkfifo(os.path.join(p, rng(ws)))),
    "trainer_state.json missing": lambda p, ws: os.unlink(os.path.join(p, "trainer_state.json")),
    "trainer_state.json cut short": lambda p, ws: cut(os.path.join(p, "trainer_state.json"), 10),
    "trainer_state.json over 16 MiB": lambda p, ws: write(
        os.path.join(p, "trainer_state.json"), "{}" + " " * (16 << 20)
    ),
    "trainer_state.json nested past the recursion limit": lambda p, ws: write(
        os.path.join(p, "trainer_state.json"), "[" * 100_000 + "]" * 100_000
    ),
    "the weights cut short": lambda p, ws: cut(os.path.join(p, "model_state.pdparams"), 100),
    "the optimizer missing": lambda p, ws: os.unlink(os.path.join(p, "optimizer.pdopt")),
    "the scheduler empty": lambda p, ws: cut(os.path.join(p, "scheduler.pdparams"), 0),
}


@pytest.mark.parametrize("world_size", [1, 2])
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_is_not_whole(damage, world_size, tmp_path):
    path = make_checkpoint(str(tmp_path / "checkpoint-2"), world_size)
    DAMAGE[damage](path, world_size)
    assert not TRAINER.whole(path, world_size)  # and returns: a FIFO opened for reading would block here


class Bait:
    """Unpickled, it creates the file: what a hostile checkpoint could do with any code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_pickle_in_a_checkpoint_is_never_run(tmp_path):
    out = tmp_path / "out"
    marker = str(tmp_path / "unpickled")
    bait = pickled([{"python": Bait(marker)}] * 2)
    path = make_checkpoint(str(out / "checkpoint-2"), 2)
    for name in ("model_state.pdparams", "optimizer.pdopt", "scheduler.pdparams", rng(2)):
        with open(os.path.join(path, name), "wb") as f:
            f.write(bait)
    assert TRAINER.whole(path, 2)  # a whole pickle by its structure; what it would do is PaddleNLP's to load
    assert TRAINER.checkpoints_of(trainer_args(out)) == (path, [])
    assert not os.path.exists(marker)
    pickle.loads(bait)[0]["python"].close()  # the bait is live: loading it is what makes the file
    assert os.path.exists(marker)


def test_links_and_files_named_checkpoint_are_skipped_and_kept(tmp_path, log_lines):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    make_checkpoint(str(out / "checkpoint-2"), 2)
    cut(make_checkpoint(str(out / "checkpoint-4"), 2) + "/" + rng(2), 20)
    cut(make_checkpoint(str(elsewhere), 2) + "/" + rng(2), 20)  # cut short: removed, were the link followed
    os.symlink(elsewhere, out / "checkpoint-6")
    os.mkfifo(out / "checkpoint-8")
    (out / "checkpoint-10").write_text("not a folder")
    assert TRAINER.checkpoints_of(trainer_args(out)) == (str(out / "checkpoint-2"), [str(out / "checkpoint-4")])
    assert os.path.islink(out / "checkpoint-6") and os.path.isdir(elsewhere) and (out / "checkpoint-8").exists()
    skipped = [line for line in log_lines() if "skipped" in line]
    assert len(skipped) == 3 and all("neither resumed nor removed" in line for line in skipped), skipped


def test_a_whole_checkpoint_of_another_number_of_ranks_is_refused_not_removed(tmp_path):
    out = tmp_path / "out"
    make_checkpoint(str(out / "checkpoint-2"), 1)
    with pytest.raises(
        DataError,
        match=r"checkpoint of a run on 1 rank\(s\), this run has 2; pass "
        r"--overwrite_output_dir to start over",
    ):
        TRAINER.checkpoints_of(trainer_args(out))
    assert TRAINER.whole(str(out / "checkpoint-2"), 1)


def tagged(tag):
    """The live processes with TAG=tag in their environment: the launcher and its ranks, which
    paddle.distributed.launch starts in sessions of their own (os.setsid), out of reach of a killpg."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:  # a zombie's reads empty
                if f"{TAG}={tag}".encode() in f.read().split(b"\0"):
                    pids.append(int(entry))
        except (OSError, ValueError):  # not a process, gone, or not ours to read
            pass
    return pids


def kill_all(launcher, tag):
    """SIGKILL the launch's session and every process of it, as a lost node would; returns the pids killed."""
    killed = set()
    deadline = time.monotonic() + 30
    while True:
        pids = tagged(tag)
        if not pids and launcher.poll() is not None:
            return killed
        assert time.monotonic() < deadline, f"processes of the launch still alive: {pids}"
        try:
            os.killpg(launcher.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        try:
            launcher.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass


def launch_command(script, out, logs, model, data):
    # 64 examples, 8 a rank, 2 ranks: 4 steps an epoch; evaluations and checkpoints at 2, 4, 6 and 8
    return [
        sys.executable,
        "-m",
        "paddle.distributed.launch",
        "--nproc_per_node",
        "2",
        "--log_dir",
        str(logs),
        script,
        "--dataset",
        "clue tnews",
        "--data_dir",
        data,
        "--model_name_or_path",
        model,
        "--output_dir",
        str(out),
        "--device",
        "cpu",
        "--do_train",
        "--do_eval",
        "--max_steps",
        "8",
        "--logging_steps",
        "2",
        "--save_steps",
        "2",
        "--per_device_train_batch_size",
        "8",
        "--max_seq_length",
        "64",
    ]


def launch(script, out, logs, model, data, **env):
    return subprocess.run(
        launch_command(script, out, logs, model, data),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONUNBUFFERED="1", **env),
    )


def plain(line):
    """A log line without its colours, and without the progress bar drawn in front of it."""
    line = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line)
    stamp = re.search(r"\[\d{4}-\d\d-\d\d ", line)
    return line[stamp.start() :] if stamp else line


def checkpoint_folders(out):
    return sorted(n for n in os.listdir(out) if n.startswith("checkpoint-"))


def contents(folder):
    return {name: (folder / name).read_bytes() for name in os.listdir(folder)}


@NO_GPU
@pytest.mark.slow
def test_a_killed_two_rank_run_resumes_from_its_newest_whole_checkpoint(tiny_models, synthetic_data, tmp_path):
    model, data, out = tiny_models["ernie"], synthetic_data, tmp_path / "out"
    reference = launch(SCRIPT, tmp_path / "reference", tmp_path / "reference-logs", model, data)
    assert reference.returncode == 0, reference.stderr[-2000:]
    # one RNG file for both ranks, written by rank 0
    assert [n for n in os.listdir(tmp_path / "reference" / "checkpoint-2") if n.startswith("rng_state")] == [
        "rng_state_2.pth"
    ]

    marker, tag = tmp_path / "stalled", uuid.uuid4().hex
    with open(tmp_path / "killed.out", "w") as log:
        launcher = subprocess.Popen(
            launch_command("tests/test_trainer_ranks.py", out, tmp_path / "logs1", model, data),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **{STALL: str(marker), TAG: tag}),
        )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists() and launcher.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), (tmp_path / "killed.out").read_text()[-3000:]
    finally:
        killed = kill_all(launcher, tag)
    assert len(killed) >= 3  # the launcher and both ranks
    assert not (out / results.FILENAME).exists()
    assert checkpoint_folders(out) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    whole = {n: contents(out / n) for n in checkpoint_folders(out) if TRAINER.whole(str(out / n), 2)}
    assert sorted(whole) == ["checkpoint-2", "checkpoint-4"]  # 6: its RNG file cut in half

    again = launch(SCRIPT, out, tmp_path / "logs2", model, data)
    assert again.returncode == 0, again.stderr[-2000:]
    log0 = [plain(line) for line in (tmp_path / "logs2" / "workerlog.0").read_text().splitlines()]
    log1 = (tmp_path / "logs2" / "workerlog.1").read_text()
    relevant = [
        line
        for line in log0
        if re.search(r"removed|resuming from|skipped|training from|global_step: \d|summary:", line)
    ]
    with open("/tmp/trainer_two_rank_resume.log", "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in relevant))
    assert [line.split(" - ", 1)[1] for line in log0 if "cut short by a kill" in line] == [
        f"removed {out / 'checkpoint-6'}: cut short by a kill (not all of its files are whole)"
    ]
    assert "cut short by a kill" not in log1  # rank 0 alone removes
    assert f"resuming from {out / 'checkpoint-4'}" in "\n".join(log0)
    assert f"resuming from {out / 'checkpoint-4'}" in log1  # the ranks resume together
    assert checkpoint_folders(out) == ["checkpoint-2", "checkpoint-4", "checkpoint-6", "checkpoint-8"]
    assert {n: contents(out / n) for n in whole} == whole  # the whole ones kept as they were
    steps = [h["step"] for h in results.read_record(str(out / results.FILENAME))["history"]]
    reference_history = results.read_record(str(tmp_path / "reference" / results.FILENAME))["history"]
    assert steps == [h["step"] for h in reference_history] == [2, 4, 6, 8]


def stall_in_checkpoint_6():
    """Rank 0 writes half of checkpoint-6's RNG file, says so (STALL's file) and waits to be killed."""
    import paddle

    write = paddle.save

    def save(obj, path, *args, **kwargs):
        write(obj, path, *args, **kwargs)
        if str(path).endswith(os.path.join("checkpoint-6", TRAINER.rng_file(2))):
            cut(path, os.path.getsize(path) // 2)
            open(os.environ[STALL], "w").close()
            time.sleep(300)  # bounded: the test kills it long before

    paddle.save = save  # PaddleNLP's trainer calls paddle.save by the module's name


if __name__ == "__main__":
    if os.environ.get(STALL):
        stall_in_checkpoint_6()
    sys.argv[0] = os.path.join(ROOT, SCRIPT)
    TRAINER.setup.exit_cleanly(TRAINER.main)
