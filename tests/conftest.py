import zlib  # noqa: F401  before paddle: see cluebench/__init__.py
import os

import pytest

import cluebench  # noqa: F401  before paddle
from cluebench import synthetic
from cluebench.classification import TASKS


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{"ernie": dir, "bert": dir}: 2-layer, hidden-64 random backbones saved with save_pretrained."""
    root = tmp_path_factory.mktemp("models")
    return {arch: synthetic.build_tiny_model(str(root / arch), arch) for arch in ("ernie", "bert")}


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """A data directory holding <task>_public/ for the seven classification tasks."""
    root = tmp_path_factory.mktemp("clue")
    for task in TASKS:
        synthetic.write_task(str(root), task)
    return str(root)


@pytest.fixture(scope="session")
def clue_data():
    path = os.environ.get("CLUE_DATA_DIR")
    if not path:
        pytest.skip("CLUE_DATA_DIR is not set (real CLUE files)")
    return path


@pytest.fixture(scope="session")
def real_vocab_model(clue_data, tmp_path_factory):
    """A tiny random BERT over the real bert-base-chinese vocabulary."""
    from paddlenlp.transformers import BertConfig, BertModel, BertTokenizer
    import paddle

    path = str(tmp_path_factory.mktemp("bert-real-vocab"))
    vocab = os.path.join(clue_data, "vocab", "bert-base-chinese-vocab.txt")
    paddle.seed(1)
    tokenizer = BertTokenizer(vocab)
    BertModel(BertConfig(vocab_size=len(tokenizer.vocab), **synthetic.TINY_CONFIG)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def log_lines(monkeypatch):
    """A callable returning the PaddleNLP logger's lines written so far in this test."""
    import io

    from paddlenlp.utils.log import logger

    buffer = io.StringIO()
    monkeypatch.setattr(logger.handler, "stream", buffer)
    return lambda: buffer.getvalue().splitlines()
