"""CMRC2018 (span extraction): reading, windowed features, decoding answers; the task module of the span
family (the interface is described in cluebench.tasks)."""

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..fileio import DataError, write_json
from .features import CHUNK, FeatureBuilder, special_ids
from .records import (  # the interface's test_file (the split's one file)
    get_field,
    read_json,
    shown,
    split_files,
    test_file as test_file,
    typed,
    unique,
)

# Bump when the reader or the feature code changes what the features hold: old caches are then ignored
# (tests/test_mrc_features.py pins a digest of the features to catch a forgotten bump).
FEATURE_VERSION = 1
RAGGED_COLUMNS = {"input_ids": np.int32, "token_type_ids": np.int8, "offsets": np.int32}
PLAIN_COLUMNS = {"start_positions": np.int32, "end_positions": np.int32, "example_index": np.int32}
FEATURE_COLUMNS = set(RAGGED_COLUMNS) | set(PLAIN_COLUMNS)
PREDICTION_FORM = "object"  # {question id: answer text}
PREDICTION_KEY = "id"
PREDICTION_ENTRY = "question id: answer"


def write_predictions(path, answers):
    """The leaderboard file (and the dev predictions): one JSON object of question id -> answer text."""
    write_json(path, answers, ensure_ascii=False, indent=4)


@dataclass
class QAExample:
    id: str
    context: str
    question: str
    answers: list[str]
    answer_start: int | None  # of the first answer; None where the file gives -1 (no position)


def read_cmrc(path, check_starts, labelled=False):
    """SQuAD-style CMRC2018 questions. labelled (train, dev): each question has its gold answers;
    check_starts (train, so labelled too): the first answer sits at its answer_start. Question ids are unique."""
    labelled = labelled or check_starts
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(path, "expected SQuAD-style JSON {'data': [{'paragraphs': ...}]}", field="data")
    examples, seen = [], {}
    for a, article in enumerate(data["data"]):
        article = typed(article, dict, path, f"article {a}", "data")
        for p, paragraph in enumerate(get_field(article, "paragraphs", list, path, f"article {a}")):
            where = f"article {a}, paragraph {p}"
            paragraph = typed(paragraph, dict, path, where, "paragraphs")
            context = get_field(paragraph, "context", str, path, where)
            for q, qa in enumerate(get_field(paragraph, "qas", list, path, where)):
                where = f"article {a}, paragraph {p}, question {q}"
                qa = typed(qa, dict, path, where, "qas")
                qid = get_field(qa, "id", str, path, where)
                unique(seen, qid, where, path, "id")
                question = get_field(qa, "question", str, path, where)
                answers, start = [], None
                if labelled:
                    golds = get_field(qa, "answers", list, path, where)
                    if not golds:
                        raise DataError(path, f"question {qid}: no answer", field="answers")
                    for k, gold in enumerate(golds):
                        answers.append(
                            get_field(
                                typed(gold, dict, path, f"question {qid}, answer {k}", "answers"),
                                "text",
                                str,
                                path,
                                f"question {qid}, answer {k}",
                            )
                        )
                        if not answers[-1].strip():
                            raise DataError(path, f"question {qid}, answer {k}: empty text", field="answers")
                    first, text = golds[0], answers[0]
                    if check_starts and get_field(first, "answer_start", int, path, f"question {qid}, answer 0") != -1:
                        start = first["answer_start"]
                        if start < 0:  # -1 alone means "no position"; a slice would count from the end
                            raise DataError(
                                path, f"question {qid}: answer_start {start} (only -1 may be negative)", field="answers"
                            )
                        if context[start : start + len(text)] != text:
                            raise DataError(
                                path,
                                f"question {qid}: answer {text!r} is not at answer_start {start} "
                                f"(found {context[start : start + len(text)]!r})",
                                field="answers",
                            )
                examples.append(QAExample(qid, context, question.strip(), answers, start))
    if not examples:
        raise DataError(path, "no questions found (expected SQuAD-style {'data': [{'paragraphs': ...}]})")
    return examples


def cmrc_features(examples, encoder, max_seq_length, doc_stride, with_labels, path="CMRC2018"):
    """Windows of PaddleNLP's doc_stride meaning: the question whole, the context cut into windows of
    L = max_seq_length - len(question) - 3 tokens whose starts are min(L, doc_stride) apart."""
    cls, sep = special_ids(encoder.tokenizer)
    out = FeatureBuilder(RAGGED_COLUMNS, PLAIN_COLUMNS)
    for first in tqdm(range(0, len(examples), CHUNK), desc="CMRC2018 features", disable=None, leave=False):
        chunk = examples[first : first + CHUNK]
        questions = encoder.encode([e.question for e in chunk])
        contexts = encoder.encode([e.context for e in chunk])
        for i, (example, (q_ids, _), (c_ids, c_offsets)) in enumerate(zip(chunk, questions, contexts)):
            room = max_seq_length - len(q_ids) - 3
            if room < 1:
                raise DataError(
                    path,
                    f"question {example.id}: its {len(q_ids)} tokens leave no room for the "
                    f"context at max_seq_length {max_seq_length}",
                    field="question",
                )
            start = 0
            while True:
                length = min(room, len(c_ids) - start)
                window = slice(start, start + length)
                ids = [cls] + q_ids + [sep] + c_ids[window] + [sep]
                types = [0] * (len(q_ids) + 2) + [1] * (length + 1)
                offsets = [(-1, -1)] * (len(q_ids) + 2) + list(c_offsets[window]) + [(-1, -1)]
                s = e = 0
                if with_labels and example.answer_start is not None and length > 0:
                    s, e = _answer_tokens(example, c_offsets, start, length, len(q_ids) + 2)
                out.add(
                    input_ids=ids,
                    token_type_ids=types,
                    offsets=np.asarray(offsets, np.int32).ravel(),
                    start_positions=s,
                    end_positions=e,
                    example_index=first + i,
                )
                if start + length >= len(c_ids):
                    break
                start += min(length, doc_stride)
        out.flush()
    return out.build()


def _answer_tokens(example, offsets, start, length, shift):
    """Token positions of the first answer inside the window, or (0, 0) ([CLS]) if it is not wholly inside."""
    text = example.answers[0]  # the span without surrounding whitespace, which no token covers
    begin = example.answer_start + len(text) - len(text.lstrip())
    end = example.answer_start + len(text.rstrip())
    last = start + length - 1
    if not (offsets[start][0] <= begin and offsets[last][1] >= end):
        return 0, 0
    s = start
    while s <= last and offsets[s][0] <= begin:
        s += 1
    e = last
    while e >= start and offsets[e][1] >= end:
        e -= 1
    return s - 1 - start + shift, e + 1 - start + shift


def cmrc_answers(examples, feats, start_logits, end_logits, n_best_size, max_answer_length):
    """{question id: answer text}: over all windows of a question, the top n_best_size starts and ends
    whose span lies in the context, ends after it starts and spans at most max_answer_length tokens;
    the highest start + end logit wins; "empty" where no span is valid (as upstream)."""
    best = {}
    for f in range(len(feats)):
        example = int(feats["example_index"][f])
        offsets = feats.rows("offsets", f)[0].reshape(-1, 2)
        starts, ends = start_logits[f], end_logits[f]
        top_starts = np.argsort(-starts, kind="stable")[:n_best_size]
        top_ends = np.argsort(-ends, kind="stable")[:n_best_size]
        for s in top_starts:
            if offsets[s][0] < 0:
                continue
            for e in top_ends:
                if offsets[e][0] < 0 or e < s or e - s + 1 > max_answer_length:
                    continue
                score = starts[s] + ends[e]
                if example not in best or score > best[example][0]:
                    best[example] = (score, examples[example].context[offsets[s][0] : offsets[e][1]])
    return {e.id: best[i][1] if i in best else "empty" for i, e in enumerate(examples)}


def read(task, split, data_dir):
    """The questions of a split; train answers are checked to sit at their answer_start."""
    return read_cmrc(
        split_files(task, split, data_dir)[0], check_starts=split == "train", labelled=not split.startswith("test")
    )


def expected_answers(task, examples):
    return {e.id: (e.id, None) for e in examples}


def answer_problem(task, answer, choices):
    return None if isinstance(answer, str) else f"answer {shown(answer)} is not a string"


def from_huggingface(rows, split, paths):
    """HuggingFace clue/cmrc2018 rows as the official SQuAD-style file: one article per question."""
    data = {
        "version": "hf",
        "data": [
            {
                "title": "",
                "paragraphs": [
                    {
                        "context": r["context"],
                        "qas": [
                            {
                                "id": r["id"],
                                "question": r["question"],
                                "answers": [
                                    {"text": t, "answer_start": s}
                                    for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"])
                                ],
                            }
                        ],
                    }
                ],
            }
            for r in rows
        ],
    }
    write_json(paths[0], data, ensure_ascii=False)
