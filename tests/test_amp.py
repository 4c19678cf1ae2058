"""--use_amp: what can be checked without a GPU. The flag's refusals, its place in the resume fingerprint,
the order of the loss scaler's calls around accumulation and gradient clipping (a stand-in scaler that
really scales), and the scaler's state through the resume checkpoint."""

import argparse
import types

from cluebench.fileio import DataError
from cluebench.train import loop as training, precision, resume
from helpers import NO_GPU, run_python

import numpy as np
import paddle
import pytest

FP16_MAX = 65504.0
SCRIPTS = ["classification/run_clue_classifier.py", "mrc/run_cmrc2018.py", "mrc/run_chid.py", "mrc/run_c3.py"]


class StandInScaler:
    """GradScaler's interface, on the CPU: multiplies the loss by `scale`, divides the gradients by it
    before the optimizer's step (which clips), skips the step when a scaled gradient would overflow fp16,
    and then halves the scale in update(). Every call is logged."""

    def __init__(self, scale=1024.0):
        self.scale_value, self.calls, self.skipped = scale, [], 0
        self.found_inf = False

    def scale(self, loss):
        self.calls.append("scale")
        return loss * self.scale_value

    def step(self, optimizer):
        self.calls.append("step")
        self.found_inf = False
        for p in optimizer._parameter_list:
            if p.grad is not None:
                self.found_inf |= float(p.grad.abs().max()) > FP16_MAX
                p.grad.set_value(p.grad / self.scale_value)
        if self.found_inf:
            self.skipped += 1
        else:
            optimizer.step()

    def update(self):
        self.calls.append("update")
        if self.found_inf:
            self.scale_value /= 2

    def state_dict(self):
        return {"scale": np.array([self.scale_value], dtype=np.float32), "skipped": self.skipped}

    def load_state_dict(self, state):
        self.scale_value, self.skipped = float(state["scale"][0]), state["skipped"]


class Loader:
    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def epoch(self, number=None, start=0):
        yield from list(enumerate(self.batches))[start:]


def tiny_run(precision_=None, gas=2, max_grad_norm=0.05, optimizer_log=None):
    """Weights of a linear model after 3 updates of `gas` micro-batches, clipping active at 0.05."""
    paddle.seed(0)
    model = paddle.nn.Linear(4, 3)
    rng = np.random.default_rng(0)
    batches = [
        {
            "input_ids": paddle.to_tensor(rng.normal(size=(5, 4)).astype("float32")),
            "labels": paddle.to_tensor(rng.integers(0, 3, size=5)),
        }
        for _ in range(3 * gas)
    ]
    args = types.SimpleNamespace(
        learning_rate=0.1,
        warmup_steps=0,
        warmup_proportion=0.0,
        adam_epsilon=1e-8,
        weight_decay=0.0,
        max_grad_norm=max_grad_norm,
    )
    scheduler, optimizer = training.build_optimizer(model, args, total_steps=3)
    if optimizer_log is not None:
        real_step, real_clear = optimizer.step, optimizer.clear_grad
        optimizer.step = lambda: (optimizer_log.append("optimizer.step"), real_step())
        optimizer.clear_grad = lambda *a, **k: (optimizer_log.append("clear_grad"), real_clear(*a, **k))

    def loss(model, batch):
        if optimizer_log is not None:
            optimizer_log.append("forward")
        return paddle.nn.functional.cross_entropy(model(batch["input_ids"]), batch["labels"])

    training.train_loop(
        model,
        Loader(batches),
        loss,
        optimizer,
        scheduler,
        total_steps=3,
        epochs=1,
        gas=gas,
        logging_steps=100,
        log_template="",
        evaluate=lambda step, epoch: None,
        eval_steps=100,
        precision=precision_,
    )
    return [p.numpy().copy() for p in model.parameters()]


def test_a_scaled_loss_gives_the_updates_of_fp32_clipping_included():
    """Clipping acts on the gradients divided back: scaled or not, the weights are the same. Were the
    scaled gradients clipped (or the scale left in), the updates would differ by orders of magnitude."""
    plain = tiny_run()
    scaled = tiny_run(precision.Precision("fp16", StandInScaler(1024.0)))
    for a, b in zip(plain, scaled):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    unclipped = tiny_run(max_grad_norm=0)
    assert max(float(np.abs(a - b).max()) for a, b in zip(plain, unclipped)) > 1e-3  # clipping was active


def test_scaler_calls_in_order_around_accumulation():
    log, scaler = [], StandInScaler()
    scaler.calls = log
    tiny_run(precision.Precision("fp16", scaler), gas=2, optimizer_log=log)
    one_update = ["forward", "scale", "forward", "scale", "step", "optimizer.step", "update", "clear_grad"]
    assert log == one_update * 3


def test_an_overflowed_step_is_skipped_and_the_scale_halved():
    scaler = StandInScaler(scale=2.0**40)  # every scaled gradient is beyond fp16's range
    before = tiny_run(max_grad_norm=0, gas=1)
    after = tiny_run(precision.Precision("fp16", scaler), max_grad_norm=0, gas=1)
    assert scaler.skipped == 3 and scaler.scale_value == 2.0**37
    paddle.seed(0)
    untrained = [p.numpy() for p in paddle.nn.Linear(4, 3).parameters()]
    for a, b in zip(after, untrained):
        np.testing.assert_array_equal(a, b)  # no update went through
    assert any(not np.array_equal(a, b) for a, b in zip(before, untrained))


def checkpointer(tmp_path, use_amp):
    args = argparse.Namespace(
        output_dir=str(tmp_path),
        checkpoint_minutes=0,
        resume="auto",
        use_amp=use_amp,
        model_name_or_path="m",
        learning_rate=0.1,
    )
    return resume.Checkpointer(args, lambda: resume.fingerprint("t.py", "tnews", args, [], 1))


def live_parts():
    paddle.seed(0)
    model = paddle.nn.Linear(4, 3)
    args = types.SimpleNamespace(
        learning_rate=0.1, warmup_steps=0, warmup_proportion=0.0, adam_epsilon=1e-8, weight_decay=0.0, max_grad_norm=1.0
    )
    scheduler, optimizer = training.build_optimizer(model, args, total_steps=3)
    return model, optimizer, scheduler, training.BestTracker("acc")


def test_the_loss_scale_goes_through_the_resume_checkpoint(tmp_path):
    saved = precision.Precision("fp16", StandInScaler(512.0))
    saved.scaler.skipped = 3
    writer = checkpointer(tmp_path, "fp16")
    assert writer.restore(*live_parts(), saved) is None
    writer.save({"epoch": 0, "batch": 2, "step": 1, "examples": 10, "train_time_s": 1.0})
    restored = precision.Precision("fp16", StandInScaler(2.0**15))
    progress = checkpointer(tmp_path, "fp16").restore(*live_parts(), restored)
    assert progress["step"] == 1
    assert restored.scaler.scale_value == 512.0 and restored.scaler.skipped == 3


def test_a_checkpoint_of_the_other_precision_is_refused(tmp_path):
    writer = checkpointer(tmp_path, "off")
    writer.restore(*live_parts(), precision.Precision())
    writer.save({"epoch": 0, "batch": 2, "step": 1, "examples": 10, "train_time_s": 1.0})
    with pytest.raises(DataError, match="--use_amp off, this run has bf16"):
        checkpointer(tmp_path, "bf16").restore(*live_parts(), precision.Precision("bf16"))


def test_bf16_is_refused_below_compute_capability_8(monkeypatch):
    monkeypatch.setattr(paddle.device.cuda, "get_device_capability", lambda *a: (7, 0))
    monkeypatch.setattr(paddle.device.cuda, "get_device_name", lambda *a: "Tesla V100-SXM2-32GB")
    with pytest.raises(DataError, match=r"--use_amp bf16.*8\.0 or higher; Tesla V100-SXM2-32GB has 7\.0"):
        precision.check(argparse.Namespace(use_amp="bf16", device="gpu"))
    precision.check(argparse.Namespace(use_amp="fp16", device="gpu"))  # fp16 runs on a V100
    monkeypatch.setattr(paddle.device.cuda, "get_device_capability", lambda *a: (8, 0))
    precision.check(argparse.Namespace(use_amp="bf16", device="gpu:1"))


def test_off_is_fp32_with_no_scaler():
    off = precision.Precision.of(argparse.Namespace(use_amp="off"))
    assert off.scaler is None and off.state_dict() == {}
    with off.autocast():
        assert paddle.matmul(paddle.ones([2, 2]), paddle.ones([2, 2])).dtype == paddle.float32


@NO_GPU
@pytest.mark.parametrize("script, mode", [(script, "fp16") for script in SCRIPTS] + [(SCRIPTS[0], "bf16")])
def test_scripts_refuse_mixed_precision_on_a_cpu(script, mode, tiny_models, synthetic_data, tmp_path):
    task = {"run_clue_classifier.py": ["--task_name", "tnews"]}.get(script.split("/")[-1], [])
    proc = run_python(
        [
            script,
            *task,
            "--model_name_or_path",
            tiny_models["ernie"],
            "--data_dir",
            synthetic_data,
            "--output_dir",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            "--do_train",
            "--use_amp",
            mode,
        ],
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"--use_amp {mode}: needs a GPU (--device cpu)" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
