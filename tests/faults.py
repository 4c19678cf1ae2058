"""Run a training script with a fault injected at a chosen point, as a test's subprocess:

    python tests/faults.py WHERE N SIGNAL SCRIPT [script flags]

WHERE is `loss` (the N-th training forward pass: inside an epoch), `evaluate` (the N-th dev evaluation,
before it ends) or `checkpoint` (the N-th resume checkpoint, half written); SIGNAL is KILL or TERM.
Nothing in the scripts knows about this: the functions are wrapped from outside.
"""

import os
import signal
import sys

import cluebench  # noqa: F401  before paddle
from cluebench import fileio
from cluebench.train import loop as training, resume, setup as cli
from helpers import load_script


def main():
    where, n, sig, script, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
    signum = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM}[sig]
    if os.environ.get("PADDLE_TRAINER_ID", "0") != "0":  # with several ranks the fault strikes rank 0
        where = None
    module = load_script(script)
    calls = [0]

    def strike():
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signum)

    if where == "loss":
        wrapped_loop = training.train_loop

        def train_loop(model, loader, compute_loss, *args, **kwargs):
            def struck(model, batch):
                strike()
                return compute_loss(model, batch)

            return wrapped_loop(model, loader, struck, *args, **kwargs)

        training.train_loop = train_loop
    elif where == "evaluate":
        wrapped_update = training.BestTracker.update

        def update(self, *args, **kwargs):
            strike()  # the evaluation has run; its result is not yet kept
            return wrapped_update(self, *args, **kwargs)

        training.BestTracker.update = update
    elif where == "checkpoint":
        real_write = resume.write_npz

        def write(path, arrays):
            calls[0] += 1
            if calls[0] == n:
                with fileio.atomic_write(path, "wb") as f:  # killed inside: the temporary file stays
                    f.write(b"half a checkpoint")
                    f.flush()
                    os.kill(os.getpid(), signum)
            real_write(path, arrays)

        resume.write_npz = write
    cli.exit_cleanly(lambda: module.main(argv))


if __name__ == "__main__":
    main()
