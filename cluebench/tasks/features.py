"""The feature store: named numpy columns (ragged ones as values + row splits), built a chunk of
examples at a time, and cached on disk under a key made of what decides them: the task's feature-code
version, split, the content of every file the split is read from, the tokenizer's settings and
vocabulary, max_seq_length and doc_stride. Hyper-parameters never enter the key, so a grid builds each
split once."""

import hashlib
import json
import os
import zipfile

import numpy as np

from .. import tasks
from ..fileio import file_digest, write_npz
from ..log import logger

CHUNK = 256  # examples tokenised at once: peak memory follows a chunk, not a split
KEY_LIMIT = 2**20  # the cache's __key__ member: a JSON document of a few hundred bytes


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
        return [values[splits[r] : splits[r + 1]] for r in range(first, first + self.group)]

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
                columns[name] = values[: n * self.group + 1]
                base = name[: -len(".splits")]
                columns[base + ".values"] = self.columns[base + ".values"][: values[n * self.group]]
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


def special_ids(tokenizer):
    return tokenizer.cls_token_id, tokenizer.sep_token_id


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
    return {
        "class": type(tokenizer).__name__,
        "vocab": _digest(vocab),
        "vocab_size": max((i for _, i in vocab), default=-1) + 1,
        "do_basic_tokenize": getattr(tokenizer, "do_basic_tokenize", None),
        **{name: getattr(basic, name, None) for name in ("do_lower_case", "strip_accents", "tokenize_chinese_chars")},
        "special_ids": {
            name: getattr(tokenizer, f"{name}_token_id", None) for name in ("cls", "sep", "pad", "unk", "mask")
        },
    }


def cache_key(task, split, paths, tokenizer, max_seq_length, doc_stride=None):
    """What decides the features, and nothing else (no learning rate, batch size, seed or num_proc).
    paths: every file the split is read from (C3's d- and m- files, CHID's passages and answers)."""
    return {
        "version": tasks.module(task).FEATURE_VERSION,
        "task": task,
        "split": split,
        "data": file_digest(paths),
        "tokenizer": tokenizer_settings(tokenizer),
        "max_seq_length": max_seq_length,
        "doc_stride": doc_stride,
    }


def cache_path(cache_dir, key):
    return os.path.join(cache_dir, f"{key['task']}-{key['split']}-{_digest(key)[:20]}.npz")


def _members(task):
    """The members of a cache this code wrote: the task module's FEATURE_COLUMNS (ragged ones as .values and
    .splits), its key and its group. A cache with any other member is rebuilt without reading that member."""
    names = {"__key__", "__group__"}
    for column in tasks.module(task).FEATURE_COLUMNS:
        names |= {column, column + ".values", column + ".splits"}
    return {name + ".npy" for name in names}


def _bad_ids(columns, vocab_size):
    """Why the token ids cannot be looked up (an id outside the embedding would crash the process), or None."""
    for name, size in (("input_ids", vocab_size), ("token_type_ids", 2)):  # the features' types are 0 and 1
        values = columns.get(name + ".values", columns.get(name))
        if values is not None and values.size and (values.min() < 0 or values.max() >= size):
            return f"{name} outside 0..{size - 1}"
    return None


def load_cached(path, key):
    """Features from a complete cache file for this key, else None (missing, partial, corrupt or altered).
    The cache folder may be shared: members are checked by name and size before any is read, and the token
    ids against the vocabulary after."""
    try:
        if not os.path.isfile(path) or os.path.islink(path):  # never a FIFO (open would hang) or a link
            return None if not os.path.lexists(path) else _stale(path, "not a regular file")
        with np.load(path, allow_pickle=False) as archive:  # plain arrays only: a cache can't run code
            members = {m.filename: m.file_size for m in archive.zip.infolist()}
            unexpected = sorted(set(members) - _members(key["task"]))
            if unexpected:
                return _stale(path, f"unexpected member {unexpected[0]}")
            if members.get("__key__.npy", KEY_LIMIT + 1) > KEY_LIMIT:
                return _stale(path, "no key, or an oversized one")
            if json.loads(str(archive["__key__"])) != key:
                return None
            group = int(archive["__group__"])
            columns = {name: archive[name] for name in archive.files if not name.startswith("__")}
        bad = _bad_ids(columns, key["tokenizer"].get("vocab_size", 0))
        return Features(columns, group) if bad is None else _stale(path, bad)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, StopIteration, zipfile.BadZipFile) as e:
        return _stale(path, f"{type(e).__name__}: {e}")


def _stale(path, why):
    logger.warning(f"feature cache {path} is unusable ({why}); rebuilding it")
    return None


def save_cached(path, key, features):
    write_npz(path, {"__key__": np.array(json.dumps(key)), "__group__": np.array(features.group), **features.columns})


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
