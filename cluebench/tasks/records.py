"""Reading the official reading-comprehension files: where a split's files are, and checks of the
records that name the file, the record and the field of anything wrong; and how the task modules show a
predicted answer in check_submission's messages."""

import json
import os

from .. import fileio, tasks
from ..fileio import DataError, printable, task_folder


def split_files(task, split, data_dir):
    """The files of a split (the registry's names) under <data_dir>/<task>_public/ or <data_dir>/."""
    return [os.path.join(task_folder(data_dir, task), name) for name in tasks.get(task).files[split]]


def test_file(task, split, data_dir):
    """A reading task's test file (its split has one): the task modules' test_file."""
    return split_files(task, split, data_dir)[0]


def prediction_splits(task, data_dir):
    """[(split, file name)]: an optional test split only where its file exists."""
    spec = tasks.get(task)
    return [
        (split, name)
        for split, name in spec.predictions.items()
        if split not in spec.optional_splits or os.path.isfile(split_files(task, split, data_dir)[0])
    ]


def read_json(path):
    """fileio.read_json, with an empty file said as such rather than as truncated JSON."""
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise DataError(path, "empty file")
    return fileio.read_json(path)


_JSON_TYPES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def json_type(value):
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _fail(path, where, message, field=None, line=None):
    return DataError(path, f"{where}: {message}" if where else message, line=line, field=field)


def typed(value, kind, path, where, field, line=None):
    """value if it is of JSON type kind (dict, list, str, int or a tuple of them), else a DataError naming
    the record. true and false are never integers here."""
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    names = " or ".join(_JSON_TYPES[k] for k in (kind if isinstance(kind, tuple) else (kind,)))
    raise _fail(path, where, f"expected {names}, got {json_type(value)}", field, line)


def get_field(record, field, kind, path, where, line=None):
    """record[field] of JSON type kind (or "strings": a list of strings); a missing field or another type is a
    DataError naming the record."""
    if field not in record:
        raise _fail(path, where, "missing", field, line)
    if kind == "strings":
        return strings(record[field], path, where, field, line)
    return typed(record[field], kind, path, where, field, line)


def strings(value, path, where, field, line=None):
    """value if it is a list of strings, else a DataError naming the record."""
    if isinstance(value, list):
        bad = next((i for i, item in enumerate(value) if not isinstance(item, str)), None)
        if bad is None:
            return value
        raise _fail(path, where, f"expected a list of strings, item {bad} is {json_type(value[bad])}", field, line)
    raise _fail(path, where, f"expected a list of strings, got {json_type(value)}", field, line)


def unique(seen, key, where, path, field):
    """Remember the record where key was seen; a second sighting is a DataError naming both."""
    text = str(key)  # 500 and "500" are one id to the leaderboard
    if text in seen:
        raise DataError(path, f"{where}: {field} {key!r} is used twice (first at {seen[text]})", field=field)
    seen[text] = where


def shown(value):
    """A value as JSON writes it, so that "1" and 1 look different; long ones cut."""
    text = printable(json.dumps(value, ensure_ascii=False))
    return text if len(text) <= 40 else text[:37] + "..."


def index_problem(answer, count, what):
    """Why a predicted answer is not an index into its count items (what: "choices", "candidates"), or None."""
    if type(answer) is int and 0 <= answer < count:  # type(): true and false are no index
        return None
    return f"label {shown(answer)} is not an index into its {count} {what} (0 to {count - 1})"
