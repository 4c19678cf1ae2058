"""make_submission.py over cluebench/submission.py: the best job's leaderboard files of a fake grid run, in one zip.

The run folders are written here by hand: records by results.make_record, prediction files from the synthetic
test files' own ids (read raw, as test_check_submission does), so the zip must pass the real checker."""

import json
import os
import shutil
import sys
import zipfile

from cluebench import results, tasks
from cluebench.grid import scheduler as grid, submission, submission_check
from helpers import load_script, run_python
from test_check_submission import raw_test_answers

import pytest

BEST, WORSE = "2e-05_32_0.1", "3e-05_16_0.1"
# the synthetic data has no test1.0 of CHID or C3: their optional files are simply not there
ALL_NAMES = sorted(
    n
    for t in grid.REPORT_ORDER
    for s, n in tasks.get(t).predictions.items()
    if n not in ("chid10_predict.json", "c310_predict.json")
)


@pytest.fixture(scope="module")
def answers(synthetic_data):
    return raw_test_answers(synthetic_data)


def prediction_text(name, items, shift):
    """A valid leaderboard file over the test file's ids; `shift` changes every answer (another job's)."""
    task = submission_check.LEADERBOARD[name][0]
    if task == "cmrc2018":
        return json.dumps({i: f"答案{shift}" for i, _ in items}, ensure_ascii=False, indent=4) + "\n"
    if task == "chid":
        return json.dumps({tag: (k + shift) % n for k, (tag, n) in enumerate(items)}, indent=2) + "\n"
    labels = tasks.get(task).labels
    return "".join(
        json.dumps({"id": i, "label": (k + shift) % n if task == "c3" else labels[(k + shift) % len(labels)]}) + "\n"
        for k, (i, n) in enumerate(items)
    )


def add_job(run, task, job, value, answers, shift=0, names=None, folder=None, listed=True):
    """A finished job: its record (best dev `value`) and its prediction files in `folder` (default the job
    folder RUN_DIR/TASK/JOB/), listed in the record's "predictions" unless listed=False."""
    lr, bs, dropout = job.split("_")
    folder = folder or os.path.join(run, task, job)
    os.makedirs(folder, exist_ok=True)
    written = []
    for name in names if names is not None else tasks.get(task).predictions.values():
        if name in answers:
            written.append(os.path.join(folder, name))
            with open(written[-1], "w", encoding="utf-8") as f:
                f.write(prediction_text(name, answers[name], shift))
    metrics = {"em": value, "f1": value + 10} if task == "cmrc2018" else {"acc": value}
    record = results.make_record(
        task=task,
        model="m",
        script="run.py",
        best={"metrics": metrics, "step": 10, "epoch": 1},
        history=[],
        hyperparameters={
            "learning_rate": float(lr),
            "batch_size": int(bs),
            "dropout": float(dropout),
            "num_train_epochs": 3,
            "max_seq_length": 128,
        },
        wall_time_s=1.0,
        throughput={},
        data={"train_examples": 64, "dev_examples": 32},
    )
    record["predictions"] = written if listed else []
    results.write_record(os.path.join(run, task, job + ".json"), record)


def full_run(root, answers):
    """Every CLUE task's best job at BEST; TNEWS also has a worse job with other answers."""
    run = os.path.join(root, "m")
    for k, task in enumerate(grid.REPORT_ORDER):
        add_job(run, task, BEST, 50.0 + k, answers)
    add_job(run, "tnews", WORSE, 40.0, answers, shift=1)
    return run


def make(root, *flags):
    return submission.main(["m", "--output_root", str(root), *flags])


def zip_names(path):
    with zipfile.ZipFile(path) as z:
        return [i.filename for i in z.infolist()]


def zip_read(path, name):
    with zipfile.ZipFile(path) as z:
        return z.read(name)


def test_best_jobs_files_make_a_zip_that_passes_the_checker(tmp_path, answers, synthetic_data, capsys):
    run = full_run(tmp_path, answers)
    assert make(tmp_path) == 0
    out = capsys.readouterr().out
    zip_path = os.path.join(run, "submission.zip")
    assert zip_names(zip_path) == ALL_NAMES  # flat: no folder in any name; sorted
    for name in ALL_NAMES:  # byte for byte the best job's, never the worse TNEWS job's
        task = submission_check.LEADERBOARD[name][0]
        with open(os.path.join(run, task, BEST, name), "rb") as f:
            assert zip_read(zip_path, name) == f.read()
        with open(os.path.join(run, "submission", name), "rb") as f:
            assert f.read() == zip_read(zip_path, name)
    with open(os.path.join(run, "tnews", WORSE, "tnews11_predict.json"), "rb") as f:
        assert zip_read(zip_path, "tnews11_predict.json") != f.read()
    assert sorted(os.listdir(os.path.join(run, "submission"))) == ALL_NAMES
    assert sorted(os.listdir(run)) == sorted(
        list(grid.REPORT_ORDER) + ["submission", "submission.md", "submission.zip"]
    )  # no staging left
    assert submission_check.main([zip_path, "--data_dir", synthetic_data]) == 0

    lines = out.splitlines()
    assert lines[0].split() == ["file", "task", "job", "dev", "ids"]
    assert lines[2].split() == ["tnews11_predict.json", "tnews", BEST, "51.00", "24"]
    assert lines[1 + len(ALL_NAMES)] == f"zip: {zip_path} ({len(ALL_NAMES)} files)"
    assert "missing" not in out
    assert lines[-1] == (
        f"not checked; check it with: python grid_search_tools/check_submission.py {zip_path} --data_dir DIR"
    )


def test_submission_md_says_where_each_file_came_from(tmp_path, answers):
    run = full_run(tmp_path, answers)
    assert make(tmp_path) == 0
    with open(os.path.join(run, "submission.md"), encoding="utf-8") as f:
        md = f.read().splitlines()
    record = os.path.join(run, "tnews", BEST + ".json")
    header = (
        "| file | task | job | dev score | lr | batch | dropout | epochs | max_seq_length | test ids | dev set "
        "| train set | record |"
    )
    assert md[md.index(header) + 1] == "|---" * 13 + "|"
    # TNEWS: task 2 of REPORT_ORDER, so 51.00; 24 test ids; the counts of its record
    assert (
        f"| tnews11_predict.json | tnews | {BEST} | 51.00 | 2e-05 | 32 | 0.1 | 3 | 128 | 24 | 32 examples "
        f"| 64 examples | `{record}` |"
    ) in md
    n_cmrc = len(answers["cmrc2018_predict.json"])
    assert any(
        line.startswith(f"| cmrc2018_predict.json | cmrc2018 | {BEST} | 57.00/67.00 |")
        and f"| {n_cmrc} | 32 examples |" in line
        for line in md
    )
    assert md[-1] == "None: every CLUE task has its files."


def test_missing_tasks_are_listed_with_why(tmp_path, answers, synthetic_data, capsys):
    run = os.path.join(tmp_path, "m")
    add_job(run, "tnews", BEST, 51.0, answers)
    add_job(run, "afqmc", BEST, 60.0, answers, names=[])  # run without --do_predict
    add_job(run, "c3", BEST, 60.0, answers, names=[])
    add_job(run, "c3", WORSE, 50.0, answers)  # a worse job's files are never taken instead
    os.makedirs(os.path.join(run, "csl"))
    with open(os.path.join(run, "csl", BEST + ".log"), "w") as f:  # an upstream log: no record
        f.write("[2024-05-01 10:00:00,000] [    INFO] - best_result: 70.00\n")
    add_job(run, "cluewsc2020", BEST, 60.0, answers, names=["cluewsc10_predict.json"])  # the 1.1 file absent
    assert make(tmp_path, "--data_dir", synthetic_data) == 0  # a partial zip still passes (not --strict)
    out = capsys.readouterr().out
    assert zip_names(os.path.join(run, "submission.zip")) == ["tnews10_predict.json", "tnews11_predict.json"]
    reasons = {
        "afqmc": f"best job {BEST} wrote no predictions (run without --do_predict?)",
        "iflytek": "no finished job",
        "cmnli": "no finished job",
        "ocnli": "no finished job",
        "cluewsc2020": f"best job {BEST}: cluewsc11_predict.json neither in {run}/cluewsc2020/{BEST}/ nor where "
        "its record says",
        "csl": f"best job {BEST} (70.00) is known only from a log, without a results record",
        "cmrc2018": "no finished job",
        "chid": "no finished job",
        "c3": f"best job {BEST} wrote no predictions (run without --do_predict?)",
    }
    listed = [f"  {task}: {reasons[task]}" for task in grid.REPORT_ORDER if task in reasons]
    assert "missing 9 of 10 tasks:\n" + "\n".join(listed) + "\n" in out
    with open(os.path.join(run, "submission.md"), encoding="utf-8") as f:
        md = f.read()
    assert md.endswith("## Missing tasks\n\n" + "".join(f"- {line.strip()}\n" for line in listed))
    assert "OK  tnews11_predict.json  24 ids" in out and "MISSING afqmc_predict.json" in out  # the checker's lines
    assert out.splitlines()[-1] == "2 files OK, 0 failed"


def test_strict_writes_nothing_when_a_task_is_missing(tmp_path, answers, capsys):
    run = full_run(tmp_path, answers)
    shutil.rmtree(os.path.join(run, "chid"))
    before = sorted(os.listdir(run))
    assert make(tmp_path, "--strict") == 1
    out = capsys.readouterr().out
    assert out.endswith("missing 1 of 10 tasks:\n  chid: no finished job\n--strict: 1 tasks missing; nothing written\n")
    assert sorted(os.listdir(run)) == before


def test_a_second_run_replaces_the_whole_folder(tmp_path, answers):
    run = full_run(tmp_path, answers)
    os.makedirs(os.path.join(run, "submission"))
    with open(os.path.join(run, "submission", "ocnli_predict.json"), "w") as f:  # a stale, misnamed file
        f.write("old\n")
    assert make(tmp_path) == 0
    assert sorted(os.listdir(os.path.join(run, "submission"))) == ALL_NAMES
    shutil.rmtree(os.path.join(run, "afqmc"))  # the next run lacks AFQMC: its old file must go too
    assert make(tmp_path) == 0
    expected = [n for n in ALL_NAMES if n != "afqmc_predict.json"]
    assert sorted(os.listdir(os.path.join(run, "submission"))) == expected
    assert zip_names(os.path.join(run, "submission.zip")) == expected


def test_a_moved_run_folder_and_a_record_only_path(tmp_path, answers, capsys):
    """Record paths gone stale (the folder moved): the job folder serves. A record's path outside its job
    folder is refused (it could name any file of the machine): that task is missing."""
    full_run(tmp_path / "before", answers)
    elsewhere = tmp_path / "before" / "models"
    add_job(str(tmp_path / "before" / "m"), "csl", "1e-05_16_0.1", 99.0, answers, shift=1, folder=str(elsewhere))
    shutil.move(str(tmp_path / "before" / "m"), str(tmp_path / "m"))
    run = os.path.join(tmp_path, "m")
    assert make(tmp_path) == 0
    zip_path = os.path.join(run, "submission.zip")
    assert zip_names(zip_path) == [n for n in ALL_NAMES if n != "csl_predict.json"]
    with open(os.path.join(run, "tnews", BEST, "tnews11_predict.json"), "rb") as f:
        assert zip_read(zip_path, "tnews11_predict.json") == f.read()
    assert "csl_predict.json: lies outside its job folder" in capsys.readouterr().err


def test_the_zip_is_the_same_bytes_every_time(tmp_path, answers):
    run = full_run(tmp_path, answers)
    zip_path = os.path.join(run, "submission.zip")
    assert make(tmp_path) == 0
    with open(zip_path, "rb") as f:
        first = f.read()
    for root, _, names in os.walk(run):  # other times on every source file
        for name in names:
            os.utime(os.path.join(root, name), (1e9, 1e9))
    assert make(tmp_path, "--out", str(tmp_path / "again.zip")) == 0
    with open(tmp_path / "again.zip", "rb") as f:
        assert f.read() == first
    assert os.path.isfile(tmp_path / "again.md")


def test_usage_errors(tmp_path, capsys):
    assert make(tmp_path) == 2
    assert capsys.readouterr().err == (
        f"make_submission: error: no results folder {tmp_path}/m (for model 'm' under {tmp_path})\n"
    )
    os.makedirs(tmp_path / "m")
    assert make(tmp_path, "--data_dir", str(tmp_path / "nope")) == 2
    assert capsys.readouterr().err == f"make_submission: error: --data_dir {tmp_path}/nope: no such folder\n"
    assert submission.main(["", "--output_root", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "make_submission: error: '' names no model\n"


@pytest.mark.slow  # a subprocess run
def test_the_script(tmp_path, answers, synthetic_data):
    run = full_run(tmp_path, answers)
    proc = run_python(
        [
            "grid_search_tools/make_submission.py",
            "m",
            "--output_root",
            str(tmp_path),
            "--strict",
            "--data_dir",
            synthetic_data,
        ]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"zip: {run}/submission.zip ({len(ALL_NAMES)} files)" in proc.stdout
    assert proc.stdout.endswith(f"{len(ALL_NAMES)} files OK, 0 failed\n")


@pytest.mark.slow  # a subprocess run
def test_grid_search_ends_with_the_submission(tmp_path, answers, synthetic_data, monkeypatch, capfd):
    """A finished (partial) grid: the zip is made and checked, the status unchanged; a zip failing the check: 1."""
    run = os.path.join(tmp_path, "m")
    add_job(run, "tnews", BEST, 51.0, answers)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__ inside grid_search_tools/
    monkeypatch.setenv("PYTHON", sys.executable)  # main() sets it for the wrappers
    script = load_script("grid_search_tools/grid_search.py")
    argv = [
        "m",
        "--device",
        "cpu",
        "--output_root",
        str(tmp_path),
        "--tasks",
        "tnews",
        "--learning_rates",
        "2e-05",
        "--batch_sizes",
        "32",
        "--data_dir",
        synthetic_data,
    ]
    assert script.main(argv) == 0
    out, err = capfd.readouterr()
    assert out.endswith(f"TNEWS\t51.00\t({BEST.replace('_', ',')})\n")  # stdout still ends with extract's tables
    assert f"zip: {run}/submission.zip (2 files)\n" in err and "missing 9 of 10 tasks:\n" in err
    assert "2 files OK, 0 failed\n" in err
    with open(os.path.join(run, "tnews", BEST, "tnews11_predict.json"), "a") as f:
        f.write('{"id": 0, "label": "100"}\n')  # an id twice
    assert script.main(argv) == 1
    assert "1 files OK, 1 failed\n" in capfd.readouterr().err
