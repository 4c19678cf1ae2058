"""What every training script does before and around its real work."""
import os
import random
import sys

import numpy as np
import paddle
from paddlenlp.utils.log import logger

from .fileio import DataError

# Files that make a local directory loadable by PaddleNLP's Auto classes.
WEIGHT_FILES = ("model_state.pdparams", "model_state.pdparams.index.json", "model.safetensors",
                "model.safetensors.index.json")
VOCAB_FILES = ("vocab.txt", "sentencepiece.bpe.model", "spm.model", "tokenizer.json", "vocab.json")


def strtobool(value):
    """The y/yes/t/true/on/1 vs n/no/f/false/off/0 booleans of the upstream flags."""
    text = str(value).strip().lower()
    if text in ("y", "yes", "t", "true", "on", "1"):
        return True
    if text in ("n", "no", "f", "false", "off", "0"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def print_arguments(args):
    print("-----------  Configuration Arguments -----------")
    for name, value in sorted(vars(args).items()):
        print(f"{name}: {value}")
    print("------------------------------------------------", flush=True)


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def set_device(device):
    """paddle.set_device, with a clear error where the GPU build would kill the process outright."""
    if device.startswith("gpu") and (not paddle.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0):
        raise SystemExit(f"error: --device {device} asked for, but no GPU is visible; use --device cpu")
    paddle.set_device(device)


def init_distributed():
    """(rank, world_size); sets up the collective environment when launched on several cards."""
    world_size = paddle.distributed.get_world_size()
    if world_size > 1:
        paddle.distributed.init_parallel_env()
    return paddle.distributed.get_rank(), world_size


def check_model_path(path):
    """A local model directory must hold weights and a vocabulary; built-in names pass through."""
    if not os.path.isdir(path):
        if path.startswith(("/", "./", "../", "~")):  # a path, not a built-in or community name
            raise DataError(path, "model directory not found")
        return
    present = set(os.listdir(path))
    if "config.json" not in present and "model_config.json" not in present:
        raise DataError(path, "model directory has no config.json")
    if not present.intersection(WEIGHT_FILES):
        raise DataError(path, f"model directory has no weights (expected one of {', '.join(WEIGHT_FILES)})")
    if not present.intersection(VOCAB_FILES):
        raise DataError(path, f"model directory has no vocabulary (expected one of {', '.join(VOCAB_FILES)})")


def run(main):
    """Run a script's main(); bad input ends it with one clear line and exit status 2."""
    try:
        main()
    except DataError as e:
        logger.error(str(e))
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
