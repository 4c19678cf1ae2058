"""The names the three reading-comprehension scripts use, in one namespace (`from cluebench.tasks import
reading; reading.read_c3(...)`). What each task's data means is its own module (cmrc2018, c3, chid);
records and features hold what the three share; download writes HuggingFace's rows in the official layout.
"""

from .. import tasks
from .c3 import C3_CHOICES, C3_FILLER, ChoiceExample, c3_features, read_c3, truncate_longest
from .chid import (
    CHID_BAD_TAG,
    CHID_CANDIDATES,
    CHID_MARKER,
    CHID_PUNCTUATION,
    CHID_TAG,
    ClozeRow,
    chid_assign,
    chid_features,
    read_chid,
)
from .cmrc2018 import QAExample, cmrc_answers, cmrc_features, read_cmrc
from .download import download
from .features import (
    CHUNK,
    FeatureBuilder,
    Features,
    cache_key,
    cache_path,
    cached_features,
    default_cache_dir,
    file_digest,
    load_cached,
    save_cached,
    tokenizer_settings,
)
from .records import prediction_splits, read_json, split_files

__all__ = [
    "C3_CHOICES",
    "C3_FILLER",
    "CHID_BAD_TAG",
    "CHID_CANDIDATES",
    "CHID_MARKER",
    "CHID_PUNCTUATION",
    "CHID_TAG",
    "CHUNK",
    "ChoiceExample",
    "ClozeRow",
    "FeatureBuilder",
    "Features",
    "QAExample",
    "c3_features",
    "cache_key",
    "cache_path",
    "cached_features",
    "chid_assign",
    "chid_features",
    "cmrc_answers",
    "cmrc_features",
    "default_cache_dir",
    "download",
    "file_digest",
    "load_cached",
    "load_examples",
    "prediction_splits",
    "read_c3",
    "read_chid",
    "read_cmrc",
    "read_json",
    "save_cached",
    "split_files",
    "tokenizer_settings",
    "truncate_longest",
]


def load_examples(task, split, data_dir):
    """The examples of a split: CMRC2018 questions, C3 questions or CHID rows (the task module's read)."""
    return tasks.module(task).read(task, split, data_dir)
