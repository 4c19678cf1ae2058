"""Submissions as a boundary: run folders and records that point elsewhere, or have the wrong shape."""

import json
import os

from cluebench import fileio, results
from cluebench.grid import submission
from test_make_submission import (
    BEST,
    answers,  # noqa: F401 (a fixture)
    full_run,
    make,
    zip_names,
)

import pytest

TNEWS = "tnews11_predict.json"


def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("root:x:0:0\n")
    return str(path)


def record_of(run, task):
    return os.path.join(run, task, BEST + ".json")


def edit_record(run, task, **fields):
    path = record_of(run, task)
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    record.update(fields)
    results.write_record(path, record)


def test_a_record_naming_a_file_outside_is_refused(tmp_path, answers, capsys):
    run = full_run(tmp_path, answers)
    os.remove(os.path.join(run, "tnews", BEST, TNEWS))
    outside = os.path.join(str(tmp_path), TNEWS)
    with open(outside, "w") as f:
        f.write("stolen\n")
    edit_record(run, "tnews", predictions=[outside])
    assert make(tmp_path) == 0
    assert TNEWS not in zip_names(os.path.join(run, "submission.zip"))
    assert not os.path.exists(os.path.join(run, "submission", TNEWS))
    assert f"{outside}: lies outside its job folder" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_a_linked_or_fifo_prediction_file_is_refused(kind, tmp_path, answers, capsys):
    run = full_run(tmp_path, answers)
    path = os.path.join(run, "tnews", BEST, TNEWS)
    os.remove(path)
    if kind == "link":
        os.symlink(secret(tmp_path), path)
    else:
        os.mkfifo(path)  # read, it would block for ever
    assert make(tmp_path) == 0
    assert TNEWS not in zip_names(os.path.join(run, "submission.zip"))
    err = capsys.readouterr().err
    assert f"{path}: " in err and "not copied" in err


def test_a_link_inside_the_job_folder_is_refused_too(tmp_path, answers):
    """A link that stays inside the job's folder is harmless."""
    run = full_run(tmp_path, answers)
    folder = os.path.join(run, "tnews", BEST)
    os.rename(os.path.join(folder, TNEWS), os.path.join(folder, "real.json"))
    os.symlink("real.json", os.path.join(folder, TNEWS))
    assert make(tmp_path) == 0
    # O_NOFOLLOW refuses the last link even inside: documented choice, the file is missing
    assert TNEWS not in zip_names(os.path.join(run, "submission.zip"))


def test_a_job_folder_linked_elsewhere_is_refused(tmp_path, answers, capsys):
    run = full_run(tmp_path, answers)
    folder = os.path.join(run, "tnews", BEST)
    os.rename(folder, str(tmp_path / "elsewhere"))
    os.symlink(str(tmp_path / "elsewhere"), folder)
    assert make(tmp_path) == 0
    assert TNEWS not in zip_names(os.path.join(run, "submission.zip"))
    assert "lies outside the run folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "fields",
    [{"predictions": 42}, {"hyperparameters": "lr=2e-5"}, {"history": [1, "x"]}, {"predictions": [7]}, {"data": []}],
    ids=["predictions", "hyperparameters", "history", "prediction_entry", "data"],
)
def test_a_record_of_the_wrong_shape_is_skipped_with_a_warning(fields, tmp_path, answers, capsys):
    run = full_run(tmp_path, answers)
    edit_record(run, "tnews", **fields)
    assert make(tmp_path) == 0
    out, err = capsys.readouterr()
    assert f"{record_of(run, 'tnews')}: {next(iter(fields))[:11]}" in err and "Traceback" not in err
    # the next best TNEWS job stands in for the skipped one
    assert [line.split()[2] for line in out.splitlines() if line.startswith(TNEWS)] != [BEST]


def test_every_record_of_the_wrong_shape_writes_nothing(tmp_path, answers, capsys):
    run = full_run(tmp_path, answers)
    for task in os.listdir(run):
        folder = os.path.join(run, task)
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            if name.endswith(".json"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    record = json.load(f)
                results.write_record(os.path.join(folder, name), dict(record, predictions=42))
    assert make(tmp_path) == 0
    assert not os.path.exists(os.path.join(run, "submission.zip"))
    assert not os.path.exists(os.path.join(run, "submission"))


@pytest.mark.parametrize("name", ["m[1]", "m?", "m*"])
def test_model_and_root_names_with_glob_characters(name, tmp_path, answers):
    root = tmp_path / "out[x]*?"
    run = full_run(root, answers)
    os.rename(run, str(root / name))
    assert submission.main([name, "--output_root", str(root)]) == 0
    assert TNEWS in zip_names(os.path.join(str(root / name), "submission.zip"))


def test_names_are_printed_escaped():
    assert fileio.printable("a\nOK  x\x1b[0m") == "a\\nOK  x\\x1b[0m"
