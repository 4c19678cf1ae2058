"""Helpers shared by the test modules."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def save_random_bert(path, clue_data, seed=0, **config):
    """A random BERT (paddle.seed(seed)) over the real files' bert-base-chinese vocabulary, saved with its tokenizer."""
    import paddle
    from paddlenlp.transformers import BertConfig, BertModel, BertTokenizer

    tokenizer = BertTokenizer(os.path.join(clue_data, "vocab", "bert-base-chinese-vocab.txt"))
    paddle.seed(seed)
    BertModel(BertConfig(vocab_size=len(tokenizer.vocab), **config)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _gpu_visible():
    import paddle

    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


# Several CPU ranks (gloo) and the "no GPU" error need a machine where Paddle sees no GPU; elsewhere
# paddle.distributed.launch places ranks on the cards, and hiding them (CUDA_VISIBLE_DEVICES="") breaks it.
NO_GPU = pytest.mark.skipif(_gpu_visible(), reason="tests CPU-only behaviour; Paddle sees a GPU on this machine")


def load_script(relative_path):
    """Import a script (e.g. classification/run_clue_classifier.py) as a module, to call its main()."""
    path = os.path.join(ROOT, relative_path)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def run_python(args, log=None, **kwargs):
    """Run `python ARGS` from the repository root; returns the CompletedProcess (text).

    With log=PATH, stdout and stderr go to that one file, as the grid-search wrappers write them.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1", **kwargs.pop("env", {}))
    cwd = kwargs.pop("cwd", ROOT)
    if log is None:
        return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, **kwargs)
    with open(log, "w", encoding="utf-8") as f:
        return subprocess.run(
            [sys.executable, *args], cwd=cwd, stdout=f, stderr=subprocess.STDOUT, text=True, env=env, **kwargs
        )


def log_field(line, n):
    """Whitespace field n (1-based) of a log line, as awk and extract_result.sh see it."""
    return line.split()[n - 1]
