"""The best-job rule, once: each job's result (its results record, else the last `best_result:` line of its
log, field 7; a killed job has neither) and the best per task. Ties between jobs with the same best value go
to the smaller learning rate, then the smaller batch size, then the larger dropout: a fixed rule, not the
order in which files are listed. extract, report, leaderboard, seeds and submission all read results here."""

import os
import re
import sys

from .. import results, tasks
from ..fileio import NotRegular

VALUE = results.RESULT  # NN.NN or EM/F1 in ASCII digits, as results.best_result_text writes them
# LR_BS_DROPOUT in ASCII digits: int() and float() would take full-width ones
NAME = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?_[1-9][0-9]*_([0-9]+\.?[0-9]*|\.[0-9]+)", re.ASCII)


def score(value):
    """The number a value is compared by: accuracy, or CMRC2018's EM."""
    return float(value.split("/")[0])


def check_value(value):
    """Why value is not a result (None if it is one): NN.NN or EM/F1, each between 0 and 100."""
    if not isinstance(value, str) or not VALUE.fullmatch(value):
        return f"{value!r} is not a result (NN.NN or EM/F1)"
    if any(float(part) > 100 for part in value.split("/")):
        return f"{value!r} is over 100%"
    return None


def hyperparameters(stem):
    """(lr, bs, dropout) texts of a LR_BS_DROPOUT file name, or None."""
    if not NAME.fullmatch(stem):
        return None
    parts = tuple(stem.split("_"))
    return parts if float(parts[0]) > 0 and 0 <= float(parts[2]) < 1 else None


def record_value(record):
    """(best value, None) of a complete record, or (value, why it is not a result)."""
    value = record["best"].get("value") if isinstance(record.get("best"), dict) else None
    why = results.record_problem(record)
    if why is None and check_value(value):
        why = f"best.value: {check_value(value)}"
    return value, why


def warn(path, why, then="skipped", tool="extract"):
    print(f"{tool}: warning: {path}: {why}; {then}", file=sys.stderr)


def job_files(directory, task):
    """[path] of the task's .json and .log files, by exact name (os.scandir, never a glob: a model or
    root named "m[1]" or "runs?" is a name, not a pattern); links and folders are not job files."""
    try:
        entries = list(os.scandir(os.path.join(directory, task)))
    except OSError:
        return []
    return sorted(e.path for e in entries if e.name.endswith((".json", ".log")) and e.is_file(follow_symlinks=False))


def task_results(directory, task):
    """[(value, (lr, bs, dropout), source)] for every finished job of the task: its record, else its log.
    A file that cannot be read as one (a bad name, a bad value) is skipped with a warning naming it."""
    found = []
    paths = job_files(directory, task)
    for stem in sorted({os.path.basename(p).rsplit(".", 1)[0] for p in paths}):
        base = os.path.join(directory, task, stem)
        parts = hyperparameters(stem)
        if parts is None:
            warn(next(p for p in sorted(paths) if p.startswith(base + ".")), "the name is not LR_BS_DROPOUT")
            continue
        record = results.read_record(base + ".json")
        if record is not None:  # a complete record is the job's result; a bad value in it is not replaced
            value, why = record_value(record)
            if why:
                warn(base + ".json", why)
            else:
                found.append((value, parts, "record"))
            continue
        has_log = os.path.exists(base + ".log")
        if os.path.exists(base + ".json"):  # there, but not a complete record of this schema
            warn(base + ".json", "not a complete results record", "reading its log" if has_log else "skipped")
        if not has_log:
            continue
        try:
            value = results.best_result_in_log(base + ".log")
        except OSError as e:
            warn(base + ".log", f"unreadable ({e.strerror})")
            continue
        except NotRegular as e:
            warn(base + ".log", f"is {e.what}, not a log")
            continue
        if value is None:  # a killed or running job: no result yet, nothing wrong
            continue
        why = check_value(value)
        if why:
            warn(base + ".log", f"best_result: {why}")
        else:
            found.append((value, parts, "log"))
    return found


def best_per_task(directory):
    best = {}
    for task in tasks.REPORT_ORDER:
        candidates = task_results(directory, task)
        if candidates:
            best[task] = min(candidates, key=lambda c: (-score(c[0]), float(c[1][0]), int(c[1][1]), -float(c[1][2])))
    return best


def average(best):
    """Mean over the tasks found, CMRC2018 counting its EM (as the upstream README's AVG)."""
    return sum(score(best[t][0]) for t in best) / len(best) if best else None
