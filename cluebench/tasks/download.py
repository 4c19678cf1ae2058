"""Without --data_dir: HuggingFace's `clue` data set, written once into the official layout."""
import json
import os

from ..log import logger

from .. import tasks
from ..fileio import DataError, atomic_write, write_json
from .chid import CHID_TAG
from .records import split_files
from .features import default_cache_dir


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
            raise DataError(f"HuggingFace clue/{task}", f"download failed ({type(e).__name__}); pass --data_dir "
                                                       f"with the official {task}_public files") from None
        paths = split_files(task, split, root)
        if task == "cmrc2018":
            data = {"version": "hf", "data": [{"title": "", "paragraphs": [{"context": r["context"], "qas": [
                {"id": r["id"], "question": r["question"],
                 "answers": [{"text": t, "answer_start": s} for t, s in
                             zip(r["answers"]["text"], r["answers"]["answer_start"])]}]}]} for r in rows]}
            write_json(paths[0], data, ensure_ascii=False)
        elif task == "c3":  # one document per question; train/dev ids index documents, test ids questions
            documents = [[r["context"], [dict({"question": r["question"], "choice": r["choice"]},
                                              **({"id": r["id"]} if split.startswith("test") else
                                                 {"answer": r["answer"]}))]] for r in rows]
            for path in paths:  # d- and m- files: all documents go to the first, the second stays empty
                write_json(path, documents if path == paths[0] else [], ensure_ascii=False)
        else:
            answers = {}
            with atomic_write(paths[0]) as f:
                for r in rows:
                    tags = [t for p in r["content"] for t in CHID_TAG.findall(p)]
                    answers.update(zip(tags, r["answers"]["candidate_id"]))
                    f.write(json.dumps({"candidates": r["candidates"], "content": r["content"]},
                                       ensure_ascii=False) + "\n")
            if len(paths) > 1:
                write_json(paths[1], answers, indent=2)
    logger.info(f"{task}: HuggingFace clue/{task} written in the official layout under {folder}")
    return root
