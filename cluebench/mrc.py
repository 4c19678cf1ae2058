"""CMRC2018, C3 and CHID: official files, features, the on-disk feature cache, decoding.

Features are built with cluebench.fast_tokenizer (Rust WordPiece, PaddleNLP-exact) a chunk of
examples at a time, stored as compact numpy columns, and cached on disk under a key made of
what decides them: the task's feature-code version, split, the content of every file the split
is read from, the tokenizer's settings and vocabulary, max_seq_length and doc_stride.
Hyper-parameters never enter the key, so a grid builds each split once.
"""
import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
from paddlenlp.utils.log import logger
from tqdm.auto import tqdm

from . import fileio, tasks
from .fileio import DataError, atomic_write, file_digest, read_jsonl, task_folder, write_json

# Per task, bump when its reader or feature code changes what the features hold: its old caches are then
# ignored. tests/test_mrc_features.py pins a digest of each task's features to catch a forgotten bump.
FEATURE_VERSIONS = {"cmrc2018": 1, "c3": 1, "chid": 1}
CHUNK = 256  # examples tokenised at once: peak memory follows a chunk, not a split
C3_FILLER = "无效答案"  # pads C3 questions to four choices
CHID_TAG = re.compile(r"#idiom\d{6}#")
CHID_BAD_TAG = re.compile(r"#idiom[^#\s]{0,12}#?")  # what is left of a tag-like text once the real tags are out
CHID_MARKER = "[unused1]"  # stands for the blank; must be one token of the vocabulary
CHID_CANDIDATES = tasks.get("chid").choices  # per row; the model is built with as many choices
C3_CHOICES = tasks.get("c3").choices


def split_files(task, split, data_dir):
    """The files of a split (the registry's names) under <data_dir>/<task>_public/ or <data_dir>/."""
    return [os.path.join(task_folder(data_dir, task), name) for name in tasks.get(task).files[split]]


def prediction_splits(task, data_dir):
    """[(split, file name)]: an optional test split only where its file exists."""
    spec = tasks.get(task)
    return [(split, name) for split, name in spec.predictions.items()
            if split not in spec.optional_splits or os.path.isfile(split_files(task, split, data_dir)[0])]


def read_json(path):
    """fileio.read_json, with an empty file said as such rather than as truncated JSON."""
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise DataError(path, "empty file")
    return fileio.read_json(path)


# ---------------------------------------------------------------- examples
@dataclass
class QAExample:
    id: str
    context: str
    question: str
    answers: List[str]
    answer_start: Optional[int]  # of the first answer; None where the file gives -1 (no position)


@dataclass
class ChoiceExample:
    id: object
    context: str
    question: str
    choices: List[str]  # padded to four with C3_FILLER
    label: Optional[int]


@dataclass
class ClozeRow:
    candidates: List[str]
    passages: List[str]
    tags: List[str]  # blank tags in order of appearance
    labels: Optional[List[int]]  # candidate index per blank
    line: Optional[int] = None  # in the file, for errors found while building features


# ---------------------------------------------------------------- checking records
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", type(None): "null"}


def _json_type(value):
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _fail(path, where, message, field=None, line=None):
    return DataError(path, f"{where}: {message}" if where else message, line=line, field=field)


def _typed(value, kind, path, where, field, line=None):
    """value if it is of JSON type kind (dict, list, str, int or a tuple of them), else a DataError naming
    the record. true and false are never integers here."""
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    names = " or ".join(_JSON_TYPES[k] for k in (kind if isinstance(kind, tuple) else (kind,)))
    raise _fail(path, where, f"expected {names}, got {_json_type(value)}", field, line)


def _get(record, field, kind, path, where, line=None):
    """record[field] of JSON type kind (or "strings": a list of strings); a missing field or another type is a
    DataError naming the record."""
    if field not in record:
        raise _fail(path, where, "missing", field, line)
    if kind == "strings":
        return _strings(record[field], path, where, field, line)
    return _typed(record[field], kind, path, where, field, line)


def _strings(value, path, where, field, line=None):
    """value if it is a list of strings, else a DataError naming the record."""
    if isinstance(value, list):
        bad = next((i for i, item in enumerate(value) if not isinstance(item, str)), None)
        if bad is None:
            return value
        raise _fail(path, where, f"expected a list of strings, item {bad} is {_json_type(value[bad])}", field, line)
    raise _fail(path, where, f"expected a list of strings, got {_json_type(value)}", field, line)


def _unique(seen, key, where, path, field):
    """Remember the record where key was seen; a second sighting is a DataError naming both."""
    text = str(key)  # 500 and "500" are one id to the leaderboard
    if text in seen:
        raise DataError(path, f"{where}: {field} {key!r} is used twice (first at {seen[text]})", field=field)
    seen[text] = where


def read_cmrc(path, check_starts, labelled=False):
    """SQuAD-style CMRC2018 questions. labelled (train, dev): each question has its gold answers;
    check_starts (train, so labelled too): the first answer sits at its answer_start. Question ids are unique."""
    labelled = labelled or check_starts
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(path, "expected SQuAD-style JSON {'data': [{'paragraphs': ...}]}", field="data")
    examples, seen = [], {}
    for a, article in enumerate(data["data"]):
        article = _typed(article, dict, path, f"article {a}", "data")
        for p, paragraph in enumerate(_get(article, "paragraphs", list, path, f"article {a}")):
            where = f"article {a}, paragraph {p}"
            paragraph = _typed(paragraph, dict, path, where, "paragraphs")
            context = _get(paragraph, "context", str, path, where)
            for q, qa in enumerate(_get(paragraph, "qas", list, path, where)):
                where = f"article {a}, paragraph {p}, question {q}"
                qa = _typed(qa, dict, path, where, "qas")
                qid = _get(qa, "id", str, path, where)
                _unique(seen, qid, where, path, "id")
                question = _get(qa, "question", str, path, where)
                answers, start = [], None
                if labelled:
                    golds = _get(qa, "answers", list, path, where)
                    if not golds:
                        raise DataError(path, f"question {qid}: no answer", field="answers")
                    for k, gold in enumerate(golds):
                        answers.append(_get(_typed(gold, dict, path, f"question {qid}, answer {k}", "answers"),
                                            "text", str, path, f"question {qid}, answer {k}"))
                        if not answers[-1].strip():
                            raise DataError(path, f"question {qid}, answer {k}: empty text", field="answers")
                    first, text = golds[0], answers[0]
                    if check_starts and _get(first, "answer_start", int, path, f"question {qid}, answer 0") != -1:
                        start = first["answer_start"]
                        if start < 0:  # -1 alone means "no position"; a slice would count from the end
                            raise DataError(path, f"question {qid}: answer_start {start} (only -1 may be negative)",
                                            field="answers")
                        if context[start:start + len(text)] != text:
                            raise DataError(path, f"question {qid}: answer {text!r} is not at answer_start {start} "
                                                  f"(found {context[start:start + len(text)]!r})", field="answers")
                examples.append(QAExample(qid, context, question.strip(), answers, start))
    if not examples:
        raise DataError(path, "no questions found (expected SQuAD-style {'data': [{'paragraphs': ...}]})")
    return examples


def read_c3(paths, labelled):
    """C3 questions: [turns, [{question, choice, answer | id}], document id] records (test files leave the
    document id out). Test questions carry their own id, unique within the file."""
    examples = []
    for path in paths:
        documents, seen = read_json(path), {}
        if not isinstance(documents, list):
            raise DataError(path, f"expected a list of [turns, questions, document id] records, got "
                                  f"{_json_type(documents)}")
        for d, record in enumerate(documents):
            if not isinstance(record, list) or len(record) not in (2, 3):
                shape = f"a list of {len(record)}" if isinstance(record, list) else _json_type(record)
                raise DataError(path, f"document {d}: expected [turns, questions, document id], got {shape}")
            context = "\n".join(_strings(record[0], path, f"document {d}", "turns")).lower()
            for q, item in enumerate(_typed(record[1], list, path, f"document {d}", "questions")):
                where = f"document {d}, question {q}"
                item = _typed(item, dict, path, where, "questions")
                question = _get(item, "question", str, path, where)
                choices = [c.lower() for c in _get(item, "choice", "strings", path, where)]
                if not 1 <= len(choices) <= C3_CHOICES:  # the model scores four; fewer are padded with C3_FILLER
                    raise DataError(path, f"{where}: expected 1 to {C3_CHOICES} choices, got {len(choices)}",
                                    field="choice")
                label = None
                if labelled:
                    answer = _get(item, "answer", str, path, where).lower()
                    if answer not in choices:
                        raise DataError(path, f"{where}: answer {answer!r} is not among the choices {choices}",
                                        field="answer")
                    label = choices.index(answer)  # the first, where a choice repeats (real dev has some)
                    question_id = item.get("id", f"{os.path.basename(path)}:{d}:{q}")  # never written out
                else:  # predictions are keyed by it
                    question_id = _get(item, "id", (int, str), path, where)
                    _unique(seen, question_id, where, path, "id")
                examples.append(ChoiceExample(question_id, context, question.lower(),
                                              choices + [C3_FILLER] * (C3_CHOICES - len(choices)), label))
    if not examples:
        others = ", ".join(os.path.basename(p) for p in paths[1:])
        raise DataError(paths[0], "no questions found" + (f" (nor in {others})" if others else ""))
    return examples


def read_chid(paths, labelled):
    """CHID rows: JSON lines of {candidates: 10 idioms, content: [passages]}, answers from the *_answer.json
    tag map. Blank tags are unique within the split (predictions are keyed by them)."""
    answers = read_json(paths[1]) if labelled else {}
    if not isinstance(answers, dict):
        raise DataError(paths[1], f"expected an object of blank tag -> candidate index, got {_json_type(answers)}")
    rows, seen = [], {}
    for line, record in read_jsonl(paths[0]):
        candidates = _get(record, "candidates", "strings", paths[0], "", line)
        if len(candidates) != CHID_CANDIDATES:
            raise DataError(paths[0], f"expected {CHID_CANDIDATES} candidates, got {len(candidates)}", line=line,
                            field="candidates")
        if not all(c.strip() for c in candidates):
            raise DataError(paths[0], "an empty candidate", line=line, field="candidates")
        passages = _get(record, "content", "strings", paths[0], "", line)
        for p in passages:  # a mistyped tag would be read as text, and its blank never answered
            bad = CHID_BAD_TAG.search(CHID_TAG.sub("", p))
            if bad:
                raise DataError(paths[0], f"{bad.group()!r} is not a blank tag (#idiom and six digits, then #)",
                                line=line, field="content")
        tags = [t for p in passages for t in CHID_TAG.findall(p)]
        for tag in tags:
            if tag in seen:
                raise DataError(paths[0], f"blank {tag} is used twice (first at line {seen[tag]})", line=line,
                                field="content")
            seen[tag] = line
        labels = None
        if labelled:
            labels = []
            for tag in tags:
                if tag not in answers:
                    raise DataError(paths[0], f"blank {tag} has no answer in {paths[1]}", line=line, field="content")
                if type(answers[tag]) is not int:  # no "3", no true/false
                    raise DataError(paths[1], f"blank {tag}: answer {answers[tag]!r} is not a candidate index (an "
                                              "integer)", field=tag)
                if not 0 <= answers[tag] < len(candidates):
                    raise DataError(paths[1], f"blank {tag}: answer {answers[tag]!r} is outside the "
                                              f"{len(candidates)} candidates", field=tag)
                labels.append(answers[tag])
        rows.append(ClozeRow(candidates, passages, tags, labels, line))
    if not seen:
        raise DataError(paths[0], "no blanks found (expected JSON lines of {candidates, content} with "
                                  "#idiomNNNNNN# tags in the content)")
    return rows


def load_examples(task, split, data_dir):
    paths = split_files(task, split, data_dir)
    labelled = not split.startswith("test")
    if task == "cmrc2018":
        return read_cmrc(paths[0], check_starts=split == "train", labelled=labelled)
    if task == "c3":
        return read_c3(paths, labelled)
    return read_chid(paths, labelled)


# ---------------------------------------------------------------- ragged feature columns
class Features:
    """Named numpy columns, one entry per feature. A ragged column (token sequences) is stored as
    values + row splits; a feature owns `group` consecutive rows of it (1, 4 or 10)."""

    def __init__(self, columns, group=1):
        self.columns, self.group = columns, group
        self.size = len(next(v for k, v in columns.items() if not k.endswith((".values", ".splits"))))

    def __len__(self):
        return self.size

    def rows(self, name, index):
        values, splits = self.columns[name + ".values"], self.columns[name + ".splits"]
        first = index * self.group
        return [values[splits[r]:splits[r + 1]] for r in range(first, first + self.group)]

    def lengths(self, name="input_ids"):
        splits = self.columns[name + ".splits"]
        return (splits[1:] - splits[:-1]).reshape(-1, self.group).max(1)

    def __getitem__(self, key):
        return self.columns[key]

    def head(self, n):
        """The first n features."""
        columns = {}
        for name, values in self.columns.items():
            if name.endswith(".splits"):
                columns[name] = values[:n * self.group + 1]
                base = name[:-len(".splits")]
                columns[base + ".values"] = self.columns[base + ".values"][:values[n * self.group]]
            elif not name.endswith(".values"):
                columns[name] = values[:n]
        return Features(columns, self.group)


class FeatureBuilder:
    """Collects features; flush() after each chunk turns its Python lists into compact arrays, so
    memory holds the split's arrays and one chunk of Python objects, never the split as lists."""

    def __init__(self, ragged, plain):
        self.dtypes = dict(ragged, **plain)
        self.ragged = set(ragged)
        self.pending = {name: [] for name in self.dtypes}
        self.done = {name: [] for name in self.dtypes}  # compact pieces: values, and row lengths if ragged
        self.lengths = {name: [] for name in ragged}

    def add(self, **values):
        for name, value in values.items():
            self.pending[name].append(value)

    def flush(self):
        for name, rows in self.pending.items():
            if not rows:
                continue
            if name in self.ragged:
                self.lengths[name].append(np.fromiter((len(r) for r in rows), np.int64, len(rows)))
                self.done[name].append(np.concatenate([np.asarray(r, self.dtypes[name]) for r in rows]))
            else:
                self.done[name].append(np.asarray(rows, dtype=self.dtypes[name]))
            self.pending[name] = []

    def build(self, group=1):
        self.flush()
        columns = {}
        for name, pieces in self.done.items():
            values = np.concatenate(pieces) if pieces else np.zeros(0, self.dtypes[name])
            if name in self.ragged:
                lengths = np.concatenate(self.lengths[name]) if pieces else np.zeros(0, np.int64)
                columns[name + ".splits"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
                columns[name + ".values"] = values
            else:
                columns[name] = values
        return Features(columns, group)


def _special_ids(tokenizer):
    return tokenizer.cls_token_id, tokenizer.sep_token_id


def cmrc_features(examples, encoder, max_seq_length, doc_stride, with_labels, path="CMRC2018"):
    """Windows of PaddleNLP's doc_stride meaning: the question whole, the context cut into windows of
    L = max_seq_length - len(question) - 3 tokens whose starts are min(L, doc_stride) apart."""
    cls, sep = _special_ids(encoder.tokenizer)
    out = FeatureBuilder({"input_ids": np.int32, "token_type_ids": np.int8, "offsets": np.int32},
                         {"start_positions": np.int32, "end_positions": np.int32, "example_index": np.int32})
    for first in tqdm(range(0, len(examples), CHUNK), desc="CMRC2018 features", disable=None, leave=False):
        chunk = examples[first:first + CHUNK]
        questions = encoder.encode([e.question for e in chunk])
        contexts = encoder.encode([e.context for e in chunk])
        for i, (example, (q_ids, _), (c_ids, c_offsets)) in enumerate(zip(chunk, questions, contexts)):
            room = max_seq_length - len(q_ids) - 3
            if room < 1:
                raise DataError(path, f"question {example.id}: its {len(q_ids)} tokens leave no room for the "
                                      f"context at max_seq_length {max_seq_length}", field="question")
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
                out.add(input_ids=ids, token_type_ids=types, offsets=np.asarray(offsets, np.int32).ravel(),
                        start_positions=s, end_positions=e, example_index=first + i)
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


def truncate_longest(lists, budget):
    """Pop the last item of the currently longest list until the total fits; ties go to the earlier list."""
    while sum(len(x) for x in lists) > budget:
        max(lists, key=len).pop()


def c3_features(examples, encoder, max_seq_length):
    """[CLS] context [SEP] question [SEP] choice [SEP] per choice; context and question are truncated
    once for the four choices together, as upstream (the most truncated version serves all four)."""
    cls, sep = _special_ids(encoder.tokenizer)
    out = FeatureBuilder({"input_ids": np.int32, "token_type_ids": np.int8}, {"labels": np.int64})
    for first in tqdm(range(0, len(examples), CHUNK), desc="C3 features", disable=None, leave=False):
        chunk = examples[first:first + CHUNK]
        texts = [t for e in chunk for t in [e.context, e.question] + e.choices]
        encoded = [ids for ids, _ in encoder.encode(texts)]
        for i, example in enumerate(chunk):
            context, question, *choices = [list(x) for x in encoded[i * 6:(i + 1) * 6]]
            for choice in choices:
                truncate_longest([context, question, choice], max_seq_length - 4)
            for choice in choices:
                out.add(input_ids=[cls] + context + [sep] + question + [sep] + choice + [sep],
                        token_type_ids=[0] * (len(context) + 2) + [1] * (len(question) + len(choice) + 2))
            out.add(labels=-1 if example.label is None else example.label)
        out.flush()
    return out.build(group=4)


CHID_PUNCTUATION = [("“", '"'), ("”", '"'), ("——", "--"), ("—", "-"), ("―", "-"), ("…", "..."),
                    ("‘", "'"), ("’", "'")]


def chid_features(rows, encoder, max_seq_length, path="CHID"):
    """One feature per blank: for each candidate, [CLS] idiom [SEP] left [unused1] right [SEP], where
    left/right are N = max_seq_length - 4 - (the row's longest idiom: 4 tokens as a rule) context tokens
    around the blank (half each side, shifted near the edges) and every other blank inside the window is
    four [MASK]s."""
    tokenizer = encoder.tokenizer
    cls, sep = _special_ids(tokenizer)
    marker, mask = tokenizer.convert_tokens_to_ids(CHID_MARKER), tokenizer.mask_token_id
    if marker == tokenizer.unk_token_id:
        raise DataError(getattr(tokenizer, "vocab_file", "vocabulary"), f"has no {CHID_MARKER} token for the blank")
    out = FeatureBuilder({"input_ids": np.int32}, {"labels": np.int64, "row": np.int32, "tag": str})
    for first in tqdm(range(0, len(rows), CHUNK), desc="CHID features", disable=None, leave=False):
        chunk = rows[first:first + CHUNK]
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
            idioms = [ids for ids, _ in candidate_ids[candidate_index:candidate_index + len(row.candidates)]]
            candidate_index += len(row.candidates)
            # An idiom longer than 4 tokens shortens the context (for all candidates alike, as they share
            # it) rather than failing the run: no sequence exceeds max_seq_length. Only an idiom that leaves
            # no context token at all is an error.
            longest = max(range(len(idioms)), key=lambda k: len(idioms[k]))
            budget = max_seq_length - 4 - len(idioms[longest])
            if budget < 1:
                raise DataError(path, f"candidate {row.candidates[longest]!r}: its {len(idioms[longest])} tokens "
                                      f"leave no room for the context at max_seq_length {max_seq_length}",
                                line=row.line, field="candidates")
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
                    left = _masked(tokens[position - left_n:position], mask)[-left_n:] if left_n else []
                    right = _masked(tokens[position + 1:position + 1 + right_n], mask)[:right_n]
                    for idiom in idioms:
                        out.add(input_ids=[cls] + idiom + [sep] + left + [marker] + right + [sep])
                    out.add(labels=-1 if row.labels is None else row.labels[blank], row=first + r,
                            tag=row.tags[blank])
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


# ---------------------------------------------------------------- cache
def default_cache_dir():
    return os.environ.get("CLUEBENCH_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "cluebench"))


def _digest(*parts):
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()


def tokenizer_settings(tokenizer):
    """What of the tokenizer decides the ids: its class, vocabulary, normalisation and special tokens."""
    basic = getattr(tokenizer, "basic_tokenizer", tokenizer)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return {"class": type(tokenizer).__name__, "vocab": _digest(vocab),
            "do_basic_tokenize": getattr(tokenizer, "do_basic_tokenize", None),
            **{name: getattr(basic, name, None) for name in ("do_lower_case", "strip_accents", "tokenize_chinese_chars")},
            "special_ids": {name: getattr(tokenizer, f"{name}_token_id", None)
                            for name in ("cls", "sep", "pad", "unk", "mask")}}


def cache_key(task, split, paths, tokenizer, max_seq_length, doc_stride=None):
    """What decides the features, and nothing else (no learning rate, batch size, seed or num_proc).
    paths: every file the split is read from (C3's d- and m- files, CHID's passages and answers)."""
    return {"version": FEATURE_VERSIONS[task], "task": task, "split": split, "data": file_digest(paths),
            "tokenizer": tokenizer_settings(tokenizer), "max_seq_length": max_seq_length, "doc_stride": doc_stride}


def cache_path(cache_dir, key):
    return os.path.join(cache_dir, f"{key['task']}-{key['split']}-{_digest(key)[:20]}.npz")


def load_cached(path, key):
    """Features from a complete cache file for this key, else None (missing, partial or corrupt)."""
    try:
        with np.load(path, allow_pickle=False) as archive:  # plain arrays only: a cache can't run code
            if json.loads(str(archive["__key__"])) != key:
                return None
            group = int(archive["__group__"])
            columns = {name: archive[name] for name in archive.files if not name.startswith("__")}
        return Features(columns, group)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, StopIteration, zipfile.BadZipFile) as e:
        logger.warning(f"feature cache {path} is unreadable ({type(e).__name__}: {e}); rebuilding it")
        return None


def save_cached(path, key, features):
    with atomic_write(path, "wb") as f:
        np.savez(f, __key__=np.array(json.dumps(key)), __group__=np.array(features.group), **features.columns)


def cached_features(key, build, cache_dir, overwrite=False):
    """Features for key from cache_dir, built (and cached atomically) when missing or unusable."""
    path = cache_path(cache_dir, key)
    if not overwrite:
        features = load_cached(path, key)
        if features is not None:
            logger.info(f"{key['task']} {key['split']}: {len(features)} features from cache {path}")
            return features
    features = build()
    save_cached(path, key, features)
    logger.info(f"{key['task']} {key['split']}: built {len(features)} features, cached in {path}")
    return features


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
                    best[example] = (score, examples[example].context[offsets[s][0]:offsets[e][1]])
    return {e.id: best[i][1] if i in best else "empty" for i, e in enumerate(examples)}


# ---------------------------------------------------------------- the download path
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
