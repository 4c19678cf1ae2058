"""Train, evaluate and predict CMRC2018, C3 and CHID through their scripts, on tiny models."""

import json
import math
import os
import shutil
from types import SimpleNamespace

from cluebench import fileio, results, tasks
from cluebench.fileio import read_jsonl
from cluebench.tasks import reading as mrc
from cluebench.train import reading as reading_run
from helpers import NO_GPU, load_script, log_field, run_python

import pytest
from paddlenlp.transformers import AutoTokenizer

pytestmark = pytest.mark.slow  # end to end: `pytest -m "not slow"` leaves this module out

TASKS = ("cmrc2018", "c3", "chid")
SCRIPTS = {task: load_script(f"mrc/run_{task}.py") for task in TASKS}
TRAIN_COUNT = {"cmrc2018": "train_features", "c3": "train_questions", "chid": "train_blanks"}


def task_args(task, model, data, out, cache, *extra):
    args = [
        "--model_name_or_path",
        model,
        "--data_dir",
        data,
        "--device",
        "cpu",
        "--output_dir",
        str(out),
        "--cache_dir",
        str(cache),
        "--max_seq_length",
        "64",
        "--eval_batch_size",
        "8",
        *extra,
    ]
    return args + (["--doc_stride", "32"] if task == "cmrc2018" else [])


def train_args(*extra):
    return [
        "--do_train",
        "--num_train_epochs",
        "2",
        "--batch_size",
        "4",
        "--gradient_accumulation_steps",
        "1",
        "--logging_steps",
        "2",
        "--learning_rate",
        "1e-3",
        *extra,
    ]


def expected_ids(task, data):
    """What a prediction file must be keyed by, in file order."""
    if task == "cmrc2018":
        return [e.id for e in mrc.load_examples(task, "test", data)]
    if task == "c3":
        return [q["id"] for doc in mrc.read_json(mrc.split_files(task, "test1.1", data)[0]) for q in doc[1]]
    return [
        t
        for _, r in read_jsonl(mrc.split_files(task, "test1.1", data)[0])
        for p in r["content"]
        for t in mrc.CHID_TAG.findall(p)
    ]


def predicted_ids(task, path):
    if task == "c3":
        return [r["id"] for _, r in read_jsonl(path)]
    with open(path, encoding="utf-8") as f:
        return list(json.load(f))


@pytest.mark.parametrize("task", TASKS)
def test_end_to_end(task, tiny_models, synthetic_data, tmp_path, log_lines):
    out, cache = tmp_path / "out", tmp_path / "cache"
    SCRIPTS[task].main(task_args(task, tiny_models["ernie"], synthetic_data, out, cache) + train_args("--do_predict"))
    lines = log_lines()
    record = results.read_record(str(out / results.FILENAME))
    per_epoch = math.ceil(record["data"][TRAIN_COUNT[task]] / 4)
    assert [h["step"] for h in record["history"]] == [per_epoch, 2 * per_epoch]  # after each epoch, the last too
    key = "em" if task == "cmrc2018" else "acc"
    assert record["best"]["metrics"][key] == max(h["metrics"][key] for h in record["history"])
    assert log_field(lines[-1], 6) == "best_result:" and log_field(lines[-1], 7).startswith(record["best"]["value"])
    if task == "cmrc2018":
        assert "/" in record["best"]["value"] and (out / "prediction_validation.json").exists()

    name = tasks.get(task).predictions["test" if task == "cmrc2018" else "test1.1"]
    assert predicted_ids(task, out / name) == expected_ids(task, synthetic_data)
    # the in-run prediction used the best weights in eval mode: the saved best model predicts the same
    again = tmp_path / "again"
    SCRIPTS[task].main(task_args(task, str(out), synthetic_data, again, cache, "--do_predict"))
    assert (again / name).read_text(encoding="utf-8") == (out / name).read_text(encoding="utf-8")
    assert any("features from cache" in line for line in log_lines()[len(lines) :])


def test_features_built_once_across_hyperparameters(tiny_models, synthetic_data, tmp_path, log_lines):
    cache = tmp_path / "cache"
    for i, (lr, batch, seed) in enumerate([("1e-3", "4", "1"), ("3e-5", "2", "7")]):
        before = len(log_lines())
        SCRIPTS["c3"].main(
            task_args("c3", tiny_models["bert"], synthetic_data, tmp_path / f"out{i}", cache, "--num_proc", str(i + 1))
            + [
                "--do_train",
                "--learning_rate",
                lr,
                "--batch_size",
                batch,
                "--seed",
                seed,
                "--num_train_epochs",
                "1",
                "--gradient_accumulation_steps",
                "1",
            ]
        )
        built = [line for line in log_lines()[before:] if " built " in line]
        assert len(built) == (2 if i == 0 else 0)  # train and dev, once
    assert sorted(n.split("-")[1] for n in os.listdir(cache)) == ["dev", "train"]


def test_max_steps_zero_trains_nothing(tiny_models, synthetic_data, tmp_path, log_lines):
    out, cache = tmp_path / "out", tmp_path / "cache"
    cache.mkdir()
    # what a run killed while caching leaves (a pid above Linux's largest: dead), and a live run's file
    dead = cache / f".cmrc2018-train-9f0e2d1c.npz.{fileio.HOST_TAG}-{2**22 + 1}.ab12{fileio.TMP_SUFFIX}"
    live = cache / f".cmrc2018-dev-5b7a3e4f.npz.{fileio.HOST_TAG}-{os.getpid()}.cd34{fileio.TMP_SUFFIX}"
    dead.write_bytes(b"PK")
    live.write_bytes(b"PK")
    SCRIPTS["cmrc2018"].main(
        task_args("cmrc2018", tiny_models["ernie"], synthetic_data, out, cache) + ["--do_train", "--max_steps", "0"]
    )
    lines = log_lines()
    assert not any("global step" in line or "eval done" in line for line in lines)
    assert log_field(lines[-1], 7).startswith("0.00/0.00")
    assert not (out / results.FILENAME).exists()
    assert sorted(n.split("-")[1] for n in os.listdir(cache) if n.endswith(".npz")) == ["dev", "train"]
    assert not dead.exists() and live.exists()


@NO_GPU
def test_two_ranks_build_features_once(tiny_models, synthetic_data, tmp_path):
    out, logs, cache = tmp_path / "out", tmp_path / "logs", tmp_path / "cache"
    proc = run_python(
        ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(logs), "mrc/run_c3.py"]
        + task_args("c3", tiny_models["ernie"], synthetic_data, out, cache)
        + train_args("--do_predict"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rank0 = open(logs / "workerlog.0", encoding="utf-8").read()
    rank1 = open(logs / "workerlog.1", encoding="utf-8").read()
    assert rank0.count(" built ") == 3 and " built " not in rank1 and rank1.count("from cache") == 2
    assert "eval acc" in rank0 and "eval acc" not in rank1 and "best_result" not in rank1
    assert predicted_ids("c3", out / "c311_predict.json") == expected_ids("c3", synthetic_data)


@pytest.mark.parametrize("task", ["c3", "chid"])
def test_cache_follows_every_file_of_a_split(task, tiny_models, synthetic_data, tmp_path, log_lines):
    """Changing the second file of a split (C3 m-train.json, CHID train_answer.json) rebuilds its features."""
    shutil.copytree(os.path.join(synthetic_data, f"{task}_public"), tmp_path / f"{task}_public")
    args = SimpleNamespace(
        data_dir=str(tmp_path), max_seq_length=64, cache_dir=str(tmp_path / "cache"), overwrite_cache=False
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["ernie"])
    build = mrc.c3_features if task == "c3" else mrc.chid_features

    def labels():
        _, feats = reading_run.features(args, task, "train", tokenizer, lambda e, enc: build(e, enc, 64), 1)
        return feats["labels"].tolist()

    before = labels()
    assert labels() == before and "features from cache" in log_lines()[-1]
    second = mrc.split_files(task, "train", args.data_dir)[1]
    with open(second, encoding="utf-8") as f:
        data = json.load(f)
    if task == "c3":  # the first m-train question now answers with its first choice
        first = len(mrc.read_c3(mrc.split_files(task, "train", args.data_dir)[:1], labelled=True))
        data[0][1][0]["answer"] = data[0][1][0]["choice"][0]
        expected = before[:first] + [0] + before[first + 1 :]
    else:  # the first two blanks swap their answers
        tags = sorted(data)
        data[tags[0]], data[tags[1]] = data[tags[1]], data[tags[0]]
        expected = [before[1], before[0]] + before[2:]
    with open(second, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    assert expected != before and labels() == expected
    assert f"{task} train: built {len(expected)} features" in log_lines()[-1]


@pytest.mark.parametrize("task", TASKS)
def test_to_static_gives_the_same_numbers(task, tiny_models, synthetic_data, tmp_path, log_lines):
    """--to_static true: the same losses at every logged step, dev history and prediction files as eager
    (the same kernels and random draws, one static program)."""
    runs = {}
    for mode in ("false", "true"):
        out = tmp_path / mode
        SCRIPTS[task].main(
            task_args(task, tiny_models["bert"], synthetic_data, out, tmp_path / "cache")
            + train_args("--do_predict", "--to_static", mode)
        )
        losses = [line.split("loss: ")[1].split(",")[0] for line in log_lines() if "global step" in line]
        losses = losses[sum(len(run[0]) for run in runs.values()) :]  # the lines of this run
        record = results.read_record(str(out / results.FILENAME))
        files = {os.path.basename(p): open(p, encoding="utf-8").read() for p in record["predictions"]}
        runs[mode] = (losses, record["history"], files)
    assert len(runs["false"][0]) >= 2 and runs["true"] == runs["false"]
