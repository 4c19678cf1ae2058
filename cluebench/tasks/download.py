"""Without --data_dir: HuggingFace's `clue` data set, written once into the official layout."""

import os

from .. import tasks
from ..fileio import DataError
from ..log import logger
from .features import default_cache_dir
from .records import split_files


def download(task, root=None, load=None):
    """Without --data_dir, as upstream: HuggingFace's `clue` data set (a download, cached by
    `datasets`), written once into the official layout under ROOT/<task>_public/, so the same
    readers, cache keys and checks serve both paths. Returns the data directory."""
    root = root or os.path.join(default_cache_dir(), "clue_data")
    folder = os.path.join(root, f"{task}_public")
    os.makedirs(folder, exist_ok=True)  # first: split_files looks for it
    _, hf_splits = tasks.get(task).download  # ("huggingface", {our split: theirs})
    if all(os.path.isfile(p) for s in hf_splits for p in split_files(task, s, root)):
        return root
    if load is None:
        from datasets import load_dataset as load
    for split, hf_split in hf_splits.items():
        try:
            rows = list(load("clue", task, split=hf_split))
        except Exception as e:  # offline, or the hub moved: say so in one line
            raise DataError(
                f"HuggingFace clue/{task}",
                f"download failed ({type(e).__name__}); pass --data_dir with the official {task}_public files",
            ) from None
        tasks.module(task).from_huggingface(rows, split, split_files(task, split, root))
    logger.info(f"{task}: HuggingFace clue/{task} written in the official layout under {folder}")
    return root
