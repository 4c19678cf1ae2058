"""Mixed precision for the argparse scripts (--use_amp off|fp16|bf16).

Paddle's O1 auto-cast: the weights stay fp32 (the master copy), and only the operators on Paddle's white
list (matmuls and the like) run in half precision. So the best-weights copy, the gradient sync of several
cards and the resume checkpoint keep the form they have in fp32. fp16 scales the loss (a GradScaler, its
state in the resume checkpoint) so that small gradients do not flush to zero; bf16 has fp32's range and
needs no scaler. Evaluation and prediction run under the same auto-cast as training, so a --to_static
program is always built under the precision it runs with.
"""

import contextlib

import paddle

from ..fileio import DataError  # flags.flag_error's form; flags imports this

CHOICES = ("off", "fp16", "bf16")
BF16_CAPABILITY = (8, 0)  # Ampere: below it Paddle runs "bf16" in fp32 without a word


def add_flag(parser):
    parser.add_argument(
        "--use_amp",
        choices=CHOICES,
        default="off",
        help="mixed precision on a GPU: fp16 (with loss scaling) or bf16 (compute capability "
        "8.0 or higher); off: fp32, upstream's numbers",
    )


def check(args):
    """One clear error for a precision this device cannot run; call after cli.set_device."""
    mode = args.use_amp
    if mode == "off":
        return
    if not args.device.startswith("gpu"):
        raise DataError(f"--use_amp {mode}", f"needs a GPU (--device {args.device}); use --use_amp off")
    if mode == "bf16":
        capability = tuple(paddle.device.cuda.get_device_capability())
        if capability < BF16_CAPABILITY:
            name = paddle.device.cuda.get_device_name()
            raise DataError(
                f"--use_amp {mode}",
                f"needs compute capability 8.0 or higher; {name} has "
                f"{capability[0]}.{capability[1]} (Paddle would train in "
                "fp32 unasked); use --use_amp fp16",
            )


class Precision:
    """What the training loop and the evaluations call, the same for every mode.

    scaler: a GradScaler (fp16), or None. Tests pass a stand-in with the same four methods."""

    def __init__(self, mode="off", scaler=None):
        self.mode, self.scaler = mode, scaler

    @classmethod
    def of(cls, args):
        mode = args.use_amp
        # 2**15: PaddleNLP's Trainer's start; halved at each overflow, doubled after 1000 clean steps
        scaler = paddle.amp.GradScaler(init_loss_scaling=2.0**15) if mode == "fp16" else None
        return cls(mode, scaler)

    def autocast(self):
        if self.mode == "off":
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(enable=True, level="O1", dtype="float16" if self.mode == "fp16" else "bfloat16")

    def backward(self, loss):
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer):
        """One update from the accumulated gradients. With a scaler: unscaled first, then clipped by the
        optimizer's own grad_clip (inside optimizer.step), skipped when they overflowed."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self):
        return self.scaler.state_dict() if self.scaler is not None else {}

    def set_state_dict(self, state):
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
