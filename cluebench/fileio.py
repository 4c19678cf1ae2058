"""Reading CLUE files with errors that point at the line, and writing files atomically."""
import contextlib
import json
import os
import shutil
import tempfile


class DataError(ValueError):
    """Bad input data; the message names the file, the line (or record) and the field."""

    def __init__(self, path, message, line=None, field=None):
        where = f"{path}:{line}" if line is not None else str(path)
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


def read_jsonl(path):
    """Yield (line_number, record) from a JSON-lines file.

    Iterating the file splits on '\\n' only; str.splitlines() would also split on
    U+2028, which occurs inside real IFLYTEK sentences.
    """
    if not os.path.isfile(path):
        raise DataError(path, "file not found")
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(path, f"not valid JSON ({e.msg}, column {e.colno})", line=number) from None
            if not isinstance(record, dict):
                raise DataError(path, f"expected a JSON object, got {type(record).__name__}", line=number)
            yield number, record


def require(record, field, path, line):
    """record[field], or a DataError naming where it is missing."""
    if field not in record:
        raise DataError(path, "missing", line=line, field=field)
    return record[field]


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path, obj, **dump_options):
    """json.dump obj to path atomically, with a final newline."""
    with atomic_write(path) as f:
        json.dump(obj, f, **dump_options)
        f.write("\n")


def task_folder(data_dir, task):
    """Where a task's files are: DATA_DIR/<task>_public/ when DATA_DIR holds the official folders,
    else DATA_DIR itself (the task folder was given)."""
    folder = os.path.join(data_dir, f"{task}_public")
    return folder if os.path.isdir(folder) else data_dir


def atomic_save_pretrained(output_dir, *objects):
    """save_pretrained each object into a scratch folder, then rename file by file into output_dir.

    Each file appears whole or not at all; files that output_dir already holds
    for other reasons (predictions, the results record) are left alone.
    """
    os.makedirs(output_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".saving-", dir=output_dir)
    try:
        for obj in objects:
            obj.save_pretrained(scratch)
        for name in os.listdir(scratch):
            os.replace(os.path.join(scratch, name), os.path.join(output_dir, name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
