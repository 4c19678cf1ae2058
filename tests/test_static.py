"""speedups.static_forward: one static program with the eager numbers, and the eager path when translation fails;
speedups.full_attention_masks and skip_eval_dropout: the same numbers, on every model the scripts load; the CPU
settings of cli.set_device and cluebench's import (executor flags, freed memory kept, MKL's code path)."""

import copy
import json
import os
import platform
import subprocess
import sys

import cluebench
from cluebench.train import loop as training, setup as cli, speedups

import numpy as np
import paddle
import pytest


class Tagger(paddle.nn.Layer):
    def __init__(self, untranslatable=False):
        super().__init__()
        self.embed, self.dropout, self.out = paddle.nn.Embedding(50, 8), paddle.nn.Dropout(0.5), paddle.nn.Linear(8, 3)
        self.untranslatable = untranslatable

    def forward(self, input_ids, token_type_ids):
        hidden = self.dropout(self.embed(input_ids) + self.embed(token_type_ids))
        if self.untranslatable and not paddle.in_dynamic_mode():  # as a model the translator cannot handle
            raise TypeError("no static program for this")
        return self.out(hidden.mean(axis=1))


def train_losses(model, ndim_batches):
    optimizer = paddle.optimizer.AdamW(learning_rate=0.1, parameters=model.parameters())
    losses = []
    for step, (ids, labels) in enumerate(ndim_batches):
        training.reseed_for_step(7, step)
        loss = paddle.nn.functional.cross_entropy(model(input_ids=ids, token_type_ids=paddle.zeros_like(ids)), labels)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        losses.append(float(loss))
    return losses


def batches():
    rng = np.random.default_rng(0)
    return [
        (paddle.to_tensor(rng.integers(1, 50, (4, length))), paddle.to_tensor(rng.integers(0, 3, (4,))))
        for length in (5, 9, 3, 12)
    ]  # lengths change from batch to batch: one program serves them all


@pytest.mark.parametrize("cpu_flags", [False, True], ids=["executor-defaults", "set_device-cpu"])
def test_static_program_gives_the_eager_numbers(cpu_flags):
    names = ["FLAGS_new_executor_serial_run", "FLAGS_new_executor_use_inplace"]
    saved = paddle.get_flags(names)
    if cpu_flags:  # what the scripts' --device cpu sets: operators in this thread, buffers reused in place
        cli.set_device("cpu")
        assert paddle.get_flags(names) == {name: True for name in names}
    paddle.seed(0)
    eager = Tagger()
    paddle.seed(0)
    static = speedups.static_forward(Tagger(), token_id=1)
    assert isinstance(static.forward, paddle.jit.dy2static.program_translator.StaticFunction)
    assert train_losses(static, batches()) == train_losses(eager, batches())
    static.eval(), eager.eval()
    ids = batches()[3][0]
    np.testing.assert_array_equal(
        static(input_ids=ids, token_type_ids=ids * 0).numpy(), eager(input_ids=ids, token_type_ids=ids * 0).numpy()
    )
    paddle.set_flags(saved)


def test_a_model_that_cannot_be_translated_runs_eagerly(monkeypatch):
    warnings = []
    monkeypatch.setattr(speedups.logger, "warning", warnings.append)
    paddle.seed(0)
    reference = train_losses(Tagger(untranslatable=True), batches())
    paddle.seed(0)
    try:
        model = speedups.static_forward(Tagger(untranslatable=True), token_id=1)
        assert model.training  # the probe ran in eval mode and left the mode as it was
        assert train_losses(model, batches()) == reference
    finally:
        paddle.jit.enable_to_static(True)  # the fallback switches translation off for the whole process
    assert [w.split(";")[0] for w in warnings] == ["--to_static: TypeError translating Tagger"]


CPUINFO = "processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: 25\nflags\t\t: fpu sse2 {flags}\nbugs\t\t: none\n"


@pytest.mark.parametrize(
    "vendor, flags, expected",
    [
        ("AuthenticAMD", "avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl", "7"),  # Zen 4
        ("AuthenticAMD", "avx avx2 fma", "5"),  # Zen 2 and 3
        ("AuthenticAMD", "avx avx2 fma avx512f", "5"),  # AVX-512 without the subsets MKL's path needs
        ("AuthenticAMD", "avx", None),  # older: MKL's own choice
        ("GenuineIntel", "avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl", None),  # MKL knows Intel
    ],
)
def test_mkl_cpu_type_from_cpuinfo(vendor, flags, expected):
    assert cluebench.mkl_cpu_type(CPUINFO.format(vendor=vendor, flags=flags)) == expected
    assert cluebench.mkl_cpu_type("") is None


MALLOC_PROBE = """
import ctypes, json
from cluebench.train import setup as cli
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]

def mapped_afresh(mib):  # glibc's chunk header: bit 2 of the size word marks a block mmap gave
    block = libc.malloc(mib << 20)
    try:
        return bool(ctypes.c_size_t.from_address(block - ctypes.sizeof(ctypes.c_size_t)).value & 2)
    finally:
        libc.free(block)

before = mapped_afresh(31)
cli.set_device("cpu")
print(json.dumps([before, mapped_afresh(1), mapped_afresh(31), mapped_afresh(33)]))
"""


@pytest.mark.slow  # a fresh process: the heap of a long one may hold a large free block already
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")
@pytest.mark.parametrize("user_setting", [None, "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
def test_cpu_device_keeps_freed_memory_in_the_heap(user_setting):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if user_setting:
        env[user_setting] = "131072"
    proc = subprocess.run([sys.executable, "-c", MALLOC_PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, one, thirty_one, thirty_three = json.loads(proc.stdout.splitlines()[-1])
    assert before and thirty_three  # glibc maps large blocks afresh; above 32 MiB it still does
    if user_setting:  # the user's own setting wins: their 128 KiB threshold stays
        assert one and thirty_one
    else:  # up to 32 MiB from the heap
        assert not one and not thirty_one


def tiny_bert_outputs():
    """(model, outputs(model)): a 2-layer BERT and a function giving its logits and every gradient in
    training mode (dropout on, padded rows) followed by its eval-mode logits."""
    from paddlenlp.transformers import BertConfig, BertForSequenceClassification

    ids = np.random.default_rng(0).integers(5, 90, (3, 7))
    ids[0, 4:] = 0  # padding: the mask matters
    config = BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32, num_labels=3
    )

    def outputs(model):
        inputs = dict(input_ids=paddle.to_tensor(ids), token_type_ids=paddle.zeros([3, 7], "int64"))
        paddle.seed(3)  # the same dropout draws
        logits = model(**inputs)
        logits.sum().backward()
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        model.clear_gradients()
        model.eval()
        with paddle.no_grad():
            evaluated = model(**inputs).numpy()
        model.train()
        return [logits.numpy()] + grads + [evaluated]

    paddle.seed(0)
    return BertForSequenceClassification(config), outputs


def assert_same_numbers(model, outputs, reference):
    for make in (lambda: model, lambda: speedups.static_forward(model, token_id=1)):  # to_static converts in place
        for got, want in zip(outputs(make()), reference, strict=True):
            np.testing.assert_array_equal(got, want)


def test_full_attention_masks_keep_the_numbers():
    """Each layer gets the mask as [batch, heads, length, length]; outputs and gradients stay bit for bit
    (dropout on, padded rows), eagerly and as a static program."""
    model, outputs = tiny_bert_outputs()
    reference = outputs(model)
    seen = []
    model.bert.encoder.layers[0].self_attn.register_forward_pre_hook(lambda layer, args: seen.append(args[3].shape))
    assert speedups.full_attention_masks(model) == 1
    copied = copy.deepcopy(model).bert.encoder
    assert vars(copied)["forward"].__self__ is copied  # a copy runs its own layers
    assert_same_numbers(model, outputs, reference)
    # eager: train, eval; traced: eval (static_forward's probe), train; then the static eval program again
    assert [list(shape) for shape in seen] == [[3, 4, 7, 7]] * 2 + [[-1, 4, -1, -1]] * 2


def test_eval_mode_runs_no_dropout(monkeypatch):
    """skip_eval_dropout: no dropout operator in eval mode (eager or traced), all ten in training mode,
    and the numbers of both modes bit for bit."""
    calls = []
    dropout = paddle.nn.functional.dropout
    monkeypatch.setattr(
        paddle.nn.functional, "dropout", lambda *a, **k: calls.append(k.get("training")) or dropout(*a, **k)
    )
    model, outputs = tiny_bert_outputs()
    model.bert.encoder.layers[1].dropout1.mode = "downscale_in_infer"  # scales in eval mode: must stay
    reference = outputs(model)
    # embeddings, 2 layers x (attention, after attention, feed-forward, after feed-forward), classifier
    assert calls == [True] * 10 + [False] * 10
    assert speedups.skip_eval_dropout(model) == 9
    copied = copy.deepcopy(model).dropout
    assert vars(copied)["forward"].__self__ is copied
    calls.clear()
    assert_same_numbers(model, outputs, reference)
    # eager: train, eval; traced: eval (the probe), train; the static programs then run without Python
    assert calls == [True] * 10 + [False] + [False] + [True] * 10


def test_load_pretrained_speeds_cpu_models_up(tiny_models):
    from paddlenlp.transformers import AutoModelForSequenceClassification

    saved = paddle.get_device()
    try:
        paddle.set_device("cpu")
        for arch, path in sorted(tiny_models.items()):
            model = cli.load_pretrained(AutoModelForSequenceClassification, path, 32, num_classes=2)[1]
            changed = {type(layer).__name__ for layer in model.sublayers() if "forward" in vars(layer)}
            assert changed == {"TransformerEncoder", "Dropout", "MultiHeadAttention"}, arch
    finally:
        paddle.set_device(saved)


class Listed:
    """A loader of fixed batches, as training.train_loop reads one."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def epoch(self, number=None, start=0):
        for index, (ids, labels) in enumerate(self.batches):
            if index >= start:
                yield index, {"input_ids": ids, "labels": labels}


def tagger_loss(model, batch):
    ids = batch["input_ids"]
    return paddle.nn.functional.cross_entropy(
        model(input_ids=ids, token_type_ids=paddle.zeros_like(ids)), batch["labels"]
    )


def test_train_loop_without_reseeding_draws_the_stream_of_one_seed():
    """seed=None (where the resume checkpoint saves the generators' positions): the loop draws nothing of its
    own and reseeds nothing, so its dropout masks, hence its losses, are those of a plain loop after one
    paddle.seed, as upstream's training is; with a seed it reseeds every step, and they differ."""

    def run(seed):
        paddle.seed(0)
        model = Tagger()
        scheduler = paddle.optimizer.lr.StepDecay(0.1, step_size=100)
        optimizer = paddle.optimizer.AdamW(learning_rate=scheduler, parameters=model.parameters())
        losses = []
        training.train_loop(
            model,
            Listed(batches()),
            tagger_loss,
            optimizer,
            scheduler,
            total_steps=4,
            epochs=1,
            gas=1,
            logging_steps=1,
            log_template="{loss}",
            evaluate=lambda step, epoch: None,
            seed=seed,
            on_log=lambda step, loss, lr: losses.append(loss),
        )
        return losses

    paddle.seed(0)
    model = Tagger()
    optimizer = paddle.optimizer.AdamW(learning_rate=0.1, parameters=model.parameters())
    plain = []
    for ids, labels in batches():
        loss = tagger_loss(model, {"input_ids": ids, "labels": labels})
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        plain.append(float(loss))
    assert run(None) == plain
    assert run(0)[0] == plain[0] and run(0)[1:] != plain[1:]  # reseeded after the first step
