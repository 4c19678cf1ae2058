"""The classification tasks (the seven of CLUE, and FewCLUE's BUSTM): reading their files into examples,
text construction, features, prediction files. The facts about each task (files, labels, text form,
leaderboard files) are the registry's (cluebench.tasks); the label lists are PaddleNLP's `clue` builder's,
so class ids stay compatible with checkpoints trained by the upstream scripts (a test checks it). The task
module of the classification family (the interface is described in cluebench.tasks).
"""

import argparse
import json
import os
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from .. import tasks
from ..fileio import DataError, atomic_write, read_jsonl, require, task_folder
from ..log import logger
from .records import shown

TASKS = tasks.CLASSIFICATION
PREDICTION_FORM = "lines"  # {"id": test id, "label": label} a line
PREDICTION_KEY = "id"
PREDICTION_ENTRY = '"id": ..., "label": ...'


def task_name(name):
    """argparse type: a case-insensitive task name, or an error listing the valid ones."""
    lowered = name.lower()
    if lowered not in TASKS:
        raise argparse.ArgumentTypeError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return lowered


def label_list(task):
    return list(tasks.get(task).labels)


def split_file(task, split, data_dir):
    """Path of a split's file under data_dir (official layout): data_dir may be the task folder itself
    (holding train.json …) or its parent (holding <task>_public/). Without a data_dir the scripts read
    PaddleNLP's download (cluebench.train.download)."""
    return os.path.join(task_folder(data_dir, task), tasks.get(task).files[split][0])


@dataclass
class Example:
    text: str
    pair: str | None
    label: int | None  # index into label_list(task); None on test splits
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
        if not isinstance(start, int) or text[start : start + len(span)] != span:
            found = text[start : start + len(span)] if isinstance(start, int) else None
            raise ValueError(f"{name}_text {span!r} is not at {name}_index {start} of the text (found {found!r})")
    (a, a_text, *_), (b, b_text, *_) = sorted(spans)
    if b < a + len(a_text):
        raise ValueError(f"span1 ({span1_index}, {span1_text!r}) and span2 ({span2_index}, {span2_text!r}) overlap")
    for start, span, left, right, _ in sorted(spans, reverse=True):
        text = text[:start] + left + span + right + text[start + len(span) :]
    return text


def example_text(task, record, path, line):
    """(text, pair) fed to the tokenizer for one raw record, by the task's text form (the registry's)."""
    form, *fields = tasks.get(task).text
    if form == "single":
        return _string(record, fields[0], path, line), None
    if form == "pair":
        return _string(record, fields[0], path, line), _string(record, fields[1], path, line)
    if form == "keywords":
        keywords = require(record, "keyword", path, line)
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise DataError(path, "expected a list of strings", line, "keyword")
        return " ".join(keywords), _string(record, "abst", path, line)
    if form == "wsc":
        text = _string(record, "text", path, line)
        target = require(record, "target", path, line)
        if not isinstance(target, dict):
            raise DataError(path, "expected an object with span1_* and span2_*", line, "target")
        fields = ("span1_index", "span1_text", "span2_index", "span2_text")
        values = [require(target, f, path, line) for f in fields]
        for f, v in zip(fields, values):
            index = f.endswith("index")
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0 if index else isinstance(v, str) and v):
                raise DataError(
                    path,
                    f"target.{f}: expected a {'non-negative integer' if index else 'non-empty string'}"
                    f", got {json.dumps(v, ensure_ascii=False)}",
                    line,
                    "target",
                )
        try:
            return mark_wsc_spans(text, *values), None
        except ValueError as e:
            raise DataError(path, str(e), line, "target") from None
    raise ValueError(f"{task}: unknown text form {form!r} in the registry")  # never a silent fall-through


def min_seq_length(task):
    """The shortest max_seq_length that leaves a token of each text: [CLS] a [SEP] (b [SEP])."""
    return 3 if tasks.get(task).text[0] in ("single", "wsc") else 5


def read_split(task, split, path):
    """(examples, number dropped for a '-' label) from one file of the official layout.

    Test examples must carry unique ids: the leaderboard matches predictions by them."""
    index = {label: i for i, label in enumerate(label_list(task))}
    examples, dropped, id_lines = [], 0, {}
    for line, record in read_jsonl(path):
        text, pair = example_text(task, record, path, line)
        label = None
        if split.startswith("test"):
            example_id = require(record, "id", path, line)
            if not isinstance(example_id, (int, str)) or isinstance(example_id, bool):
                raise DataError(path, f"expected an integer or a string, got {json.dumps(example_id)}", line, "id")
            key = str(example_id)  # 0 and "0" are the same id to the leaderboard
            if key in id_lines:
                raise DataError(path, f"duplicate id {example_id!r} (first on line {id_lines[key]})", line, "id")
            id_lines[key] = line
        else:
            raw = str(require(record, "label", path, line))  # FewCLUE files carry integer labels
            if raw == "-" and tasks.get(task).dash_label:  # no annotator majority: dropped, and counted
                dropped += 1
                continue
            if raw not in index:
                raise DataError(
                    path,
                    f"label {raw!r} is not one of the {len(index)} {task} labels ({', '.join(index)})",
                    line,
                    "label",
                )
            label = index[raw]
        examples.append(Example(text, pair, label, record.get("id")))
    if not examples:
        raise DataError(path, f"no examples{f' (all {dropped} are labelled -)' if dropped else ''}")
    if dropped:
        logger.info(f"{os.path.basename(path)}: dropped {dropped} examples labelled '-', kept {len(examples)}")
    return examples, dropped


def load_split(task, split, data_dir):
    return read_split(task, split, split_file(task, split, data_dir))


def prediction_splits(task, data_dir=None):
    """[(split, output file name)]: the 1.1 test set, and the 1.0 one where the task has it.

    From a local data_dir the 1.0 file is optional; the download always has it.
    """
    spec = tasks.get(task)
    return [
        (split, name)
        for split, name in spec.predictions.items()
        if split not in spec.optional_splits or data_dir is None or os.path.isfile(split_file(task, split, data_dir))
    ]


def encode(tokenizer, examples, max_seq_length, chunk=1024, desc="tokenizing"):
    """Feature dicts (input_ids, token_type_ids[, labels]), truncated longest-first to max_seq_length."""
    features = []
    for start in tqdm(range(0, len(examples), chunk), desc=desc, unit="chunk", disable=None, leave=False):
        part = examples[start : start + chunk]
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


def read(task, split, data_dir):
    """The examples of a split (those labelled "-" dropped, where the task drops them)."""
    return load_split(task, split, data_dir)[0]


def test_file(task, split, data_dir):
    return split_file(task, split, data_dir)


def expected_answers(task, examples):
    return {str(e.id): (e.id, None) for e in examples}


def answer_problem(task, answer, choices):
    labels = tasks.get(task).labels
    if isinstance(answer, str) and answer in labels:
        return None
    listed = ", ".join(labels) if len(labels) <= 15 else f"{labels[0]} to {labels[-1]}"
    return f"label {shown(answer)} is not one of the {len(labels)} {task} labels (strings: {listed})"
