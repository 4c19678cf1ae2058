import os
import zlib  # noqa: F401  before paddle: see cluebench/__init__.py

import cluebench  # noqa: F401  before paddle
from cluebench import synthetic
from cluebench.tasks.classification import TASKS
from helpers import save_random_bert

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{"ernie": dir, "bert": dir}: 2-layer, hidden-64 random backbones saved with save_pretrained."""
    root = tmp_path_factory.mktemp("models")
    return {arch: synthetic.build_tiny_model(str(root / arch), arch) for arch in ("ernie", "bert")}


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """The one synthetic data directory: <task>_public/ for all ten tasks. Tests that spoil a file copy it."""
    root = str(tmp_path_factory.mktemp("clue"))
    for task in TASKS:
        synthetic.write_task(root, task)
    synthetic.write_cmrc2018(root)
    synthetic.write_c3(root)
    synthetic.write_chid(root)
    return root


@pytest.fixture(scope="session")
def clue_data():
    path = os.environ.get("CLUE_DATA_DIR")
    if not path:
        pytest.skip("CLUE_DATA_DIR is not set (real CLUE files)")
    return path


@pytest.fixture(scope="session")
def real_vocab_model(clue_data, tmp_path_factory):
    """A tiny random BERT over the real bert-base-chinese vocabulary."""
    return save_random_bert(str(tmp_path_factory.mktemp("bert-real-vocab")), clue_data, seed=1, **synthetic.TINY_CONFIG)


@pytest.fixture
def log_lines(monkeypatch):
    """A callable returning the PaddleNLP logger's lines written so far in this test."""
    import io

    from paddlenlp.utils.log import logger

    buffer = io.StringIO()
    monkeypatch.setattr(logger.handler, "stream", buffer)
    return lambda: buffer.getvalue().splitlines()


@pytest.fixture(autouse=True)
def translation_back_on():
    """A script run in-process that fell back to eager (--to_static) switched translation off process-wide."""
    yield
    import paddle

    paddle.jit.enable_to_static(True)
