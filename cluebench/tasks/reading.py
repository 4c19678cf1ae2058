"""CMRC2018, C3 and CHID, split by concern, the way utils_qa.py sits beside run_qa.py:

    records   where a split's files are; checks of records that name the file, record and field
    store     the feature store: numpy columns, the builder, the on-disk cache and its key
    cmrc2018  reading, windowed features, answer decoding
    c3        reading, four-choice features
    chid      reading, cloze features, best-first decoding of a passage group
    download  HuggingFace's `clue` data set written once in the official layout

Everything is importable from here (`from cluebench import mrc; mrc.read_c3(...)`).
"""
from .. import tasks
from .c3 import C3_CHOICES, C3_FILLER, ChoiceExample, c3_features, read_c3, truncate_longest
from .chid import (CHID_BAD_TAG, CHID_CANDIDATES, CHID_MARKER, CHID_PUNCTUATION, CHID_TAG, ClozeRow, chid_assign, chid_features, read_chid)
from .cmrc2018 import QAExample, cmrc_answers, cmrc_features, read_cmrc
from .download import download
from .records import prediction_splits, read_json, split_files
from .features import (CHUNK, FeatureBuilder, Features, cache_key, cache_path, cached_features, default_cache_dir, file_digest, load_cached, save_cached, tokenizer_settings)

__all__ = ["C3_CHOICES", "C3_FILLER", "CHID_BAD_TAG", "CHID_CANDIDATES", "CHID_MARKER", "CHID_PUNCTUATION", "CHID_TAG",
           "CHUNK", "ChoiceExample", "ClozeRow", "FeatureBuilder", "Features", "QAExample",
           "c3_features", "cache_key", "cache_path", "cached_features", "chid_assign", "chid_features",
           "cmrc_answers", "cmrc_features", "default_cache_dir", "download", "file_digest", "load_cached",
           "load_examples", "prediction_splits", "read_c3", "read_chid", "read_cmrc", "read_json", "save_cached",
           "split_files", "tokenizer_settings", "truncate_longest"]


def load_examples(task, split, data_dir):
    """The examples of a split: CMRC2018 questions, C3 questions or CHID rows (the task module's read)."""
    return tasks.module(task).read(task, split, data_dir)
