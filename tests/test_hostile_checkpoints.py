"""A resume checkpoint in a folder others can write runs no code and is checked before it is loaded: an old
pickle, a FIFO, a link, a damaged or altered file and a checkpoint of another model are each one clear
DataError line; a round trip gives back the exact state (in process, a tiny model: fast)."""

import json
import os
import pickle
import random
import types
import zipfile

from cluebench.fileio import DataError
from cluebench.train import loop as training, resume

import numpy as np
import paddle
import pytest


def live(width=4):
    paddle.seed(0)
    with paddle.utils.unique_name.guard():  # the names a fresh process gives (the optimizer's state uses them)
        model = paddle.nn.Linear(width, 2)
        scheduler = paddle.optimizer.lr.LinearWarmup(0.1, 2, 0.0, 0.1)
        optimizer = paddle.optimizer.AdamW(scheduler, parameters=model.parameters())
    tracker = training.BestTracker("acc", keep_state=True)
    return model, optimizer, scheduler, tracker


def step(model, optimizer, scheduler):
    loss = model(paddle.ones([3, model.weight.shape[0]])).sum()
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()
    scheduler.step()


def checkpointer(tmp_path, fp=None):
    args = types.SimpleNamespace(output_dir=str(tmp_path), checkpoint_minutes=0, resume="auto")
    return resume.Checkpointer(args, lambda: fp or {"run": 1})


@pytest.fixture
def saved(tmp_path):
    model, optimizer, scheduler, tracker = live()
    step(model, optimizer, scheduler)
    tracker.update(model, {"acc": 50.0}, 1, 0)
    random.seed(3)
    np.random.seed(4)
    c = checkpointer(tmp_path)
    c.restore(model, optimizer, scheduler, tracker)
    c.save({"epoch": 0, "batch": 1, "step": 1})
    return tmp_path / resume.FILENAME, (model, optimizer, scheduler, tracker)


def restore(tmp_path, width=4):
    parts = live(width)
    return checkpointer(tmp_path).restore(*parts), parts


def test_round_trip_gives_back_the_exact_state(saved, tmp_path):
    path, (model, optimizer, _, tracker) = saved
    expected_py, expected_np = random.getstate(), np.random.get_state()
    random.seed(9)
    np.random.seed(9)
    progress, (model2, optimizer2, scheduler2, tracker2) = restore(tmp_path)
    assert progress == {"epoch": 0, "batch": 1, "step": 1}
    assert random.getstate() == expected_py and np.random.get_state()[2] == expected_np[2]
    assert (np.random.get_state()[1] == expected_np[1]).all()
    for k, v in model.state_dict().items():
        assert (model2.state_dict()[k].numpy() == v.numpy()).all()
    before, after = resume._arrays(optimizer.state_dict()), resume._arrays(optimizer2.state_dict())
    if set(after) == {"LR_Scheduler"}:  # Paddle 2.6 keeps what it was given unseen until the first step
        after = {**resume._arrays(dict(optimizer2._accumulators_holder)), "LR_Scheduler": after["LR_Scheduler"]}
    assert before.keys() == after.keys() and before["LR_Scheduler"] == after["LR_Scheduler"]
    assert all((before[k] == after[k]).all() for k in before if k != "LR_Scheduler")
    assert tracker2.history == tracker.history and tracker2.state.keys() == tracker.state.keys()


def refused(tmp_path, *needles, width=4):
    with pytest.raises(DataError) as e:
        restore(tmp_path, width)
    message = str(e.value)
    assert "\n" not in message and all(n in message for n in needles), message
    return message


def test_an_old_pickle_is_refused_never_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.mkdir, (str(tmp_path / "ran"),))

    (tmp_path / resume.FILENAME).write_bytes(pickle.dumps({"format": 1, "x": Boom()}, protocol=4))
    refused(tmp_path, "older format", "--resume never")
    assert not (tmp_path / "ran").exists()


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / resume.FILENAME)  # open() of it would hang
    refused(tmp_path, "FIFO")


def test_a_link_is_refused_even_to_a_good_checkpoint(saved, tmp_path):
    path, _ = saved
    os.rename(path, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", path)
    refused(tmp_path, "symbolic link")
    path.unlink()
    os.symlink("/nonexistent/x", path)  # dangling: refused too, not taken for no checkpoint
    refused(tmp_path, "symbolic link")


def test_a_directory_is_refused(tmp_path):
    (tmp_path / resume.FILENAME).mkdir()
    refused(tmp_path, "a directory")


def rewrite(path, change):
    """path's members, changed by change(dict of name -> array), written back (digest kept as it was)."""
    with np.load(path, allow_pickle=False) as archive:
        members = {n: archive[n] for n in archive.files}
    change(members)
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_an_altered_array_fails_the_digest(saved, tmp_path):
    path, _ = saved
    rewrite(path, lambda m: m.__setitem__("a0", m["a0"] + 1))
    refused(tmp_path, "digest does not match")


def test_an_extra_member_is_refused(saved, tmp_path):
    path, _ = saved
    rewrite(path, lambda m: m.__setitem__("payload", np.zeros(3)))
    refused(tmp_path, "unexpected members", "payload")


def test_an_oversized_member_is_refused_before_it_is_read(saved, tmp_path, monkeypatch):
    path, _ = saved
    monkeypatch.setattr(resume, "SLACK", 2**20)  # the bound, small for the test
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:  # 4 MiB of zeros, compressed
        with z.open("a999.npy", "w", force_zip64=True) as f:
            chunk = bytes(2**20)
            for _ in range(4):
                f.write(chunk)
    refused(tmp_path, "holding more than")


def test_a_damaged_file_is_one_line(saved, tmp_path):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    refused(tmp_path, "unreadable resume checkpoint")


def test_a_checkpoint_of_another_model_names_the_entry(saved, tmp_path):
    # the same fingerprint, other shapes: weights are checked before anything is loaded
    refused(tmp_path, "entry 'model.weight'", "shape", width=5)


def edit_state(path, change):
    """The checkpoint's state changed by change(state) and written back with a recomputed digest, as one
    who can write the folder could do."""

    def rebuild(members):
        state = resume._decode(json.loads(members["__document__"].tobytes()), members)
        change(state)
        arrays = {}
        document = json.dumps(resume._encode(state, arrays)).encode()
        members.clear()
        members.update(
            arrays,
            __document__=np.frombuffer(document, np.uint8),
            __digest__=np.frombuffer(resume._digest(document, arrays).encode(), np.uint8),
        )

    rewrite(path, rebuild)


def test_a_missing_weight_names_the_entry(saved, tmp_path):
    path, _ = saved
    edit_state(path, lambda state: state["model"].pop("bias"))
    refused(tmp_path, "entry 'model.bias'", "missing")


def test_an_optimizer_entry_of_no_parameter_names_the_entry(saved, tmp_path):
    path, _ = saved
    edit_state(path, lambda state: state["optimizer"].__setitem__("other.w_0_moment1_0", np.zeros(3, np.float32)))
    refused(tmp_path, "entry 'optimizer.other.w_0_moment1_0'", "does not fit")


def test_a_state_of_the_wrong_kind_names_the_entry(saved, tmp_path):
    path, _ = saved
    edit_state(path, lambda state: state.__setitem__("rng", "x"))
    refused(tmp_path, "entry 'rng'")


def dropout_draws(n=3):
    x = paddle.ones([64])
    return [paddle.nn.functional.dropout(x, 0.5).numpy() for _ in range(n)]


@pytest.mark.skipif(
    not resume.positions_saved(),
    reason="this Paddle's CPU generator keeps only its seed (2.6): steps are reseeded instead",
)
def test_the_generators_position_is_saved_and_restored(saved, tmp_path):
    """Paddle 3's CPU generator resumes where it was, so an uninterrupted run never needs reseeding and
    draws the stream paddle.seed started, as upstream's does."""
    path, parts = saved
    expected = dropout_draws()  # what the run would draw next, from where the checkpoint was written
    paddle.seed(123)
    dropout_draws()
    restore(tmp_path)
    assert all((a == b).all() for a, b in zip(dropout_draws(), expected))


@pytest.mark.skipif(not resume.positions_saved(), reason="no generator positions in this Paddle's checkpoints")
@pytest.mark.parametrize(
    "change, why",
    [
        (lambda s: s["cpu"][0].__setitem__(3, "1 2 x"), "engine state that is not a list of numbers"),
        (lambda s: s["cpu"][0].__setitem__(1, 2**70), "not (device, seed, offset, engine)"),
        (lambda s: s["cpu"].append(s["cpu"][0]), "every cpu generator"),
        (lambda s: s.__setitem__("xpu", []), "this process's generators"),
    ],
)
def test_a_tampered_generator_state_is_refused_before_it_is_set(saved, tmp_path, change, why):
    path, _ = saved
    edit_state(path, lambda state: change(state["rng"][0][2]))
    refused(tmp_path, "entry 'rng.0'", why)


# ------------------------------------------------------------ feature caches (a shared cache folder)
def cache(tmp_path, ids=(1, 2, 3), **extra):
    from cluebench.tasks import reading as mrc

    key = {"task": "c3", "split": "dev", "tokenizer": {"vocab_size": 10}}
    columns = {
        "input_ids.values": np.array(ids, np.int32),
        "input_ids.splits": np.array([0, len(ids)]),
        "token_type_ids.values": np.zeros(len(ids), np.int8),
        "token_type_ids.splits": np.array([0, len(ids)]),
        "labels": np.array([0]),
    }
    path = str(tmp_path / "c3.npz")
    mrc.save_cached(path, key, mrc.Features(columns))
    if extra:
        with zipfile.ZipFile(path, "a") as z:
            for name, data in extra.items():
                z.writestr(name, data)
    return mrc, path, key


def test_a_good_cache_loads(tmp_path):
    mrc, path, key = cache(tmp_path)
    assert len(mrc.load_cached(path, key)) == 1


def test_a_cache_with_an_extra_member_is_stale_unread(tmp_path, monkeypatch):
    mrc, path, key = cache(tmp_path, **{"huge.npy": b"x" * 1000})
    reads = []
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda self, name: reads.append(name))
    assert mrc.load_cached(path, key) is None and reads == []  # refused from the zip directory alone


@pytest.mark.parametrize("ids", [(1, 10), (-1, 2)])
def test_a_cache_with_ids_outside_the_vocabulary_is_stale(tmp_path, ids):
    mrc, path, key = cache(tmp_path, ids)
    assert mrc.load_cached(path, key) is None  # rebuilt, with a warning naming it


def test_a_fifo_cache_is_stale_without_opening_it(tmp_path):
    mrc, path, key = cache(tmp_path)
    os.unlink(path)
    os.mkfifo(path)
    assert mrc.load_cached(path, key) is None


# ------------------------------------------------------------ the Trainer variant's checkpoint-N folders
@pytest.fixture(scope="module")
def trainer_script():
    from helpers import load_script

    return load_script("classification/run_clue_classifier_trainer.py")


def checkpoint_folder(tmp_path):
    folder = tmp_path / "checkpoint-2"
    folder.mkdir(mode=0o755)
    (folder / "optimizer.pdopt").write_bytes(b"\x80\x04.")
    os.chmod(folder / "optimizer.pdopt", 0o644)
    return folder


def test_an_own_checkpoint_may_be_resumed(trainer_script, tmp_path):
    trainer_script.check_owned(str(checkpoint_folder(tmp_path)))


def test_a_checkpoint_file_others_can_write_is_not_resumed(trainer_script, tmp_path):
    folder = checkpoint_folder(tmp_path)
    os.chmod(folder / "optimizer.pdopt", 0o646)
    with pytest.raises(DataError, match=r"optimizer.pdopt: is writable by other users: not resumed"):
        trainer_script.check_owned(str(folder))


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_a_checkpoint_file_of_another_user_is_not_resumed(trainer_script, tmp_path):
    folder = checkpoint_folder(tmp_path)
    os.chown(folder / "optimizer.pdopt", 12345, -1)
    with pytest.raises(DataError, match=r"optimizer.pdopt: is owned by uid 12345, not by this user"):
        trainer_script.check_owned(str(folder))


def test_a_tracker_with_other_fields_names_the_entry(saved, tmp_path):
    path, _ = saved
    edit_state(path, lambda state: state["tracker"].__setitem__("update", 1))  # would shadow the method
    refused(tmp_path, "entry 'tracker'")
