"""The best dev result per task of a grid run: spec §10's two tables, plus CSV and Markdown.

    python -m cluebench.extract MODEL [--output_root ROOT]      (what extract_result.sh runs)

Each job's result comes from its results record; where a record is missing (a log written by the
upstream scripts), from the last `best_result:` line of its log, field 7. A killed job has neither.
Ties between jobs with the same best value go to the smaller learning rate, then the smaller batch
size, then the larger dropout: a fixed rule, not the order in which files are listed.
"""
import argparse
import csv
import os
import re
import sys

from . import grid, results
from .fileio import NotRegular, atomic_write

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


def warn(path, why, then="skipped"):
    print(f"extract: warning: {path}: {why}; {then}", file=sys.stderr)


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
    for task in grid.REPORT_ORDER:
        candidates = task_results(directory, task)
        if candidates:
            best[task] = min(candidates, key=lambda c: (-score(c[0]), float(c[1][0]), int(c[1][1]), -float(c[1][2])))
    return best


def tables(best):
    """The text upstream's extract_result.sh prints."""
    lines = ["\t".join(t.upper() for t in grid.REPORT_ORDER),
             "".join((best[t][0] if t in best else "0") + "\t" for t in grid.REPORT_ORDER),
             "=" * 68, "Best hyper-parameters list: ", "=" * 68, "TASK\tresult\t(lr, batch_size, dropout_p)"]
    for task in grid.REPORT_ORDER:
        if task in best:
            value, (lr, bs, dropout), _ = best[task]
            lines.append(f"{task.upper()}\t{value}\t({lr},{bs},{dropout})")
    return "\n".join(lines) + "\n"


def average(best):
    """Mean over the tasks found, CMRC2018 counting its EM (as the upstream README's AVG)."""
    return sum(score(best[t][0]) for t in best) / len(best) if best else None


def write_reports(directory, model, best):
    with atomic_write(os.path.join(directory, "results.csv")) as f:
        writer = csv.writer(f)
        writer.writerow(["task", "result", "learning_rate", "batch_size", "dropout", "source"])
        for task in grid.REPORT_ORDER:
            if task in best:
                value, hyper, source = best[task]
                writer.writerow([task, value, *hyper, source])
    avg = average(best)
    header = ["Model", "AVG"] + [t.upper() for t in grid.REPORT_ORDER]
    row = [grid.model_label(model), "-" if avg is None else f"{avg:.2f}"] + [best[t][0] if t in best else "-" for t in grid.REPORT_ORDER]
    with atomic_write(os.path.join(directory, "results.md")) as f:
        f.write("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n| " + " | ".join(row) + " |\n")
        if len(best) < len(grid.REPORT_ORDER):
            f.write(f"\nAVG over the {len(best)} of {len(grid.REPORT_ORDER)} tasks with results.\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--output_root", default=".")
    args = p.parse_args(argv)
    try:
        directory = grid.existing_run_dir(args.model, args.output_root)
    except grid.SetupError as e:
        print(f"extract: error: {e}", file=sys.stderr)
        return 2
    best = best_per_task(directory)
    print(tables(best), end="")
    write_reports(directory, args.model, best)
    print(f"(also written: {os.path.join(directory, 'results.csv')} and results.md)", file=sys.stderr)
    from . import report  # here, not at the top: report imports this module, and the tables come first

    print(f"(report: {report.write_report(directory, args.model, best)} and its figures)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
