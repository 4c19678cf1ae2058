"""CHID (idiom cloze, ten candidates per blank): reading, features, decoding each passage group; the task
module of the cloze family (the interface is described in cluebench.tasks)."""

import json
import re
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .. import tasks
from ..fileio import DataError, atomic_write, read_jsonl, write_json
from .features import CHUNK, FeatureBuilder, special_ids
from .records import (  # the interface's test_file (the split's one file)
    get_field,
    index_problem,
    json_type,
    read_json,
    split_files,
    test_file as test_file,
)

CHID_TAG = re.compile(r"#idiom\d{6}#")
CHID_BAD_TAG = re.compile(r"#idiom[^#\s]{0,12}#?")  # what is left of a tag-like text once the real tags are out
CHID_MARKER = "[unused1]"  # stands for the blank; must be one token of the vocabulary
CHID_CANDIDATES = tasks.get("chid").choices  # per row; the model is built with as many choices
# Bump when the reader or the feature code changes what the features hold: old caches are then ignored
# (tests/test_mrc_features.py pins a digest of the features to catch a forgotten bump).
FEATURE_VERSION = 1
RAGGED_COLUMNS = {"input_ids": np.int32}
PLAIN_COLUMNS = {"labels": np.int64, "row": np.int32, "tag": str}
FEATURE_COLUMNS = set(RAGGED_COLUMNS) | set(PLAIN_COLUMNS)
PREDICTION_FORM = "object"  # {blank tag: candidate index}
PREDICTION_KEY = "blank"
PREDICTION_ENTRY = "blank tag: candidate index"


def write_predictions(path, tags, chosen):
    """The leaderboard file: one JSON object of blank tag -> the chosen candidate's index."""
    write_json(path, {str(tag): int(c) for tag, c in zip(tags, chosen, strict=True)}, indent=2)


@dataclass
class ClozeRow:
    candidates: list[str]
    passages: list[str]
    tags: list[str]  # blank tags in order of appearance
    labels: list[int] | None  # candidate index per blank
    line: int | None = None  # in the file, for errors found while building features


def read_chid(paths, labelled):
    """CHID rows: JSON lines of {candidates: 10 idioms, content: [passages]}, answers from the *_answer.json
    tag map. Blank tags are unique within the split (predictions are keyed by them)."""
    answers = read_json(paths[1]) if labelled else {}
    if not isinstance(answers, dict):
        raise DataError(paths[1], f"expected an object of blank tag -> candidate index, got {json_type(answers)}")
    rows, seen = [], {}
    for line, record in read_jsonl(paths[0]):
        candidates = get_field(record, "candidates", "strings", paths[0], "", line)
        if len(candidates) != CHID_CANDIDATES:
            raise DataError(
                paths[0], f"expected {CHID_CANDIDATES} candidates, got {len(candidates)}", line=line, field="candidates"
            )
        if not all(c.strip() for c in candidates):
            raise DataError(paths[0], "an empty candidate", line=line, field="candidates")
        passages = get_field(record, "content", "strings", paths[0], "", line)
        for p in passages:  # a mistyped tag would be read as text, and its blank never answered
            bad = CHID_BAD_TAG.search(CHID_TAG.sub("", p))
            if bad:
                raise DataError(
                    paths[0],
                    f"{bad.group()!r} is not a blank tag (#idiom and six digits, then #)",
                    line=line,
                    field="content",
                )
        tags = [t for p in passages for t in CHID_TAG.findall(p)]
        for tag in tags:
            if tag in seen:
                raise DataError(
                    paths[0], f"blank {tag} is used twice (first at line {seen[tag]})", line=line, field="content"
                )
            seen[tag] = line
        labels = None
        if labelled:
            labels = []
            for tag in tags:
                if tag not in answers:
                    raise DataError(paths[0], f"blank {tag} has no answer in {paths[1]}", line=line, field="content")
                if type(answers[tag]) is not int:  # no "3", no true/false
                    raise DataError(
                        paths[1],
                        f"blank {tag}: answer {answers[tag]!r} is not a candidate index (an integer)",
                        field=tag,
                    )
                if not 0 <= answers[tag] < len(candidates):
                    raise DataError(
                        paths[1],
                        f"blank {tag}: answer {answers[tag]!r} is outside the {len(candidates)} candidates",
                        field=tag,
                    )
                labels.append(answers[tag])
        rows.append(ClozeRow(candidates, passages, tags, labels, line))
    if not seen:
        raise DataError(
            paths[0],
            "no blanks found (expected JSON lines of {candidates, content} with #idiomNNNNNN# tags in the content)",
        )
    return rows


CHID_PUNCTUATION = [("“", '"'), ("”", '"'), ("——", "--"), ("—", "-"), ("―", "-"), ("…", "..."), ("‘", "'"), ("’", "'")]


def chid_features(rows, encoder, max_seq_length, path="CHID"):
    """One feature per blank: for each candidate, [CLS] idiom [SEP] left [unused1] right [SEP], where
    left/right are N = max_seq_length - 4 - (the row's longest idiom: 4 tokens as a rule) context tokens
    around the blank (half each side, shifted near the edges) and every other blank inside the window is
    four [MASK]s."""
    tokenizer = encoder.tokenizer
    cls, sep = special_ids(tokenizer)
    marker, mask = tokenizer.convert_tokens_to_ids(CHID_MARKER), tokenizer.mask_token_id
    if marker == tokenizer.unk_token_id:
        raise DataError(getattr(tokenizer, "vocab_file", "vocabulary"), f"has no {CHID_MARKER} token for the blank")
    out = FeatureBuilder(RAGGED_COLUMNS, PLAIN_COLUMNS)
    for first in tqdm(range(0, len(rows), CHUNK), desc="CHID features", disable=None, leave=False):
        chunk = rows[first : first + CHUNK]
        pieces, layout = [], []
        for row in chunk:
            for passage in row.passages:
                for old, new in CHID_PUNCTUATION:
                    passage = passage.replace(old, new)
                parts = CHID_TAG.split(passage)
                layout.append((len(pieces), len(parts)))
                pieces.extend(parts)
        encoded = [ids for ids, _ in encoder.encode(pieces)]
        candidate_ids = encoder.encode([c for row in chunk for c in row.candidates])
        passage_index, candidate_index = 0, 0
        for r, row in enumerate(chunk):
            idioms = [ids for ids, _ in candidate_ids[candidate_index : candidate_index + len(row.candidates)]]
            candidate_index += len(row.candidates)
            # An idiom longer than 4 tokens shortens the context (for all candidates alike, as they share
            # it) rather than failing the run: no sequence exceeds max_seq_length. Only an idiom that leaves
            # no context token at all is an error.
            longest = max(range(len(idioms)), key=lambda k: len(idioms[k]))
            budget = max_seq_length - 4 - len(idioms[longest])
            if budget < 1:
                raise DataError(
                    path,
                    f"candidate {row.candidates[longest]!r}: its {len(idioms[longest])} tokens "
                    f"leave no room for the context at max_seq_length {max_seq_length}",
                    line=row.line,
                    field="candidates",
                )
            blank = 0
            for _ in row.passages:
                start, count = layout[passage_index]
                passage_index += 1
                tokens = []  # token ids, with -1 standing for a blank
                for k in range(count):
                    if k:
                        tokens.append(-1)
                    tokens.extend(encoded[start + k])
                for position in [p for p, t in enumerate(tokens) if t == -1]:
                    left_n = min(budget // 2, position)
                    right_n = min(budget - left_n, len(tokens) - position - 1)
                    left_n = min(budget - right_n, position)
                    left = _masked(tokens[position - left_n : position], mask)[-left_n:] if left_n else []
                    right = _masked(tokens[position + 1 : position + 1 + right_n], mask)[:right_n]
                    for idiom in idioms:
                        out.add(input_ids=[cls] + idiom + [sep] + left + [marker] + right + [sep])
                    out.add(labels=-1 if row.labels is None else row.labels[blank], row=first + r, tag=row.tags[blank])
                    blank += 1
        out.flush()
    return out.build(group=CHID_CANDIDATES)


def _masked(tokens, mask):
    return [m for t in tokens for m in ([mask] * 4 if t == -1 else [t])]


def chid_assign(logits):
    """Best-first assignment of candidates to the blanks of one passage group: logits [blanks, candidates]
    -> the candidate index per blank, each candidate used at most once while any is left."""
    blanks, candidates = logits.shape
    order = np.argsort(-logits, axis=None, kind="stable")
    chosen, used = [-1] * blanks, set()
    for flat in order:
        b, c = divmod(int(flat), candidates)
        if chosen[b] == -1 and c not in used:
            chosen[b] = c
            used.add(c)
    for b in range(blanks):  # more blanks than candidates: fall back to the best candidate
        if chosen[b] == -1:
            chosen[b] = int(np.argmax(logits[b]))
    return chosen


def read(task, split, data_dir):
    """The rows of a split's passages (train, dev: with the answers of their *_answer.json)."""
    return read_chid(split_files(task, split, data_dir), not split.startswith("test"))


def expected_answers(task, examples):
    """Keyed by blank tag; choices: the number of candidates of the blank's row."""
    return {tag: (tag, len(row.candidates)) for row in examples for tag in row.tags}


def answer_problem(task, answer, choices):
    return index_problem(answer, choices, "candidates")


def from_huggingface(rows, split, paths):
    """HuggingFace clue/chid rows as the official files: the passages as JSON lines, and (train, dev) the
    blank tag -> candidate index map."""
    answers = {}
    with atomic_write(paths[0]) as f:
        for r in rows:
            tags = [t for p in r["content"] for t in CHID_TAG.findall(p)]
            answers.update(zip(tags, r["answers"]["candidate_id"]))
            f.write(json.dumps({"candidates": r["candidates"], "content": r["content"]}, ensure_ascii=False) + "\n")
    if len(paths) > 1:
        write_json(paths[1], answers, indent=2)
