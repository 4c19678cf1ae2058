"""The resume checkpoint of an argparse training run: a preempted or crashed job goes on where it stopped
and ends with the same evaluations, best result and prediction files as an uninterrupted run.

One file, OUTPUT_DIR/resume.pdckpt, written atomically after every dev evaluation, every
--checkpoint_minutes, and on SIGTERM (what Slurm sends before it kills): the weights, the optimizer and
scheduler state, every rank's Python, NumPy and Paddle random states (Paddle's generators by their
position, so that an uninterrupted run draws upstream's stream; where a build cannot give the CPU
generator's position, Paddle 2.6, it is reseeded from the step instead: training.reseed_for_step),
the position in the shuffled order (epoch and next batch;
always at an update, so no gradient is pending), the dev history with the best result and its
weights, and the time spent. It names the run that made it (script, task, model, hyper-parameters,
data digests, ranks): a different run refuses it. It is removed once the results record is written.

The output directory may be writable by others (a shared Slurm folder), so reading the file runs no
code: it is an .npz archive read with allow_pickle=False, the arrays as members and the rest as one JSON
document, with a sha256 over both. The file is opened only when it is a regular file (never a FIFO, a
device or a link), its size bounded, and its entries checked against the live model before anything is
loaded. The digest catches a damaged file, not a forged one: someone who can write the folder can
replace the weights and recompute it (there is no per-user key: a job resumed on another node would
need the same key); what they gain is wrong numbers in that folder, never code run as its owner.
"""

import argparse
import hashlib
import json
import os
import random
import re
import signal
import time

import numpy as np
import paddle
from paddlenlp.utils.log import logger

from ..fileio import DataError, NotRegular, file_digest, open_regular, write_npz

FILENAME = "resume.pdckpt"
FORMAT = 3  # 1 was a pickle: refused, never loaded; 2 had no Paddle generator states
ZIP_MAGIC = b"PK\x03\x04"
DOCUMENT_LIMIT = 64 * 2**20  # the JSON part: fingerprint, history, random states
SLACK = 64 * 2**20
# Flags that change nothing in training: a run differing only in these may resume the checkpoint.
# (--do_predict stays in: it decides whether the best weights are kept in memory, hence in the checkpoint.)
NOT_TRAINING = {
    "output_dir",
    "results_file",
    "logging_steps",
    "save_best_model",
    "resume",
    "checkpoint_minutes",
    "data_dir",
    "cache_dir",
    "overwrite_cache",
    "num_proc",
    "logdir",
    "to_static",  # the same numbers either way
    "break_lock",
}


# ------------------------------------------------------------ Paddle's generators
ENGINE_TEXT = re.compile(r"[0-9 ]{1,20000}", re.ASCII)  # a mt19937_64 state as the C++ library writes it


def positions_saved():
    """Whether this Paddle gives its CPU generator's position (3.x: seed, offset and the engine's state;
    2.6 only its seed). Without it, training.reseed_for_step makes a resumed run draw what the
    uninterrupted one drew, at the price of upstream's stream."""
    return len(paddle.get_rng_state("cpu")[0].__getstate__()) == 4


def _generator_devices():
    """The kinds of device whose generators this process draws from: the CPU, and the cards it runs on."""
    device = paddle.device.get_device()
    return ["cpu"] + ([] if device == "cpu" else [device.split(":")[0]])


def generator_states():
    """{device: [[device id, seed, offset, engine text], ...]} of Paddle's generators in this process (the
    CPU's, and the cards' when it runs on them): plain JSON values, read back without unpickling."""
    return {
        device: [
            [*state[:3], bytes(state[3]).decode("ascii")] if len(state) == 4 else list(state)
            for state in (s.__getstate__() for s in paddle.get_rng_state(device))
        ]
        for device in _generator_devices()
    }


def _generator_problem(states):
    """Why states are not generator_states() of this process (None if they are), checked before any is set:
    a tampered engine text must never reach the C++ parser unchecked."""
    if not isinstance(states, dict) or set(states) != set(_generator_devices()):
        return "does not hold this process's generators"
    for device, lst in states.items():
        if not isinstance(lst, list) or len(lst) != len(paddle.get_rng_state(device)):
            return f"does not hold every {device} generator"
        for state in lst:
            if not (
                isinstance(state, list)
                and len(state) in (3, 4)
                and all(isinstance(v, int) and not isinstance(v, bool) and -1 <= v < 2**64 for v in state[:3])
            ):
                return "holds a generator state that is not (device, seed, offset, engine)"
            if len(state) == 4 and not (isinstance(state[3], str) and ENGINE_TEXT.fullmatch(state[3])):
                return "holds a generator engine state that is not a list of numbers"
    return None


def set_generator_states(states):
    for device, lst in states.items():
        restored = []
        for state in lst:
            generator = paddle.base.core.GeneratorState.__new__(paddle.base.core.GeneratorState)
            generator.__setstate__((*state[:3], list(state[3].encode("ascii"))) if len(state) == 4 else tuple(state))
            restored.append(generator)
        paddle.set_rng_state(restored, device=device)


class Preempted(SystemExit):
    """Raised after the checkpoint of a SIGTERM is written: the process ends, to be run again."""

    def __init__(self, path):
        super().__init__(143)  # 128 + SIGTERM, what the signal itself would have given
        self.path = path


def host_name(text):
    """--break_lock's value: a host name as a lock records it (printable, no spaces, at most 255 bytes)."""
    if not text or not text.isprintable() or any(c.isspace() for c in text) or len(text.encode()) > 255:
        raise argparse.ArgumentTypeError(f"must be a host name (printable, no spaces, at most 255 bytes), not {text!r}")
    return text


def add_flags(parser):
    parser.add_argument(
        "--resume",
        choices=("auto", "never"),
        default="auto",
        help=f"auto: go on from OUTPUT_DIR/{FILENAME} when this same run left one; never: start over",
    )
    parser.add_argument(
        "--checkpoint_minutes",
        type=float,
        default=30,
        help="also write the resume checkpoint this often during long epochs (0: only at evaluations)",
    )
    parser.add_argument(
        "--break_lock",
        type=host_name,
        metavar="HOST",
        help="take over OUTPUT_DIR's lock if HOST holds it: for a host known to be gone, whose "
        "run can no longer release it (a lock of this host is judged without it)",
    )


def fingerprint(script, task, args, data_files, world_size):
    """What decides the training: a checkpoint is only resumed by a run with the same fingerprint."""
    model = args.model_name_or_path
    weights = (
        sorted(
            os.path.join(model, n)
            for n in os.listdir(model)
            if n.startswith(("model_state", "model.safetensors", "config"))
        )
        if os.path.isdir(model)
        else []
    )
    return {
        "script": script,
        "task": task,
        "model": model,
        "weights": file_digest(weights) if weights else None,
        "data": file_digest(data_files),
        "world_size": world_size,
        "hyperparameters": {k: v for k, v in sorted(vars(args).items()) if k not in NOT_TRAINING},
    }


def difference(saved, current):
    """The first thing that differs, said for a person."""
    for key in ("script", "task", "model", "weights", "data", "world_size"):
        if saved.get(key) != current.get(key):
            what = {"weights": "model weights", "data": "data files", "world_size": "number of ranks"}.get(key, key)
            return f"its {what} differ ({saved.get(key)!s:.40} there, {current.get(key)!s:.40} here)"
    old, new = saved.get("hyperparameters", {}), current["hyperparameters"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"it was made with --{key} {old.get(key)}, this run has {new.get(key)}"
    return "it differs"


class Checkpointer:
    """Writes and restores the resume checkpoint of one run (all ranks take part; rank 0 writes)."""

    def __init__(self, args, fingerprint_of, *, rank=0, world_size=1, clock=time.monotonic):
        self.path = os.path.join(args.output_dir, FILENAME)
        self.fingerprint_of, self.rank, self.world_size = fingerprint_of, rank, world_size
        self.interval = args.checkpoint_minutes * 60
        self.clock = clock
        self.last_save = clock()
        self.stop_requested = False
        self.prior_elapsed = 0.0  # wall time of the runs before this one
        self.started = time.time()
        self.parts = None
        self._fingerprint = None
        if args.resume == "never" and rank == 0 and os.path.lexists(self.path):
            if os.path.isdir(self.path) and not os.path.islink(self.path):
                raise DataError(self.path, "is a directory, where the resume checkpoint is to be written")
            os.unlink(self.path)  # a link itself, never what it points to
            logger.info(f"--resume never: removed {self.path}")

    @property
    def fingerprint(self):
        if self._fingerprint is None:
            self._fingerprint = self.fingerprint_of()
        return self._fingerprint

    # ------------------------------------------------------------ restore
    def restore(self, model, optimizer, scheduler, tracker, precision=None):
        """Load the checkpoint this run left, if any, into the live objects; returns the progress dict
        (epoch, batch, step, examples, train_time_s) to go on from, or None to start at step 0.
        precision: the run's precision.Precision; its loss scale is saved and restored with the rest."""
        self.parts = (model, optimizer, scheduler, tracker, precision)
        if not os.path.lexists(self.path):
            return None
        state = read_checkpoint(self.path, _size_limit(model))
        if state.get("format") != FORMAT or state.get("fingerprint") != self.fingerprint:
            reason = (
                "of another format"
                if state.get("format") != FORMAT
                else difference(state.get("fingerprint", {}), self.fingerprint)
            )
            raise DataError(
                self.path,
                f"resume checkpoint of a different run: {reason}; pass --resume never to "
                "start over, or another --output_dir",
            )
        check_entries(self.path, state, model, tracker, self.world_size)
        _unwrap(model).set_state_dict({k: paddle.to_tensor(v) for k, v in state["model"].items()})
        optimizer.set_state_dict(_tensors(state["optimizer"]))
        scheduler.set_state_dict(state["scheduler"])
        tracker.__dict__.update(state["tracker"])
        if precision is not None:
            precision.set_state_dict(state.get("precision", {}))
        python_rng, numpy_rng, paddle_rng = state["rng"][self.rank]
        random.setstate(python_rng)
        np.random.set_state(numpy_rng)
        if paddle_rng is not None:  # else reseeded by step (training.reseed_for_step)
            set_generator_states(paddle_rng)
        self.prior_elapsed = state["elapsed_s"]
        progress = state["progress"]
        logger.info(
            f"resuming from {self.path}: step {progress['step']}, epoch {progress['epoch']}, "
            f"batch {progress['batch']}, {len(tracker.history)} evaluations so far"
        )
        return progress

    # ------------------------------------------------------------ save
    def elapsed(self):
        return self.prior_elapsed + time.time() - self.started

    def after_update(self, progress, evaluated):
        """Called by the training loop after each optimizer step (and after an epoch's evaluation):
        writes the checkpoint when an evaluation just ended, when it is due, or on SIGTERM, then ends
        the process in the last case. All ranks agree on both decisions."""
        flags = [
            int(self.stop_requested),
            int(evaluated or (self.interval > 0 and self.clock() - self.last_save >= self.interval)),
        ]
        if self.world_size > 1:  # a signal or the clock may differ by rank: take the union
            tensor = paddle.to_tensor(flags, dtype="int32")
            paddle.distributed.all_reduce(tensor, op=paddle.distributed.ReduceOp.MAX)
            flags = tensor.numpy().tolist()
        if flags[0] or flags[1]:
            self.save(progress)
        if flags[0]:
            logger.info(f"SIGTERM: stopped at step {progress['step']}; the same command resumes from {self.path}")
            raise Preempted(self.path)

    def save(self, progress):
        model, optimizer, scheduler, tracker, precision = self.parts
        rng = (random.getstate(), np.random.get_state(), generator_states() if positions_saved() else None)
        if self.world_size > 1:
            every = []
            paddle.distributed.all_gather_object(every, rng)
        else:
            every = [rng]
        if self.rank == 0:
            tic = time.time()
            state = {
                "format": FORMAT,
                "fingerprint": self.fingerprint,
                "progress": dict(progress),
                "model": {k: v.numpy() for k, v in _unwrap(model).state_dict().items()},
                "optimizer": _arrays(optimizer.state_dict()),
                "scheduler": scheduler.state_dict(),
                "tracker": dict(tracker.__dict__),
                "rng": every,
                "elapsed_s": self.elapsed(),
                "precision": precision.state_dict() if precision is not None else {},
            }
            _write(self.path, state)
            logger.info(
                f"resume checkpoint at step {progress['step']}: {self.path} "
                f"({os.path.getsize(self.path) / 2**20:.1f} MiB, {time.time() - tic:.2f} s)"
            )
        self.last_save = self.clock()

    def remove(self):
        """Once the results record is written, the checkpoint has served."""
        if self.rank == 0 and os.path.lexists(self.path) and not os.path.isdir(self.path):
            os.unlink(self.path)

    # ------------------------------------------------------------ SIGTERM
    def __enter__(self):
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGTERM, self._previous)

    def _on_sigterm(self, signum, frame):
        self.stop_requested = True  # acted on at the next update, where no gradient is pending


def _unwrap(model):
    return model._layers if isinstance(model, paddle.DataParallel) else model


def _arrays(value):
    """Tensors to numpy, so the file is independent of the device."""
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    return value.numpy() if isinstance(value, paddle.Tensor) else value


def _tensors(value):
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    return paddle.to_tensor(value) if isinstance(value, np.ndarray) else value


# ------------------------------------------------------------ the file
def _encode(value, arrays):
    """value as JSON, its arrays moved to `arrays` (named a0, a1, ...) and tuples tagged, so that
    decoding gives back the exact structure (random.setstate wants tuples)."""
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"a checkpoint's keys are strings, not {sorted(map(type, value), key=str)}")
        return {k: _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, paddle.Tensor):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"__array__": name}
    return value.item() if isinstance(value, np.generic) else value


def _decode(value, arrays):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v, arrays) for v in value["__tuple__"])
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def _digest(document, arrays):
    h = hashlib.sha256(document)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _write(path, state):
    arrays = {}
    document = json.dumps(_encode(state, arrays), allow_nan=True).encode()
    write_npz(
        path,
        {
            "__document__": np.frombuffer(document, np.uint8),
            "__digest__": np.frombuffer(_digest(document, arrays).encode(), np.uint8),
            **arrays,
        },
    )


def _size_limit(model):
    """The most a checkpoint of this model can hold: the weights, two Adam moments, fp32 master weights and
    the best weights, at most 8 bytes a number, and room for the rest."""
    numbers = sum(int(np.prod(p.shape)) for p in _unwrap(model).state_dict().values())
    return 5 * 8 * numbers + SLACK


def read_checkpoint(path, limit):
    """The state dict of a resume checkpoint, after its size, members and digest are checked; nothing in it
    can run code."""

    def refuse(why):
        raise DataError(path, f"{why}; remove it or pass --resume never")

    try:
        with open_regular(path) as f:
            if os.fstat(f.fileno()).st_size > limit:
                refuse(f"resume checkpoint larger than this model's can be ({limit} bytes)")
            head = f.read(4)
            if head[:1] == b"\x80":
                refuse("resume checkpoint of an older format (a pickle, not loaded)")
            if head != ZIP_MAGIC:
                refuse("not a resume checkpoint")
            f.seek(0)
            with np.load(f, allow_pickle=False) as archive:
                members = archive.zip.infolist()
                if sum(m.file_size for m in members) > limit:
                    refuse(f"resume checkpoint holding more than this model's can ({limit} bytes)")
                names = set(archive.files)
                if not {"__document__", "__digest__"} <= names:
                    refuse("not a resume checkpoint (no document or digest)")
                if archive.zip.getinfo("__document__.npy").file_size > DOCUMENT_LIMIT:
                    refuse("resume checkpoint with an oversized document")
                arrays = {n: archive[n] for n in names if re.fullmatch(r"a\d+", n)}
                if len(arrays) != len(names) - 2:
                    refuse(f"resume checkpoint with unexpected members {sorted(names - set(arrays))[:3]}")
                document = archive["__document__"].tobytes()
                digest = archive["__digest__"].tobytes().decode("ascii", "replace")
    except NotRegular as e:  # a FIFO would hang the run, a link may point anywhere
        raise DataError(path, f"is {e.what}, not a resume checkpoint; remove it or pass --resume never") from None
    except DataError:
        raise
    except Exception as e:  # cut short by a kill can't happen (atomic), but a disk can fail
        refuse(f"unreadable resume checkpoint ({type(e).__name__})")
    if digest != _digest(document, arrays):
        refuse("resume checkpoint whose digest does not match its content (damaged or altered)")
    try:
        state = _decode(json.loads(document), arrays)
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        refuse(f"resume checkpoint with an unreadable document ({type(e).__name__})")
    if not isinstance(state, dict):
        refuse("not a resume checkpoint")
    return state


def check_entries(path, state, model, tracker, world_size):
    """Every part the restore uses is there and fits the live model: a DataError naming the first entry that
    does not, before anything is loaded (never a partial load or a KeyError)."""

    def refuse(entry, why):
        raise DataError(path, f"resume checkpoint entry '{entry}' {why}; remove it or pass --resume never")

    for key, kind in (
        ("model", dict),
        ("optimizer", dict),
        ("scheduler", dict),
        ("tracker", dict),
        ("rng", list),
        ("progress", dict),
        ("elapsed_s", (int, float)),
    ):
        if not isinstance(state.get(key), kind):
            refuse(key, "is missing or of the wrong kind")
    if set(state["tracker"]) != set(vars(tracker)):  # its fields replace the live tracker's: no others
        refuse("tracker", f"has fields {sorted(state['tracker'])}, not {sorted(vars(tracker))}")
    live = {k: tuple(v.shape) for k, v in _unwrap(model).state_dict().items()}
    _same_weights(state["model"], live, "model", refuse)
    best = state["tracker"].get("state")
    if best is not None:
        _same_weights(best if isinstance(best, dict) else {}, live, "tracker.state", refuse)
    params = {p.name: tuple(p.shape) for p in _unwrap(model).parameters()}
    for name, value in state["optimizer"].items():
        if name == "LR_Scheduler":
            continue
        if name == "master_weights":
            for key, array in value.items() if isinstance(value, dict) else ():
                if tuple(np.shape(array)) != params.get(key):
                    refuse(f"optimizer.master_weights.{key}", "does not fit a parameter of the model")
            continue
        # an accumulator is named PARAM_KIND_N and has the parameter's shape, or is one number (beta powers)
        fits = isinstance(value, np.ndarray) and any(
            name.startswith(p + "_") and value.shape in (shape, (1,), ()) for p, shape in params.items()
        )
        if not fits:
            refuse(f"optimizer.{name}", "does not fit a parameter of the model")
    if len(state["rng"]) != world_size or not all(isinstance(r, tuple) and len(r) == 3 for r in state["rng"]):
        refuse("rng", f"does not hold the random states of {world_size} rank(s)")
    saved = positions_saved()
    for rank, (_, _, paddle_rng) in enumerate(state["rng"]):
        if (paddle_rng is None) == saved:  # written by a Paddle that gives the positions and read by one that does not
            refuse(
                f"rng.{rank}",
                "is of a Paddle build that " + ("does not save" if saved else "saves") + " its generators' positions",
            )
        why = _generator_problem(paddle_rng) if saved else None
        if why:
            refuse(f"rng.{rank}", why)
    for key in ("epoch", "batch", "step"):
        if not isinstance(state["progress"].get(key), int):
            refuse(f"progress.{key}", "is missing or not a whole number")


def _same_weights(saved, live, entry, refuse):
    for key in sorted(set(live) - set(saved)):
        refuse(f"{entry}.{key}", "is missing")
    for key in sorted(set(saved) - set(live)):
        refuse(f"{entry}.{key}", "is not a weight of this model")
    for key, shape in live.items():
        if not isinstance(saved[key], np.ndarray) or saved[key].shape != shape:
            refuse(f"{entry}.{key}", f"has shape {np.shape(saved[key])}, the model's is {shape}")
