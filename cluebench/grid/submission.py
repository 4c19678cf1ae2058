"""A CLUE leaderboard submission from a grid run: the test predictions of each task's best dev job, in one zip.

    python grid_search_tools/make_submission.py MODEL [--output_root ROOT] [--out FILE] [--strict] [--data_dir DIR]

The best job per task is extract_result.sh's (best_jobs.best_per_task: the same rule, the same code). Its
leaderboard files are looked for in its job folder RUN_DIR/TASK/LR_BS_DROPOUT/ first (a moved run folder
still works), else where its results record says. Written: RUN_DIR/submission/ (replaced as a whole),
RUN_DIR/submission.zip (flat, deterministic; --out elsewhere) and submission.md beside the zip: where each
file came from, its dev score, hyper-parameters and counts, and the tasks missing, with why.

Exit 0: written (a partial grid gives a partial zip; with no files at all, nothing is written); 1: --strict
and a task missing (nothing written), or the check of --data_dir failed; 2: a usage error.
"""

import json
import os
import shutil
import sys
import tempfile
import zipfile

from .. import results, tasks
from ..fileio import DataError, atomic_write, printable, read_regular
from . import best_jobs, scheduler, seeds

PROG = "make_submission"
FOLDER = "submission"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same bytes from the same files, on any day
HYPERPARAMETERS = (
    ("lr", ("learning_rate",)),
    ("batch", ("batch_size", "per_device_train_batch_size")),
    ("dropout", ("dropout",)),
    ("epochs", ("num_train_epochs",)),
    ("max_seq_length", ("max_seq_length",)),
)
COUNT_UNITS = ("examples", "questions", "blanks", "features")  # data counts as the scripts name them


def warn(message):
    print(f"{PROG}: warning: {message}", file=sys.stderr)


class Entry:
    """One leaderboard file of the submission and the job it came from."""

    def __init__(self, name, task, job, value, path, data, record_path, record):
        self.name, self.task, self.job, self.value = name, task, job, value
        self.path, self.data, self.record_path, self.record = path, data, record_path, record
        self.answers = count_answers(task, data)


def count_answers(task, data):
    """Answers in a prediction file (ids; CHID's blanks), for the summary only: None where the file cannot
    be read as one, which the checker then explains."""
    try:
        text = data.decode("utf-8")
        if tasks.module(task).PREDICTION_FORM == "object":  # one JSON object, id -> answer
            value = json.loads(text)
            return len(value) if isinstance(value, dict) else None
        return sum(1 for line in text.split("\n") if line.strip())  # JSON lines; "\n" only, as the checker
    except (ValueError, TypeError, RecursionError):
        return None


def inside(path, folder):
    """Whether path, its links resolved, lies in folder (its links resolved too)."""
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, root]) == root


def read_inside(path, folder):
    """(bytes, None) of a regular file that lies in folder after links, or (None, why not): a link, a FIFO
    or a device is refused, never read or waited on."""
    if not inside(path, folder):
        return None, f"lies outside its job folder {printable(folder)}"
    try:
        return read_regular(path, tasks.MAX_PREDICTION_BYTES), None
    except DataError as e:
        return None, str(e).rpartition(": ")[2]


def collect(directory):
    """(entries, missing) of a run folder: [Entry] in REPORT_ORDER, and [(task, why)] of the tasks left out."""
    best = best_jobs.best_per_task(directory)
    entries, missing = [], []
    for task in scheduler.REPORT_ORDER:
        if task not in best:
            missing.append((task, "no finished job"))
            continue
        value, hyper, source = best[task]
        job = "_".join(hyper)
        if source == "log":  # no record: nothing says where its predictions are or how it ran
            missing.append((task, f"best job {job} ({value}) is known only from a log, without a results record"))
            continue
        record_path = os.path.join(directory, task, job + ".json")
        record = results.read_record(record_path)
        problem = results.record_problem(record) if isinstance(record, dict) else "not a complete record"
        if problem:  # the record is the best job's, but nothing it says can be trusted
            warn(f"{printable(record_path)}: {problem}; {task} skipped")
            missing.append((task, f"best job {job}: its record: {problem}"))
            continue
        job_folder = os.path.join(directory, task, job)
        if not inside(job_folder, directory):  # a linked job folder: its files are someone else's
            warn(f"{printable(job_folder)}: lies outside the run folder {printable(directory)}; {task} skipped")
            missing.append((task, f"best job {job}: its folder lies outside the run folder"))
            continue
        listed = {os.path.basename(p): p for p in record.get("predictions") or []}
        spec = tasks.get(task)
        found, absent = [], []
        for split, name in spec.predictions.items():
            data = None
            for path in dict.fromkeys((os.path.join(job_folder, name), listed.get(name))):
                if path and os.path.lexists(path):
                    data, why = read_inside(path, job_folder)
                    if data is not None:
                        break
                    warn(f"{printable(path)}: {why}; not copied")
            if data is not None:
                found.append(Entry(name, task, job, value, path, data, record_path, record))
            elif split not in spec.optional_splits:  # an optional one absent: the data had no such test set
                absent.append(name)
        if not absent:
            entries += found
        elif not listed and not found:
            missing.append((task, f"best job {job} wrote no predictions (run without --do_predict?)"))
        else:
            missing.append(
                (
                    task,
                    f"best job {job}: {', '.join(absent)} neither in {os.path.join(directory, task, job)}"
                    f"/ nor where its record says",
                )
            )
    return entries, missing


def write_zip(path, entries):
    """A flat zip of the entries' files, by name; fixed dates and modes, sorted: the same files give the
    same bytes. Written under a temporary name, then renamed."""
    with atomic_write(path, "wb") as f, zipfile.ZipFile(f, "w") as archive:
        for entry in sorted(entries, key=lambda e: e.name):
            info = zipfile.ZipInfo(entry.name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entry.data)  # the bytes checked in collect, not the file read again


def replace_folder(directory, entries):
    """RUN_DIR/submission/ holding exactly the entries' files: built beside it, then swapped in, so no file
    of an earlier submission stays and a crash while building leaves the old folder whole."""
    target = os.path.join(directory, FOLDER)
    staging = tempfile.mkdtemp(prefix=f".{FOLDER}-", dir=directory)
    fresh, old = os.path.join(staging, "new"), os.path.join(staging, "old")
    try:
        os.mkdir(fresh)  # not mkdtemp's 0700: the folder is for colleagues too
        for entry in entries:
            with open(os.path.join(fresh, entry.name), "wb") as f:
                f.write(entry.data)
        moved = os.path.isdir(target)
        if moved:  # two renames: a folder cannot replace a folder in one
            os.replace(target, old)
        try:
            os.replace(fresh, target)
        except OSError:
            if moved:
                os.replace(old, target)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _hyper(record, keys):
    hp = record.get("hyperparameters") or {}
    return next((str(hp[k]) for k in keys if hp.get(k) is not None), "-")


def _count(record, split):
    """`N unit` of a split from the record's data counts (examples, questions, blanks or features)."""
    data = record.get("data") or {}
    return next((f"{data[f'{split}_{unit}']} {unit}" for unit in COUNT_UNITS if f"{split}_{unit}" in data), "-")


def summary(directory, zip_path, entries, missing):
    """submission.md: each file's job, record, dev score, hyper-parameters and counts; the missing tasks."""
    lines = [
        f"# CLUE submission of {os.path.basename(os.path.normpath(directory))}",
        "",
        f"`{zip_path}`: {len(entries)} files, each from its task's best dev job in `{directory}` "
        "(the choice of extract_result.sh).",
        "",
        *(
            [
                f"It uses the grid's best job of each task (seed {scheduler.GRID_SEED}), not its seed reruns "
                "(TASK/seeds/, seeds.md).",
                "",
            ]
            if seeds.has_reruns(directory)
            else []
        ),
        "| file | task | job | dev score | "
        + " | ".join(h for h, _ in HYPERPARAMETERS)
        + " | test ids | dev set | train set | record |",
        "|---" * (8 + len(HYPERPARAMETERS)) + "|",
    ]
    for e in entries:
        hyper = [_hyper(e.record, keys) for _, keys in HYPERPARAMETERS]
        answers = "?" if e.answers is None else str(e.answers)
        lines.append(
            f"| {e.name} | {e.task} | {e.job} | {e.value} | "
            + " | ".join(hyper)
            + f" | {answers} | {_count(e.record, 'dev')} | {_count(e.record, 'train')} | `{e.record_path}` |"
        )
    lines += ["", "## Missing tasks", ""]
    lines += [f"- {task}: {why}" for task, why in missing] or ["None: every CLUE task has its files."]
    return "\n".join(lines) + "\n"


def table(entries):
    rows = [("file", "task", "job", "dev", "ids")] + [
        (e.name, e.task, printable(e.job), printable(e.value), "?" if e.answers is None else str(e.answers))
        for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def print_missing(missing):
    if missing:
        print(f"missing {len(missing)} of {len(scheduler.REPORT_ORDER)} tasks:")
        for task, why in missing:
            print(f"  {task}: {printable(why)}")


def main(argv=None):
    p = scheduler.run_dir_parser(__doc__, prog=PROG)
    p.add_argument("--out", help="the zip to write (default RUN_DIR/submission.zip); submission.md goes beside it")
    p.add_argument("--strict", action="store_true", help="write nothing unless every CLUE task has its files")
    p.add_argument("--data_dir", help="the official test files (DATA_DIR/<task>_public/): check the zip against them")
    args = p.parse_args(argv)
    directory = scheduler.run_dir_of(args, PROG)
    if directory is None:
        return 2
    if args.data_dir and not os.path.isdir(args.data_dir):  # before anything is written
        print(f"{PROG}: error: --data_dir {args.data_dir}: no such folder", file=sys.stderr)
        return 2
    entries, missing = collect(directory)
    if entries:
        print(table(entries))
    if args.strict and missing:
        print_missing(missing)
        print(f"--strict: {len(missing)} tasks missing; nothing written")
        return 1
    if not entries:
        print_missing(missing)
        print("no task has prediction files; nothing written")
        return 0
    zip_path = os.path.abspath(args.out or os.path.join(directory, "submission.zip"))
    md_path = os.path.splitext(zip_path)[0] + ".md"
    try:
        write_zip(zip_path, entries)
        with atomic_write(md_path) as f:
            f.write(summary(directory, zip_path, entries, missing))
        folder = replace_folder(directory, entries)
    except (OSError, DataError) as e:  # a zip path that is a folder, a full disk: said in one line
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, DataError) else 1
    print(f"zip: {zip_path} ({len(entries)} files)")
    print(f"(also written: {md_path} and {folder}/)")
    print_missing(missing)
    if not args.data_dir:
        print(f"not checked; check it with: python grid_search_tools/check_submission.py {zip_path} --data_dir DIR")
        return 0
    from . import submission_check  # here: it reads the test files with the scripts' readers, which import Paddle

    sys.stdout.flush()
    return submission_check.main([zip_path, "--data_dir", args.data_dir] + ["--strict"] * args.strict)


if __name__ == "__main__":
    sys.exit(main())
