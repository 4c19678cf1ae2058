"""Check a CLUE leaderboard submission (a zip, or a folder of files) against the official test files.

    python grid_search_tools/check_submission.py ZIP_OR_DIR --data_dir DIR [--strict]

Each file must carry a leaderboard name, parse, and answer every id of its test file exactly once with
a valid label. The test files are read by the project's own readers, so an id means here what it means
to the scripts that wrote the predictions. Exit 0: all good; 1: any failure; 2: a usage error.
"""

import argparse
import json
import os
import stat
import sys
import zipfile

from .. import tasks
from ..fileio import DataError, printable, read_regular
from ..tasks.records import shown

# leaderboard file name -> (task, test split); BUSTM (FewCLUE, no grid rows) has no CLUE leaderboard file
LEADERBOARD = {
    name: (t.name, split)
    for t in tasks.REGISTRY.values()
    if t.grid is not None
    for split, name in t.predictions.items()
}
SHOWN = 10  # problems printed per file; the rest are counted
MAX_FILE_BYTES = tasks.MAX_PREDICTION_BYTES
MAX_TOTAL_BYTES = 256 << 20  # all files together (the ten real ones: under 20 MB)
MAX_ENTRIES = 100  # the leaderboard has 10 files
MAX_DIGITS = 18  # an id or a label of more digits is no id (and Python refuses ints over 4,300 digits)


def _int(text):
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-')):,} digits")
    return int(text)


DECODER = json.JSONDecoder(parse_int=_int)


class UsageError(Exception):
    pass


def locate_test_file(task, split, data_dir):
    """(path, present) of a split's test file in DATA_DIR/<task>_public/. Never task_folder's fallback to
    DATA_DIR itself: there every task would find the same test.json."""
    folder = os.path.join(data_dir, f"{task}_public")
    if not os.path.isdir(folder):
        return os.path.join(folder, tasks.get(task).files[split][0]), False
    path = tasks.module(task).test_file(task, split, data_dir)
    return path, os.path.isfile(path)


def expected_answers(task, split, data_dir):
    """{str(id): (the id as the test file has it, choices)}, by the task module: 0 and "0" are one id to the
    leaderboard. choices: C3's number of answers to the question, CHID's number of candidates of the blank's row."""
    module = tasks.module(task)
    return module.expected_answers(task, module.read(task, split, data_dir))


def jsonl_items(text):
    """([(line, id, label)], problems) of JSON lines {"id": ..., "label": ...} (PREDICTION_FORM "lines").
    Split on "\\n" only: str.splitlines() would also split on U+2028."""
    items, problems = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = DECODER.decode(line)
        except json.JSONDecodeError as e:
            problems.append(f"line {number}: not valid JSON ({e.msg}, column {e.colno})")
            continue
        except (ValueError, RecursionError) as e:  # a huge integer; arrays nested thousands deep
            problems.append(f"line {number}: not usable JSON ({_json_trouble(e)})")
            continue
        if not isinstance(record, dict) or "id" not in record or "label" not in record:
            problems.append(f'line {number}: expected {{"id": ..., "label": ...}}, got {shown(record)}')
            continue
        items.append((number, record["id"], record["label"]))
    return items, problems


def object_items(text):
    """[(line, key, value)] of one JSON object (PREDICTION_FORM "object"), in file order. Parsed key by key rather than
    by json.loads, which keeps the last of two equal keys silently and knows no key's line."""
    decoder, skip = DECODER, json.decoder.WHITESPACE.match
    items, pos, line, counted = [], skip(text, 0).end(), 1, 0

    def expect(chars):
        if text[pos : pos + 1] not in chars:
            raise json.JSONDecodeError(f"Expecting {' or '.join(map(repr, chars))}", text, pos)

    expect(("{",))
    pos = skip(text, pos + 1).end()
    while text[pos : pos + 1] != "}" or items:
        expect(('"',))
        line, counted = line + text.count("\n", counted, pos), pos
        key, pos = json.decoder.scanstring(text, pos + 1)
        pos = skip(text, pos).end()
        expect((":",))
        value, pos = decoder.raw_decode(text, skip(text, pos + 1).end())
        items.append((line, key, value))
        pos = skip(text, pos).end()
        expect((",", "}"))
        if text[pos] == "}":
            break
        pos = skip(text, pos + 1).end()
    if skip(text, pos + 1).end() != len(text):
        raise json.JSONDecodeError("Extra data after the object", text, skip(text, pos + 1).end())
    return items


def _json_trouble(error):
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


def compare(task, items, expected, test_name):
    """Problems of [(line, id, answer)] against the test file's ids: each once, none extra, none missing."""
    module = tasks.module(task)
    word = module.PREDICTION_KEY
    problems, seen = [], {}
    for line, answer_id, answer in items:
        if type(answer_id) not in (int, str):
            problems.append(f"line {line}: {word} {shown(answer_id)} is not an integer or a string")
            continue
        key = str(answer_id)
        if key in seen:
            problems.append(f"line {line}: duplicate {word} {shown(answer_id)} (first on line {seen[key]})")
            continue
        seen[key] = line
        if key not in expected:
            problems.append(f"line {line}: {word} {shown(answer_id)} is not in {test_name}")
            continue
        reason = module.answer_problem(task, answer, expected[key][1])
        if reason:
            problems.append(f"line {line}: {word} {shown(answer_id)}: {reason}")
    missing = [original for key, (original, _) in expected.items() if key not in seen]
    if missing:
        first = ", ".join(shown(m) for m in missing[:5])
        problems.append(f"{len(missing)} of the {len(expected)} {word}s of {test_name} missing (first: {first})")
    return problems


def check_file(name, data, data_dir):
    """(number of test ids, problems) of one submitted file; the count is None where none could be read."""
    if name not in LEADERBOARD:
        # a hint by the task the name starts with (tnews_predict.json, cmrc_predict.json), not by spelling alone:
        # ocnli_predict.json is nearer to cmnli_predict.json
        stem = name.lower().split("_")[0].split(".")[0]
        close = [
            n
            for n, (task, _) in LEADERBOARD.items()
            if len(stem) >= 2 and (task.startswith(stem) or stem.startswith(task))
        ]
        return None, ["not a CLUE leaderboard file name" + (f" (did you mean {' or '.join(close)}?)" if close else "")]
    task, split = LEADERBOARD[name]
    path, present = locate_test_file(task, split, data_dir)
    test_name = os.path.relpath(path, data_dir)
    if not present:
        return None, [f"cannot check it: DATA_DIR has no {test_name}"]
    try:
        expected = expected_answers(task, split, data_dir)
    except DataError as e:
        return None, [f"cannot check it: the test file is unreadable ({e})"]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return None, [f"line {line}: not valid UTF-8 (byte 0x{data[e.start]:02x})"]
    if not text.strip():
        return None, ["empty file"]
    module = tasks.module(task)
    if module.PREDICTION_FORM == "object":
        try:
            items, problems = object_items(text), []
        except json.JSONDecodeError as e:
            return None, [
                f"line {e.lineno}: not valid JSON ({e.msg}, column {e.colno}); expected one object "
                f"{{{module.PREDICTION_ENTRY}}}"
            ]
        except (ValueError, RecursionError) as e:
            return None, [f"not usable JSON ({_json_trouble(e)})"]
    else:
        items, problems = jsonl_items(text)
    return len(expected), problems + compare(task, items, expected, test_name)


def read_submission(path):
    """[(name, bytes, problem)] of a zip or a folder, by name; problem is None or why the entry cannot count.
    The leaderboard wants the files at the top of the zip: a nested path is a problem. A zip that cannot be
    read at all is a BadSubmission."""
    try:
        info = os.stat(path)  # the argument may be a link (to a zip); FIFOs and devices are refused
    except OSError as e:
        raise UsageError(
            f"{printable(path)}: no such zip file or folder"
            if isinstance(e, FileNotFoundError)
            else f"{printable(path)}: {e.strerror}"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        entries = folder_entries(path)
    elif stat.S_ISREG(info.st_mode) and zipfile.is_zipfile(path):
        entries = zip_entries(path)
    else:
        raise UsageError(f"{printable(path)}: neither a zip file nor a folder")
    if len(entries) > MAX_ENTRIES:
        raise BadSubmission(f"over {MAX_ENTRIES} files; a submission has at most {len(LEADERBOARD)}")
    checked, seen = [], set()
    for name, data, problem in sorted(entries, key=lambda e: e[0]):
        if problem is None and "/" in name:
            problem = "a nested path; the leaderboard wants every file at the top of the zip"
        elif problem is None and name in seen:
            problem = "is in the zip twice"
        seen.add(name)
        checked.append((name, data, problem))
    return checked


class BadSubmission(Exception):
    """A zip that cannot be read at all (a corrupt directory, too many entries): one FAIL line."""


def folder_entries(path):
    """[(name, bytes or None, problem)] of a folder: regular files only, links and FIFOs named, not followed."""
    entries, total = [], 0
    for root, dirs, names in os.walk(path):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            relative = os.path.relpath(os.path.join(root, name), path).replace(os.sep, "/")
            try:
                data = read_regular(os.path.join(root, name), MAX_FILE_BYTES)
                entries.append((relative, data, None))
                total += len(data)
            except DataError as e:
                entries.append((relative, None, str(e).rpartition(": ")[2]))
            if len(entries) > MAX_ENTRIES:
                return entries
            _within_total(total)
    return entries


def _within_total(total):
    if total > MAX_TOTAL_BYTES:
        raise BadSubmission(f"its files hold over {MAX_TOTAL_BYTES:,} bytes, more than a whole submission")


def zip_entries(path):
    """[(name, bytes or None, problem)] of a zip: each member inflated in blocks up to MAX_FILE_BYTES."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ENTRIES:
                return infos
            _within_total(sum(info.file_size for info in infos))
            entries, total = [], 0
            for info in infos:  # the headers' sizes can lie: the bytes read are counted too
                data, problem = _member(archive, info)
                entries.append((info.filename, data, problem))
                total += len(data or b"")
                _within_total(total)
            return entries
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        # a corrupt central directory; a name flagged UTF-8 that is not (UnicodeDecodeError is a ValueError)
        raise BadSubmission(f"not a readable zip ({type(e).__name__}: {e})") from None


def _member(archive, info):
    """(bytes, None) or (None, problem) of one zip member."""
    if info.is_dir():
        return None, "a folder in the zip"
    if info.flag_bits & 0x1:
        return None, "encrypted; the leaderboard cannot read it"
    if info.file_size > MAX_FILE_BYTES:
        return None, f"inflates to {info.file_size:,} bytes, over the {MAX_FILE_BYTES:,} of any prediction file"
    try:
        with archive.open(info) as member:  # the header's size can lie: read no more than the limit
            data = member.read(MAX_FILE_BYTES + 1)
    except (zipfile.BadZipFile, OSError, NotImplementedError, ValueError, EOFError, RuntimeError) as e:
        return None, f"unreadable zip entry ({type(e).__name__}: {e})"
    if len(data) > MAX_FILE_BYTES:
        return None, f"inflates to over {MAX_FILE_BYTES:,} bytes, more than any prediction file"
    return data, None


def check(path, data_dir, strict=False, out=None):
    """Print one line per file (one per problem of a failed file) and per missing leaderboard file; returns
    the number of failed files."""
    out = out or sys.stdout  # looked up at the call: tests replace it
    if not os.path.isdir(data_dir):
        raise UsageError(f"--data_dir {data_dir}: no such folder")
    if not any(os.path.isdir(os.path.join(data_dir, f"{task}_public")) for task, _ in LEADERBOARD.values()):
        raise UsageError(f"--data_dir {data_dir}: holds no <task>_public/ folder (the official CLUE layout)")
    good = failures = 0
    submitted = set()
    try:
        entries = read_submission(path)
    except BadSubmission as e:
        print(f"FAIL {printable(path)}: {e}", file=out)
        return 1
    for name, data, problem in entries:
        count, problems = (None, [problem]) if problem else check_file(name, data, data_dir)
        submitted.add(name)
        if not problems:
            good += 1
            print(f"OK  {name}  {count} {tasks.module(LEADERBOARD[name][0]).PREDICTION_KEY}s", file=out)
            continue
        failures += 1
        if len(problems) > SHOWN:
            problems = problems[:SHOWN] + [f"... and {len(problems) - SHOWN} more problems"]
        for problem in problems:
            print(f"FAIL {printable(name)}: {printable(problem)}", file=out)
    for name, (task, split) in LEADERBOARD.items():
        if name in submitted:
            continue
        test_path, present = locate_test_file(task, split, data_dir)
        if split in tasks.get(task).optional_splits and not present:  # as the scripts, which then skip the split
            print(f"MISSING {name} (optional: DATA_DIR has no {os.path.relpath(test_path, data_dir)})", file=out)
        elif strict:
            print(f"FAIL {name}: missing from the submission (--strict)", file=out)
            failures += 1
        else:
            print(f"MISSING {name}", file=out)
    print(f"{good} files OK, {failures} failed", file=out)
    return failures


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="check_submission.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("submission", metavar="ZIP_OR_DIR", help="the submission: a zip file or a folder of files")
    p.add_argument("--data_dir", required=True, help="the official test files: DATA_DIR/<task>_public/")
    p.add_argument("--strict", action="store_true", help="a missing leaderboard file is a failure")
    try:
        args = p.parse_args(argv)
        return 1 if check(args.submission, args.data_dir, args.strict) else 0
    except SystemExit as e:  # argparse's usage errors, as a return value for in-process callers
        return e.code
    except UsageError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
