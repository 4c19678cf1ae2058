"""training.static_forward: one static program with the eager numbers, and the eager path when translation fails."""
import numpy as np
import paddle

from cluebench import training


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
    return [(paddle.to_tensor(rng.integers(1, 50, (4, length))), paddle.to_tensor(rng.integers(0, 3, (4,))))
            for length in (5, 9, 3, 12)]  # lengths change from batch to batch: one program serves them all


def test_static_program_gives_the_eager_numbers():
    paddle.seed(0)
    eager = Tagger()
    paddle.seed(0)
    static = training.static_forward(Tagger(), token_id=1)
    assert isinstance(static.forward, paddle.jit.dy2static.program_translator.StaticFunction)
    assert train_losses(static, batches()) == train_losses(eager, batches())
    static.eval(), eager.eval()
    ids = batches()[3][0]
    np.testing.assert_array_equal(static(input_ids=ids, token_type_ids=ids * 0).numpy(),
                                  eager(input_ids=ids, token_type_ids=ids * 0).numpy())


def test_a_model_that_cannot_be_translated_runs_eagerly(monkeypatch):
    warnings = []
    monkeypatch.setattr(training.logger, "warning", warnings.append)
    paddle.seed(0)
    reference = train_losses(Tagger(untranslatable=True), batches())
    paddle.seed(0)
    try:
        model = training.static_forward(Tagger(untranslatable=True), token_id=1)
        assert model.training  # the probe ran in eval mode and left the mode as it was
        assert train_losses(model, batches()) == reference
    finally:
        paddle.jit.enable_to_static(True)  # the fallback switches translation off for the whole process
    assert [w.split(";")[0] for w in warnings] == ["--to_static: TypeError translating Tagger"]
