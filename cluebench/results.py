"""The results record: one JSON file per run, written by every training script and read by the
grid-search tools. This module is the only definition of its format.

A record is complete when its "status" is "complete"; a run that is killed never leaves one
(it is written once, atomically, at the end), so a record on disk means a finished run.
"""

import json
import math
import os
import re
import sys
import time

from .fileio import DataError, open_regular, read_regular, write_json

SCHEMA = "cluebench.results/1"
FILENAME = "clue_results.json"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the PaddleNLP logger colours its lines
# Accuracy (NN.NN) or CMRC2018's EM/F1 in ASCII digits: float() takes full-width or Arabic-Indic digits too,
# and such a value must not win a task.
RESULT = re.compile(r"[0-9]{1,3}(\.[0-9]+)?(/[0-9]{1,3}(\.[0-9]+)?)?", re.ASCII)


def best_result_text(metrics):
    """The value of the `best_result:` log line: accuracy as 'NN.NN', CMRC2018 as 'EM/F1'."""
    if "em" in metrics:
        return f"{metrics['em']:.2f}/{metrics['f1']:.2f}"
    return f"{metrics['acc']:.2f}"


def best_result_line(metrics):
    return f"best_result: {best_result_text(metrics)}"


LOG_LINE_LIMIT = 64 * 1024  # a best_result line is short: a longer line is read in pieces and skipped


def best_result_in_log(path):
    """The value of the last best_result line of a log (field 7, colours stripped), or None. The log may be
    in a folder others can write: a link or FIFO is refused (fileio.NotRegular), and no line is held whole
    past LOG_LINE_LIMIT bytes, however long it is."""
    value = None
    with open_regular(path) as f:
        while line := f.readline(LOG_LINE_LIMIT):
            if len(line) == LOG_LINE_LIMIT and not line.endswith(b"\n"):  # a piece of a longer line: skip it
                while (line := f.readline(LOG_LINE_LIMIT)) and not line.endswith(b"\n"):
                    pass
                continue
            fields = _ANSI.sub("", line.decode("utf-8", "replace")).split()
            if len(fields) >= 7 and fields[5] == "best_result:":
                value = fields[6]
    return value


def record_path(args):
    """--results_file if given, else <output_dir>/clue_results.json."""
    return getattr(args, "results_file", None) or os.path.join(args.output_dir, FILENAME)


def make_record(*, task, model, script, hyperparameters, best, history, wall_time_s, throughput, data, made_by=None):
    """Assemble a complete record.

    best: {"metrics": {"acc": 75.93} or {"em": .., "f1": ..}, "step": int, "epoch": int}
    history: list of dev evaluations, each {"step", "epoch", "metrics": {...}, "loss"}
    throughput: {"train_examples_per_s": .., "eval_examples_per_s": ..}
    data: counts, e.g. {"train_examples": .., "dev_examples": .., "dropped": {...}}
    made_by: train.provenance.provenance(...), what made the record
    """
    return {
        "schema": SCHEMA,
        "status": "complete",
        "task": task,
        "model": model,
        "script": script,
        "hyperparameters": hyperparameters,
        "best": dict(best, value=best_result_text(best["metrics"])),
        "history": history,
        "wall_time_s": round(wall_time_s, 3),
        "throughput": throughput,
        "data": data,
        "made_by": made_by,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _strict(value):
    """NaN and infinity (a loss that diverged) as null: the record stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_record(path, record):
    write_json(path, _strict(record), ensure_ascii=False, indent=2, allow_nan=False)


MAX_RECORD_BYTES = 64 << 20  # a record is a few KiB (its predictions a list of names): far more is not one


def _load(path):
    """The JSON at path, read bounded and without following a link (the run folder is shared), or None."""
    try:
        return json.loads(read_regular(path, MAX_RECORD_BYTES).decode("utf-8"))
    except (DataError, UnicodeDecodeError, ValueError, RecursionError):
        return None


def read_record(path):
    """The record at path if it is a complete one of this schema, else None."""
    record = _load(path)
    if not isinstance(record, dict) or record.get("schema") != SCHEMA or record.get("status") != "complete":
        return None
    return record


def is_number(value):
    """A JSON number that is finite; not a bool (JSON true is no score) and not a string."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metrics_problem(field, metrics):
    if not isinstance(metrics, dict):
        return f"{field}: not an object"
    bad = next((k for k, v in metrics.items() if not is_number(v)), None)
    return None if bad is None else f"{field}.{bad}: not a finite number"


def record_problem(record):
    """The first field of a complete record that the tools cannot use, said for a person ("best.value: ..."),
    or None. Every tool that reads records (extract, report, submission) checks it before using one.
    best.value is required (it is the result); any other field may be absent (a tool goes without it),
    but one that is there must have its type."""
    for key in ("task", "model", "script"):
        if key in record and not isinstance(record[key], str):
            return f"{key}: not a string"
    hyper = record.get("hyperparameters", {})
    if not isinstance(hyper, dict):
        return "hyperparameters: not an object"
    bad = next((k for k, v in hyper.items() if not (v is None or isinstance(v, (str, int, float)))), None)
    if bad is not None:
        return f"hyperparameters.{bad}: not a scalar"
    best = record.get("best")
    if not isinstance(best, dict):
        return "best: not an object"
    why = _metrics_problem("best.metrics", best.get("metrics", {}))
    if why:
        return why
    if "step" in best and not (is_number(best["step"]) and best["step"] >= 0):
        return "best.step: not a non-negative number"
    if "value" not in best:
        return "no best.value"
    if not isinstance(best["value"], str) or not RESULT.fullmatch(best["value"]):
        return f"best.value: {best.get('value')!r} is not a result (NN.NN or EM/F1)"
    history = record.get("history", [])
    if not isinstance(history, list):
        return "history: not a list"
    for i, h in enumerate(history):
        if not isinstance(h, dict) or not is_number(h.get("step")):
            return f"history[{i}].step: not a number"
        why = _metrics_problem(f"history[{i}].metrics", h.get("metrics", {}))
        if why:
            return why
    predictions = record.get("predictions", [])
    if not isinstance(predictions, list) or not all(isinstance(p, str) for p in predictions):
        return "predictions: not a list of strings"
    for key in ("data", "throughput"):
        if record.get(key) is not None and not isinstance(record[key], dict):
            return f"{key}: not an object"
    return None


if __name__ == "__main__":  # `python -m cluebench.results complete PATH`: exit 0 if PATH is a complete record
    if len(sys.argv) != 3 or sys.argv[1] != "complete":
        sys.exit("usage: python -m cluebench.results complete PATH")
    sys.exit(0 if read_record(sys.argv[2]) is not None else 1)
