"""The resume checkpoint of an argparse training run: a preempted or crashed job goes on where it stopped
and ends with the same evaluations, best result and prediction files as an uninterrupted run.

One file, OUTPUT_DIR/resume.pdckpt, written atomically after every dev evaluation, every
--checkpoint_minutes, and on SIGTERM (what Slurm sends before it kills): the weights, the optimizer and
scheduler state, every rank's Python and NumPy random states (Paddle's generator is reseeded from the
step instead: training.reseed_for_step), the position in the shuffled order (epoch and next batch;
always at an update, so no gradient is pending), the dev history with the best result and its
weights, and the time spent. It names the run that made it (script, task, model, hyper-parameters,
data digests, ranks): a different run refuses it. It is removed once the results record is written.
"""
import os
import pickle
import random
import signal
import time

import numpy as np
import paddle
from paddlenlp.utils.log import logger

from .fileio import DataError, atomic_write, file_digest

FILENAME = "resume.pdckpt"
FORMAT = 1
# Flags that change nothing in training: a run differing only in these may resume the checkpoint.
# (--do_predict stays in: it decides whether the best weights are kept in memory, hence in the checkpoint.)
NOT_TRAINING = {"output_dir", "results_file", "logging_steps", "save_best_model", "resume", "checkpoint_minutes",
                "data_dir", "cache_dir", "overwrite_cache", "num_proc", "logdir",
                "to_static"}  # the same numbers either way


class Preempted(SystemExit):
    """Raised after the checkpoint of a SIGTERM is written: the process ends, to be run again."""

    def __init__(self, path):
        super().__init__(143)  # 128 + SIGTERM, what the signal itself would have given
        self.path = path


def add_flags(parser):
    parser.add_argument("--resume", choices=("auto", "never"), default="auto",
                        help=f"auto: go on from OUTPUT_DIR/{FILENAME} when this same run left one; never: start over")
    parser.add_argument("--checkpoint_minutes", type=float, default=30,
                        help="also write the resume checkpoint this often during long epochs (0: only at evaluations)")


def fingerprint(script, task, args, data_files, world_size):
    """What decides the training: a checkpoint is only resumed by a run with the same fingerprint."""
    model = args.model_name_or_path
    weights = sorted(os.path.join(model, n) for n in os.listdir(model)
                     if n.startswith(("model_state", "model.safetensors", "config"))) if os.path.isdir(model) else []
    return {"script": script, "task": task, "model": model, "weights": file_digest(weights) if weights else None,
            "data": file_digest(data_files), "world_size": world_size,
            "hyperparameters": {k: v for k, v in sorted(vars(args).items()) if k not in NOT_TRAINING}}


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
        if args.resume == "never" and rank == 0 and os.path.exists(self.path):
            os.unlink(self.path)
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
        if not os.path.exists(self.path):
            return None
        try:
            with open(self.path, "rb") as f:
                state = pickle.load(f)
        except Exception as e:  # cut short by a kill can't happen (atomic), but a disk can fail
            raise DataError(self.path, f"unreadable resume checkpoint ({type(e).__name__}); remove it or pass "
                                       "--resume never") from None
        if not isinstance(state, dict):
            raise DataError(self.path, "not a resume checkpoint; remove it or pass --resume never")
        if state.get("format") != FORMAT or state.get("fingerprint") != self.fingerprint:
            reason = "of another format" if state.get("format") != FORMAT else difference(
                state.get("fingerprint", {}), self.fingerprint)
            raise DataError(self.path, f"resume checkpoint of a different run: {reason}; pass --resume never to "
                                       "start over, or another --output_dir")
        _unwrap(model).set_state_dict({k: paddle.to_tensor(v) for k, v in state["model"].items()})
        optimizer.set_state_dict(_tensors(state["optimizer"]))
        scheduler.set_state_dict(state["scheduler"])
        tracker.__dict__.update(state["tracker"])
        if precision is not None:
            precision.set_state_dict(state.get("precision", {}))
        python_rng, numpy_rng = state["rng"][self.rank]  # Paddle's is reseeded by step (training.py)
        random.setstate(python_rng)
        np.random.set_state(numpy_rng)
        self.prior_elapsed = state["elapsed_s"]
        progress = state["progress"]
        logger.info(f"resuming from {self.path}: step {progress['step']}, epoch {progress['epoch']}, "
                    f"batch {progress['batch']}, {len(tracker.history)} evaluations so far")
        return progress

    # ------------------------------------------------------------ save
    def elapsed(self):
        return self.prior_elapsed + time.time() - self.started

    def after_update(self, progress, evaluated):
        """Called by the training loop after each optimizer step (and after an epoch's evaluation):
        writes the checkpoint when an evaluation just ended, when it is due, or on SIGTERM, then ends
        the process in the last case. All ranks agree on both decisions."""
        flags = [int(self.stop_requested), int(evaluated or (self.interval > 0 and
                                                             self.clock() - self.last_save >= self.interval))]
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
        rng = (random.getstate(), np.random.get_state())
        if self.world_size > 1:
            every = []
            paddle.distributed.all_gather_object(every, rng)
        else:
            every = [rng]
        if self.rank == 0:
            tic = time.time()
            state = {"format": FORMAT, "fingerprint": self.fingerprint, "progress": dict(progress),
                     "model": {k: v.numpy() for k, v in _unwrap(model).state_dict().items()},
                     "optimizer": _arrays(optimizer.state_dict()), "scheduler": scheduler.state_dict(),
                     "tracker": dict(tracker.__dict__), "rng": every, "elapsed_s": self.elapsed(),
                     "precision": precision.state_dict() if precision is not None else {}}
            with atomic_write(self.path, "wb") as f:
                pickle.dump(state, f, protocol=4)
            logger.info(f"resume checkpoint at step {progress['step']}: {self.path} "
                        f"({os.path.getsize(self.path) / 2**20:.1f} MiB, {time.time() - tic:.2f} s)")
        self.last_save = self.clock()

    def remove(self):
        """Once the results record is written, the checkpoint has served."""
        if self.rank == 0 and os.path.exists(self.path):
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
    """Tensors to numpy, so the file is plain pickle (and independent of the device)."""
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    return value.numpy() if isinstance(value, paddle.Tensor) else value


def _tensors(value):
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    return paddle.to_tensor(value) if isinstance(value, np.ndarray) else value
