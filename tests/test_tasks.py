"""The task registry (cluebench.tasks) is the one home of the facts about a task: every consumer agrees
with it, it agrees with PaddleNLP's builders where class ids must stay compatible (that it needs no Paddle: tests/test_layers.py)."""

import ast
import os
import subprocess
import sys

from cluebench import synthetic, tasks
from cluebench.fileio import read_jsonl
from cluebench.grid import scheduler as grid
from cluebench.tasks import classification, reading as mrc
from helpers import ROOT, load_script, read_jsonl as read_lines

import pytest


@pytest.mark.parametrize("task", [t for t in tasks.CLASSIFICATION if tasks.get(t).download[0] == "clue"])
def test_clue_tasks_agree_with_paddlenlp(task):
    """Class ids and file names of the upstream scripts (PaddleNLP's `clue` builder)."""
    from paddlenlp.datasets.clue import Clue

    config = Clue.BUILDER_CONFIGS[task]
    assert classification.label_list(task) == config["labels"]
    spec = tasks.get(task)
    assert {s: (os.path.basename(config["splits"][s][0]),) for s in spec.files} == spec.files
    assert set(spec.download[1].values()) <= set(config["splits"])


def test_bustm_agrees_with_paddlenlp_fewclue():
    from paddlenlp.datasets.fewclue import FewCLUE

    spec = tasks.get("bustm")
    config = FewCLUE.BUILDER_CONFIGS["bustm"]["splits"]
    assert {s: (os.path.basename(config[spec.download[1][s]][0]),) for s in spec.files} == spec.files
    assert spec.grid is None and "bustm" not in grid.CLS_TASKS + grid.READING_TASKS  # not in the default grid


def test_every_task_is_complete():
    names = list(tasks.REGISTRY)
    assert names == list(grid.CLS_TASKS + grid.READING_TASKS) + ["bustm"]
    assert sorted(tasks.REPORT_ORDER) == sorted(grid.CLS_TASKS + grid.READING_TASKS)
    leaderboard = [name for t in tasks.REGISTRY.values() for name in t.predictions.values()]
    assert len(leaderboard) == len(set(leaderboard)) == 15
    for t in tasks.REGISTRY.values():
        assert set(t.predictions) <= set(t.files) and set(t.optional_splits) <= set(t.predictions)
        assert {"train", "dev"} <= set(t.files) and t.train_examples > 0
        if t.is_classification:
            assert t.labels and t.text[0] in ("single", "pair", "keywords", "wsc") and t.choices == 1
        else:
            assert t.family in ("span", "choice", "cloze") and not t.labels and t.download[0] == "huggingface"


def test_consumers_read_the_registry(synthetic_data):
    assert classification.TASKS == tasks.CLASSIFICATION and grid.REPORT_ORDER == tasks.REPORT_ORDER
    for name, t in tasks.REGISTRY.items():
        if t.is_classification:
            assert [n for _, n in classification.prediction_splits(name, synthetic_data)] == list(
                t.predictions.values()
            )
            for split, files in t.files.items():
                path = classification.split_file(name, split, synthetic_data)
                assert path == os.path.join(synthetic_data, f"{name}_public", files[0]) and os.path.isfile(path)
        else:
            assert [n for _, n in mrc.prediction_splits(name, synthetic_data)] == [
                n for s, n in t.predictions.items() if s not in t.optional_splits
            ]
            for split, files in t.files.items():
                assert mrc.split_files(name, split, synthetic_data) == [
                    os.path.join(synthetic_data, f"{name}_public", f) for f in files
                ]
    assert (mrc.C3_CHOICES, mrc.CHID_CANDIDATES) == (4, 10)
    # the scheduler's sizes and cards, the grid's rows
    for job in grid.full_grid():
        t = tasks.get(job.task)
        assert job.is_reading == (not t.is_classification)
        if job.is_reading:
            assert (job.max_seq_length, job.epochs, job.accumulation) == (
                t.grid.max_seq_length,
                t.grid.epochs,
                t.grid.accumulation_for(job.batch_size),
            )
        else:
            assert (job.epochs, job.max_seq_length, job.accumulation, job.dropout) in t.grid.settings


INTERFACE = (
    "read",
    "test_file",
    "expected_answers",
    "answer_problem",
    "PREDICTION_FORM",
    "PREDICTION_KEY",
    "PREDICTION_ENTRY",
    "write_predictions",
)
READING_INTERFACE = ("from_huggingface", "FEATURE_VERSION", "FEATURE_COLUMNS")


def test_every_task_module_has_the_common_interface(synthetic_data):
    for name, t in tasks.REGISTRY.items():
        module = tasks.module(name)
        assert module.__name__ == f"cluebench.tasks.{tasks.FAMILY_MODULES[t.family]}"
        wanted = INTERFACE + (() if t.is_classification else READING_INTERFACE)
        assert [n for n in wanted if not hasattr(module, n)] == [], name
        assert module.PREDICTION_FORM in ("lines", "object") and module.PREDICTION_KEY in ("id", "blank")
        for split in t.predictions:
            path = module.test_file(name, split, synthetic_data)
            assert path == os.path.join(synthetic_data, f"{name}_public", t.files[split][0])
            if os.path.isfile(path):
                expected = module.expected_answers(name, module.read(name, split, synthetic_data))
                assert expected and all(isinstance(k, str) and str(v[0]) == k for k, v in expected.items())


# Outside the registry, the task modules and the test-data writers, no module names a task or asks its family:
# what differs between tasks is the task module's (tasks.module).
BLIND = (
    "tasks/reading.py",
    "tasks/download.py",
    "tasks/features.py",
    "tasks/records.py",
    "grid/submission.py",
    "grid/submission_check.py",
)


@pytest.mark.parametrize("path", BLIND)
def test_callers_never_branch_on_a_task(path):
    with open(os.path.join(ROOT, "cluebench", path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    named = [
        f"line {n.lineno}: {n.value!r}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and n.value in tasks.REGISTRY
    ]
    asked = [
        f"line {n.lineno}: .{n.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and n.attr in ("family", "is_classification")
    ]
    assert named + asked == []


@pytest.mark.parametrize("task", tasks.READING)
def test_wrapper_settings_come_from_the_registry(task):
    g = tasks.get(task).grid
    out = subprocess.run([sys.executable, "-m", "cluebench.tasks", "wrapper", task], capture_output=True, text=True)
    assert out.stdout.split() == [str(g.max_seq_length), str(g.epochs), str(g.warmup_proportion)]
    names = subprocess.run(
        [sys.executable, "-m", "cluebench.tasks", "names", "reading"], capture_output=True, text=True
    )
    assert names.stdout.split() == list(tasks.READING)
    with open(os.path.join(ROOT, "grid_search_tools", "run_mrc.sh"), encoding="utf-8") as f:
        assert "-m cluebench.tasks wrapper" in f.read()  # no table of its own


def test_synthetic_data_follows_the_registry(tmp_path):
    for name in tasks.CLASSIFICATION:
        folder = synthetic.write_task(str(tmp_path), name)
        assert sorted(os.listdir(folder)) == sorted(
            {f for fs in tasks.get(name).files.values() for f in fs} | ({"labels.json"} if name == "tnews" else set())
        )


@pytest.mark.slow
def test_bustm_end_to_end(tiny_models, synthetic_data, tmp_path):
    """The proof that a task is one registry entry: BUSTM trains, evaluates and predicts through the script."""
    out = tmp_path / "out"
    load_script("classification/run_clue_classifier.py").main(
        [
            "--task_name",
            "BUSTM",
            "--model_name_or_path",
            tiny_models["ernie"],
            "--data_dir",
            synthetic_data,
            "--device",
            "cpu",
            "--output_dir",
            str(out),
            "--do_train",
            "--do_predict",
            "--max_steps",
            "4",
            "--save_steps",
            "2",
            "--batch_size",
            "16",
            "--max_seq_length",
            "64",
        ]
    )
    test_file = os.path.join(synthetic_data, "bustm_public", "test_public.json")
    predicted = read_lines(out / "bustm_predict.json")
    assert [p["id"] for p in predicted] == [r["id"] for _, r in read_jsonl(test_file)]
    assert len(predicted) == 24 and {p["label"] for p in predicted} <= {"0", "1"}
