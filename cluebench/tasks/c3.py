"""C3 (multiple choice over at most four answers): reading and features; the task module of the choice
family (the interface is described in cluebench.tasks)."""

import json
import os
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .. import tasks
from ..fileio import DataError, atomic_write, write_json
from .features import CHUNK, FeatureBuilder, special_ids
from .records import (  # the interface's test_file (the split's one file)
    get_field,
    index_problem,
    json_type,
    read_json,
    split_files,
    strings,
    test_file as test_file,
    typed,
    unique,
)

C3_FILLER = "无效答案"  # pads C3 questions to four choices
C3_CHOICES = tasks.get("c3").choices
# Bump when the reader or the feature code changes what the features hold: old caches are then ignored
# (tests/test_mrc_features.py pins a digest of the features to catch a forgotten bump).
FEATURE_VERSION = 1
RAGGED_COLUMNS = {"input_ids": np.int32, "token_type_ids": np.int8}
PLAIN_COLUMNS = {"labels": np.int64}
FEATURE_COLUMNS = set(RAGGED_COLUMNS) | set(PLAIN_COLUMNS)
PREDICTION_FORM = "lines"  # {"id": question id, "label": choice index} a line
PREDICTION_KEY = "id"
PREDICTION_ENTRY = '"id": ..., "label": ...'


def write_predictions(path, examples, choices):
    """The leaderboard file: one {"id", "label"} line per question, its own id and the chosen choice's index."""
    with atomic_write(path) as f:
        for example, choice in zip(examples, choices, strict=True):
            f.write(json.dumps({"id": example.id, "label": int(choice)}) + "\n")


@dataclass
class ChoiceExample:
    id: object
    context: str
    question: str
    choices: list[str]  # padded to four with C3_FILLER
    label: int | None
    given: int = C3_CHOICES  # the choices the question has (2 to 4); the others are filler, never an answer


def read_c3(paths, labelled):
    """C3 questions: [turns, [{question, choice, answer | id}], document id] records (test files leave the
    document id out). Test questions carry their own id, unique within the file."""
    examples = []
    for path in paths:
        documents, seen = read_json(path), {}
        if not isinstance(documents, list):
            raise DataError(
                path, f"expected a list of [turns, questions, document id] records, got {json_type(documents)}"
            )
        for d, record in enumerate(documents):
            if not isinstance(record, list) or len(record) not in (2, 3):
                shape = f"a list of {len(record)}" if isinstance(record, list) else json_type(record)
                raise DataError(path, f"document {d}: expected [turns, questions, document id], got {shape}")
            context = "\n".join(strings(record[0], path, f"document {d}", "turns")).lower()
            for q, item in enumerate(typed(record[1], list, path, f"document {d}", "questions")):
                where = f"document {d}, question {q}"
                item = typed(item, dict, path, where, "questions")
                question = get_field(item, "question", str, path, where)
                choices = [c.lower() for c in get_field(item, "choice", "strings", path, where)]
                if not 1 <= len(choices) <= C3_CHOICES:  # the model scores four; fewer are padded with C3_FILLER
                    raise DataError(
                        path, f"{where}: expected 1 to {C3_CHOICES} choices, got {len(choices)}", field="choice"
                    )
                label = None
                if labelled:
                    answer = get_field(item, "answer", str, path, where).lower()
                    if answer not in choices:
                        raise DataError(
                            path, f"{where}: answer {answer!r} is not among the choices {choices}", field="answer"
                        )
                    label = choices.index(answer)  # the first, where a choice repeats (real dev has some)
                    question_id = item.get("id", f"{os.path.basename(path)}:{d}:{q}")  # never written out
                else:  # predictions are keyed by it
                    question_id = get_field(item, "id", (int, str), path, where)
                    unique(seen, question_id, where, path, "id")
                examples.append(
                    ChoiceExample(
                        question_id,
                        context,
                        question.lower(),
                        choices + [C3_FILLER] * (C3_CHOICES - len(choices)),
                        label,
                        len(choices),
                    )
                )
    if not examples:
        others = ", ".join(os.path.basename(p) for p in paths[1:])
        raise DataError(paths[0], "no questions found" + (f" (nor in {others})" if others else ""))
    return examples


def truncate_longest(lists, budget):
    """Pop the last item of the currently longest list until the total fits; ties go to the earlier list."""
    while sum(len(x) for x in lists) > budget:
        max(lists, key=len).pop()


def c3_features(examples, encoder, max_seq_length):
    """[CLS] context [SEP] question [SEP] choice [SEP] per choice; context and question are truncated
    once for the four choices together, as upstream (the most truncated version serves all four)."""
    cls, sep = special_ids(encoder.tokenizer)
    out = FeatureBuilder(RAGGED_COLUMNS, PLAIN_COLUMNS)
    for first in tqdm(range(0, len(examples), CHUNK), desc="C3 features", disable=None, leave=False):
        chunk = examples[first : first + CHUNK]
        texts = [t for e in chunk for t in [e.context, e.question] + e.choices]
        encoded = [ids for ids, _ in encoder.encode(texts)]
        for i, example in enumerate(chunk):
            context, question, *choices = [list(x) for x in encoded[i * 6 : (i + 1) * 6]]
            for choice in choices:
                truncate_longest([context, question, choice], max_seq_length - 4)
            for choice in choices:
                out.add(
                    input_ids=[cls] + context + [sep] + question + [sep] + choice + [sep],
                    token_type_ids=[0] * (len(context) + 2) + [1] * (len(question) + len(choice) + 2),
                )
            out.add(labels=-1 if example.label is None else example.label)
        out.flush()
    return out.build(group=4)


def read(task, split, data_dir):
    """The questions of a split's d- and m- files (test: the one test file)."""
    return read_c3(split_files(task, split, data_dir), not split.startswith("test"))


def expected_answers(task, examples):
    """choices: the question's own number of choices, not the reader's padding to four."""
    return {str(e.id): (e.id, e.given) for e in examples}


def answer_problem(task, answer, choices):
    return index_problem(answer, choices, "choices")


def from_huggingface(rows, split, paths):
    """HuggingFace clue/c3 rows as the official files: one document per question; train/dev ids index
    documents, test ids questions. All documents go to the first (d-) file, the second (m-) stays empty."""
    documents = [
        [
            r["context"],
            [
                dict(
                    {"question": r["question"], "choice": r["choice"]},
                    **({"id": r["id"]} if split.startswith("test") else {"answer": r["answer"]}),
                )
            ],
        ]
        for r in rows
    ]
    for path in paths:
        write_json(path, documents if path == paths[0] else [], ensure_ascii=False)
