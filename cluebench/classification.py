"""The seven CLUE classification tasks: files, label lists, text construction, features, outputs.

Label lists and archive layout come from PaddleNLP's own `clue` dataset builder, so class ids
stay compatible with checkpoints trained by the upstream scripts.
"""
import argparse
import json
import os
from dataclasses import dataclass
from typing import Any, Optional

from paddlenlp.datasets.clue import Clue
from paddlenlp.utils.log import logger
from tqdm.auto import tqdm

from .fileio import DataError, atomic_write, read_jsonl, require, task_folder

TASKS = ("afqmc", "tnews", "iflytek", "ocnli", "cmnli", "cluewsc2020", "csl")
PAIR_TASKS = ("afqmc", "ocnli", "cmnli", "csl")
DASH_LABEL_TASKS = ("ocnli", "cmnli")  # examples labelled "-" (no annotator majority) are dropped
TEST_SPLITS = ("test", "test1.0")

# Leaderboard file names per test split; the 1.0 files only where the task has a 1.0 test set.
PREDICTION_FILES = {
    "afqmc": {"test": "afqmc_predict.json"},
    "tnews": {"test": "tnews11_predict.json", "test1.0": "tnews10_predict.json"},
    "iflytek": {"test": "iflytek_predict.json"},
    "ocnli": {"test": "ocnli_50k_predict.json"},
    "cmnli": {"test": "cmnli_predict.json"},
    "cluewsc2020": {"test": "cluewsc11_predict.json", "test1.0": "cluewsc10_predict.json"},
    "csl": {"test": "csl_predict.json"},
}


def task_name(name):
    """argparse type: a case-insensitive task name, or an error listing the valid ones."""
    lowered = name.lower()
    if lowered not in TASKS:
        raise argparse.ArgumentTypeError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return lowered


def label_list(task):
    return Clue.BUILDER_CONFIGS[task]["labels"]


def split_file(task, split, data_dir=None):
    """Path of a split's file: under data_dir (official layout) or PaddleNLP's download cache.

    data_dir may be the task folder itself (holding train.json …) or its parent (holding
    <task>_public/). Without data_dir the archive is downloaded as upstream does.
    """
    if data_dir is None:
        try:
            return Clue(name=task)._get_data(split)
        except Exception as e:  # offline, or the mirror is gone: one line, not a retry traceback
            raise DataError(f"PaddleNLP clue/{task}", f"download failed ({type(e).__name__}); pass --data_dir with "
                                                      f"the official {task}_public files") from None
    relative = Clue.BUILDER_CONFIGS[task]["splits"][split][0]  # e.g. ocnli_public/train.50k.json
    return os.path.join(task_folder(data_dir, task), os.path.basename(relative))


@dataclass
class Example:
    text: str
    pair: Optional[str]
    label: Optional[int]  # index into label_list(task); None on test splits
    id: Any  # the test file's own id (None where the file has none)


def _string(record, field, path, line):
    value = require(record, field, path, line)
    if not isinstance(value, str):
        raise DataError(path, f"expected a string, got {json.dumps(value, ensure_ascii=False)}", line, field)
    return value


def mark_wsc_spans(text, span1_index, span1_text, span2_index, span2_text):
    """Wrap the noun (span1) in _…_ and the pronoun (span2) in […], as the upstream models were trained.

    Spans may come in either order. Inserting from the rightmost span leftwards keeps the
    other span's index valid. Raises ValueError if a span is not where its index says.
    """
    spans = [(span1_index, span1_text, "_", "_", "span1"), (span2_index, span2_text, "[", "]", "span2")]
    for start, span, _, _, name in spans:
        if not isinstance(start, int) or text[start:start + len(span)] != span:
            found = text[start:start + len(span)] if isinstance(start, int) else None
            raise ValueError(f"{name}_text {span!r} is not at {name}_index {start} of the text (found {found!r})")
    (a, a_text, *_), (b, b_text, *_) = sorted(spans)
    if b < a + len(a_text):
        raise ValueError(f"span1 ({span1_index}, {span1_text!r}) and span2 ({span2_index}, {span2_text!r}) overlap")
    for start, span, left, right, _ in sorted(spans, reverse=True):
        text = text[:start] + left + span + right + text[start + len(span):]
    return text


def example_text(task, record, path, line):
    """(text, pair) fed to the tokenizer for one raw record."""
    if task in ("tnews", "iflytek"):
        return _string(record, "sentence", path, line), None
    if task == "csl":
        keywords = require(record, "keyword", path, line)
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise DataError(path, "expected a list of strings", line, "keyword")
        return " ".join(keywords), _string(record, "abst", path, line)
    if task == "cluewsc2020":
        text = _string(record, "text", path, line)
        target = require(record, "target", path, line)
        if not isinstance(target, dict):
            raise DataError(path, "expected an object with span1_* and span2_*", line, "target")
        fields = ("span1_index", "span1_text", "span2_index", "span2_text")
        values = [require(target, f, path, line) for f in fields]
        for f, v in zip(fields, values):
            index = f.endswith("index")
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0 if index else isinstance(v, str) and v):
                raise DataError(path, f"target.{f}: expected a {'non-negative integer' if index else 'non-empty string'}"
                                      f", got {json.dumps(v, ensure_ascii=False)}", line, "target")
        try:
            return mark_wsc_spans(text, *values), None
        except ValueError as e:
            raise DataError(path, str(e), line, "target") from None
    return _string(record, "sentence1", path, line), _string(record, "sentence2", path, line)


def min_seq_length(task):
    """The shortest max_seq_length that leaves a token of each text: [CLS] a [SEP] (b [SEP])."""
    return 5 if task in PAIR_TASKS else 3


def read_split(task, split, path):
    """(examples, number dropped for a '-' label) from one file of the official layout.

    Test examples must carry unique ids: the leaderboard matches predictions by them."""
    index = {label: i for i, label in enumerate(label_list(task))}
    examples, dropped, id_lines = [], 0, {}
    for line, record in read_jsonl(path):
        text, pair = example_text(task, record, path, line)
        label = None
        if split in TEST_SPLITS:
            example_id = require(record, "id", path, line)
            if not isinstance(example_id, (int, str)) or isinstance(example_id, bool):
                raise DataError(path, f"expected an integer or a string, got {json.dumps(example_id)}", line, "id")
            key = str(example_id)  # 0 and "0" are the same id to the leaderboard
            if key in id_lines:
                raise DataError(path, f"duplicate id {example_id!r} (first on line {id_lines[key]})", line, "id")
            id_lines[key] = line
        else:
            raw = str(require(record, "label", path, line))  # FewCLUE files carry integer labels
            if raw == "-" and task in DASH_LABEL_TASKS:
                dropped += 1
                continue
            if raw not in index:
                raise DataError(path, f"label {raw!r} is not one of the {len(index)} {task} labels "
                                      f"({', '.join(index)})", line, "label")
            label = index[raw]
        examples.append(Example(text, pair, label, record.get("id")))
    if not examples:
        raise DataError(path, f"no examples{f' (all {dropped} are labelled -)' if dropped else ''}")
    if dropped:
        logger.info(f"{os.path.basename(path)}: dropped {dropped} examples labelled '-', kept {len(examples)}")
    return examples, dropped


def load_split(task, split, data_dir=None):
    return read_split(task, split, split_file(task, split, data_dir))


def prediction_splits(task, data_dir=None):
    """[(split, output file name)]: the 1.1 test set, and the 1.0 one where the task has it.

    From a local data_dir the 1.0 file is optional; the download always has it.
    """
    return [(split, name) for split, name in PREDICTION_FILES[task].items()
            if split == "test" or data_dir is None or os.path.isfile(split_file(task, split, data_dir))]


def encode(tokenizer, examples, max_seq_length, chunk=1024, desc="tokenizing"):
    """Feature dicts (input_ids, token_type_ids[, labels]), truncated longest-first to max_seq_length."""
    features = []
    for start in tqdm(range(0, len(examples), chunk), desc=desc, unit="chunk", disable=None, leave=False):
        part = examples[start:start + chunk]
        pairs = [e.pair for e in part] if part[0].pair is not None else None
        encoded = tokenizer([e.text for e in part], pairs, max_length=max_seq_length, truncation=True)
        for i, example in enumerate(part):
            feature = {"input_ids": encoded["input_ids"][i], "token_type_ids": encoded["token_type_ids"][i]}
            if example.label is not None:
                feature["labels"] = example.label
            features.append(feature)
    return features


def write_predictions(path, examples, predicted_labels):
    """One {"id", "label"} line per test example, in file order, carrying the example's own id."""
    with atomic_write(path) as f:
        for example, label in zip(examples, predicted_labels, strict=True):
            f.write(json.dumps({"id": example.id, "label": label}) + "\n")
