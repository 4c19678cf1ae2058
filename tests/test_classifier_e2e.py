"""Train, evaluate and predict every classification task through both scripts, on tiny models."""

import json
import math
import os
import sys

from cluebench import results, tasks
from cluebench.fileio import read_jsonl as read_records
from cluebench.tasks import classification as clue
from helpers import NO_GPU, load_script, log_field, read_jsonl, run_python

import pytest

pytestmark = pytest.mark.slow  # end to end: `pytest -m "not slow"` leaves this module out

CLASSIFIER = load_script("classification/run_clue_classifier.py")
TRAINER = load_script("classification/run_clue_classifier_trainer.py")
ARCH = {task: ("ernie", "bert")[i % 2] for i, task in enumerate(clue.TASKS)}


def common_args(task, model, data, out):
    return [
        "--task_name",
        task.upper(),
        "--model_name_or_path",
        model,
        "--data_dir",
        data,
        "--device",
        "cpu",
        "--output_dir",
        str(out),
        "--max_seq_length",
        "64",
    ]


def file_ids(data, task, split):
    return [r["id"] for _, r in read_records(clue.split_file(task, split, data))]


def check_prediction_files(out, data, task):
    """Every leaderboard file of the task holds exactly the test file's ids, in order, and valid labels."""
    files = clue.prediction_splits(task, data)
    assert len(files) == (2 if task in ("tnews", "cluewsc2020") else 1)
    contents = {}
    for split, filename in files:
        lines = read_jsonl(os.path.join(out, filename))
        assert [line["id"] for line in lines] == file_ids(data, task, split)
        assert set(line["label"] for line in lines) <= set(clue.label_list(task))
        contents[filename] = lines
    return contents


@pytest.mark.parametrize("task", clue.TASKS)
def test_argparse_script(task, tiny_models, synthetic_data, tmp_path, log_lines):
    out = tmp_path / "out"
    CLASSIFIER.main(
        common_args(task, tiny_models[ARCH[task]], synthetic_data, out)
        + [
            "--do_train",
            "--do_eval",
            "--do_predict",
            "--num_train_epochs",
            "2",
            "--batch_size",
            "16",
            "--learning_rate",
            "5e-3",
            "--save_steps",
            "3",
            "--logging_steps",
            "2",
        ]
    )
    lines = log_lines()

    record = results.read_record(str(out / results.FILENAME))
    n_train = 61 if tasks.get(task).dash_label else 64
    n_dev = 29 if tasks.get(task).dash_label else 32
    total = 2 * math.ceil(n_train / 16)
    assert record["data"] == {"train_examples": n_train, "dev_examples": n_dev, "dev_dropped": 32 - n_dev}
    assert [h["step"] for h in record["history"]] == [s for s in range(1, total + 1) if s % 3 == 0 or s == total]
    for h in record["history"]:  # each accuracy is a whole number of correct dev examples
        assert abs(h["metrics"]["acc"] * n_dev / 100 - round(h["metrics"]["acc"] * n_dev / 100)) < 1e-6
    best = max(record["history"], key=lambda h: h["metrics"]["acc"])  # max() keeps the first: strict >
    assert (record["best"]["step"], record["best"]["metrics"]) == (best["step"], best["metrics"])
    assert record["hyperparameters"]["learning_rate"] == 5e-3 and record["throughput"]["optimizer_steps"] == total

    # Log: the --do_eval line reports the best checkpoint, and best_result ends the run as field 7.
    do_eval_line = [line for line in lines if " - eval loss: " in line][-1]
    assert float(do_eval_line.split("acc: ")[1].split(",")[0]) * 100 == pytest.approx(best["metrics"]["acc"])
    assert log_field(lines[-1], 6) == "best_result:"
    assert log_field(lines[-1], 7).startswith(record["best"]["value"])

    predicted = check_prediction_files(out, synthetic_data, task)
    # Predicting again from the saved best checkpoint gives the same files: the in-run prediction used
    # the best weights, in eval mode (dropout on would make the two differ).
    again = tmp_path / "again"
    CLASSIFIER.main(common_args(task, str(out), synthetic_data, again) + ["--do_predict"])
    assert check_prediction_files(again, synthetic_data, task) == predicted
    assert not os.path.exists(again / results.FILENAME)  # no training, no record


@pytest.mark.parametrize("task", clue.TASKS)
def test_trainer_script(task, tiny_models, synthetic_data, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "run_clue_classifier_trainer.py",
            "--dataset",
            f"clue {task}",
            "--data_dir",
            synthetic_data,
            "--model_name_or_path",
            tiny_models[ARCH[task]],
            "--output_dir",
            str(out),
            "--device",
            "cpu",
            "--do_train",
            "--do_eval",
            "--do_predict",
            "--num_train_epochs",
            "2",
            "--learning_rate",
            "5e-3",
            "--warmup_ratio",
            "0.1",
            "--per_device_train_batch_size",
            "16",
            "--per_device_eval_batch_size",
            "16",
            "--logging_steps",
            "2",
            "--save_steps",
            "2",
            "--metric_for_best_model",
            "eval_accuracy",
            "--load_best_model_at_end",
            "--save_total_limit",
            "2",
            "--disable_tqdm",
            "True",
            "--max_seq_length",
            "64",
        ],
    )  # reporting left at its default (VisualDL), as the README runs it
    TRAINER.main()
    predicted = check_prediction_files(out, synthetic_data, task)
    steps = 2 * math.ceil((61 if tasks.get(task).dash_label else 64) / 16)
    # eight checkpoints were saved, every second step; save_total_limit kept two
    assert len([d for d in os.listdir(out) if d.startswith("checkpoint-")]) == 2
    assert os.listdir(out / "runs")  # the VisualDL log of the default reporting
    record = results.read_record(str(out / results.FILENAME))
    with open(out / "trainer_state.json", encoding="utf-8") as f:
        state = json.load(f)  # the Trainer's own account of its best checkpoint
    assert [h["step"] for h in record["history"]] == list(range(2, steps + 1, 2))
    assert record["best"]["metrics"]["acc"] == pytest.approx(100 * state["best_metric"])
    assert f"checkpoint-{record['best']['step']}" == os.path.basename(state["best_model_checkpoint"])
    # The argparse script, predicting from the model the Trainer saved, writes the same files.
    again = tmp_path / "again"
    CLASSIFIER.main(common_args(task, str(out), synthetic_data, again) + ["--do_predict"])
    assert check_prediction_files(again, synthetic_data, task) == predicted


def test_learns_synthetic_tnews(tiny_models, tmp_path):
    """A tiny model must beat the majority class by far on a learnable synthetic task."""
    from cluebench import synthetic

    data = synthetic.write_task(str(tmp_path / "data"), "tnews", n_train=480, n_dev=120)
    out = tmp_path / "out"
    CLASSIFIER.main(
        common_args("tnews", tiny_models["ernie"], data, out)
        + [
            "--do_train",
            "--num_train_epochs",
            "8",
            "--batch_size",
            "16",
            "--learning_rate",
            "5e-3",
            "--save_steps",
            "60",
            "--save_best_model",
            "false",
        ]
    )
    dev_labels = [r["label"] for _, r in read_records(os.path.join(data, "dev.json"))]
    majority = max(dev_labels.count(label) for label in set(dev_labels)) / len(dev_labels)
    assert majority == 8 / 120
    record = results.read_record(str(out / results.FILENAME))
    assert record["best"]["metrics"]["acc"] >= 90.0
    assert not os.path.exists(out / "model_state.pdparams")  # --save_best_model false


def test_accumulation_and_dropout(tiny_models, synthetic_data, tmp_path):
    out = tmp_path / "out"
    CLASSIFIER.main(
        common_args("afqmc", tiny_models["bert"], synthetic_data, out)
        + [
            "--do_train",
            "--num_train_epochs",
            "1",
            "--batch_size",
            "15",
            "--gradient_accumulation_steps",
            "3",
            "--dropout",
            "0.0",
            "--save_steps",
            "100",
        ]
    )
    record = results.read_record(str(out / results.FILENAME))
    # micro-batches of 5: 13 per epoch; groups of 3 → 5 updates (the last one of a single batch)
    assert record["throughput"]["optimizer_steps"] == 5 and [h["step"] for h in record["history"]] == [5]


def test_bad_label_fails_cleanly(tiny_models, synthetic_data, tmp_path):
    data = tmp_path / "data" / "tnews_public"
    data.mkdir(parents=True)
    for name in ("dev.json", "test.json"):
        (data / name).write_text(
            open(os.path.join(synthetic_data, "tnews_public", name), encoding="utf-8").read(), encoding="utf-8"
        )
    lines = open(os.path.join(synthetic_data, "tnews_public", "train.json"), encoding="utf-8").read().splitlines()
    lines[4] = lines[4].replace('"label": "', '"label": "9')
    (data / "train.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_python(
        ["classification/run_clue_classifier.py"]
        + common_args("tnews", tiny_models["ernie"], str(data), out)
        + ["--do_train"]
    )
    assert proc.returncode == 2
    assert f"error: {data / 'train.json'}:5: field 'label': label '9" in proc.stderr
    assert not out.exists()  # nothing written


@NO_GPU
def test_gpu_without_gpu_is_a_clear_error(tiny_models, synthetic_data, tmp_path):
    out = tmp_path / "out"
    proc = run_python(
        [
            "classification/run_clue_classifier.py",
            "--task_name",
            "tnews",
            "--model_name_or_path",
            tiny_models["ernie"],
            "--data_dir",
            synthetic_data,
            "--do_train",
            "--device",
            "gpu",
            "--output_dir",
            str(out),
        ]
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --device gpu: asked for, but no GPU is visible; use --device cpu"
    )
    assert not out.exists()


def test_a_rank_leaves_after_the_exit_handlers(tmp_path):
    """setup.exit_cleanly on several ranks: after the closing barrier, Python's exit handlers run (the output lock's
    release among them) and the process leaves without Paddle's native teardown, which aborted 3 of 10
    two-rank runs on a busy machine after every file was written."""
    marker = tmp_path / "handlers-ran"
    code = "\n".join(
        [
            "import atexit",
            "from cluebench.train import setup",
            "import paddle",
            "paddle.distributed.get_world_size = lambda: 2",
            "paddle.distributed.barrier = lambda: print('barrier', flush=True)",
            f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))",
            "setup.exit_cleanly(lambda: print('main', flush=True))",
            "print('not reached')",
        ]
    )
    proc = run_python(["-c", code], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["main", "barrier"] and marker.read_text() == "ran"


@NO_GPU
def test_two_processes(tiny_models, synthetic_data, tmp_path):
    """paddle.distributed.launch with two CPU ranks: both train, rank 0 alone evaluates, saves and reports."""
    out, logs = tmp_path / "out", tmp_path / "logs"
    proc = run_python(
        [
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            "2",
            "--log_dir",
            str(logs),
            "classification/run_clue_classifier.py",
        ]
        + common_args("tnews", tiny_models["ernie"], synthetic_data, out)
        + [
            "--do_train",
            "--do_predict",
            "--batch_size",
            "16",
            "--num_train_epochs",
            "2",
            "--logging_steps",
            "1",
            "--save_steps",
            "2",
        ],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rank0 = open(logs / "workerlog.0", encoding="utf-8").read().splitlines()
    rank1 = open(logs / "workerlog.1", encoding="utf-8").read()
    assert log_field(rank0[-1], 6) == "best_result:", rank0[-5:]
    assert "rank_id: 1" in rank1 and "best_result" not in rank1 and "eval loss" not in rank1
    record = results.read_record(str(out / results.FILENAME))
    # 64 examples over 2 ranks of 16: 2 steps an epoch
    assert record["throughput"]["world_size"] == 2 and [h["step"] for h in record["history"]] == [2, 4]
    check_prediction_files(out, synthetic_data, "tnews")
    # the static program under DataParallel: the same numbers again
    static = run_python(
        [
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            "2",
            "--log_dir",
            str(logs) + "-static",
            "classification/run_clue_classifier.py",
        ]
        + common_args("tnews", tiny_models["ernie"], synthetic_data, tmp_path / "static")
        + [
            "--do_train",
            "--do_predict",
            "--batch_size",
            "16",
            "--num_train_epochs",
            "2",
            "--logging_steps",
            "1",
            "--save_steps",
            "2",
            "--to_static",
            "true",
        ],
        timeout=300,
    )
    assert static.returncode == 0, static.stderr[-2000:]
    assert results.read_record(str(tmp_path / "static" / results.FILENAME))["history"] == record["history"]
    for name in ("tnews11_predict.json", "tnews10_predict.json"):
        assert read_jsonl(str(tmp_path / "static" / name)) == read_jsonl(str(out / name))


def test_both_scripts_write_the_same_record(tiny_models, synthetic_data, tmp_path, monkeypatch):
    """--results_file works in both, and the records carry the same fields (extract and the grid read them)."""
    CLASSIFIER.main(
        common_args("ocnli", tiny_models["ernie"], synthetic_data, tmp_path / "a")
        + ["--do_train", "--max_steps", "2", "--save_steps", "2", "--results_file", str(tmp_path / "a.json")]
    )
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "run_clue_classifier_trainer.py",
            "--dataset",
            "clue ocnli",
            "--data_dir",
            synthetic_data,
            "--model_name_or_path",
            tiny_models["ernie"],
            "--output_dir",
            str(tmp_path / "b"),
            "--device",
            "cpu",
            "--do_train",
            "--do_eval",
            "--max_steps",
            "2",
            "--logging_steps",
            "2",
            "--save_steps",
            "2",
            "--max_seq_length",
            "64",
            "--results_file",
            str(tmp_path / "b.json"),
        ],
    )
    TRAINER.main()
    a, b = (results.read_record(str(tmp_path / name)) for name in ("a.json", "b.json"))
    assert set(a) == set(b) and set(a["data"]) == set(b["data"]) and set(a["throughput"]) == set(b["throughput"])
    assert a["data"]["dev_dropped"] == b["data"]["dev_dropped"] == 3  # the synthetic OCNLI dev's '-' labels
    assert not (tmp_path / "b" / results.FILENAME).exists()


def test_visualdl_scalars_and_what_made_the_record(tiny_models, synthetic_data, tmp_path, log_lines):
    """--logdir: the logged train losses and learning rates, and every dev evaluation, as VisualDL scalars at
    their steps; the record says what made it, with a SHA-256 of every file read (test files included)."""
    import glob
    import hashlib

    import paddle
    import paddlenlp
    from visualdl import LogReader

    out, logdir = tmp_path / "out", tmp_path / "vdl"
    CLASSIFIER.main(
        common_args("tnews", tiny_models["ernie"], synthetic_data, out)
        + [
            "--do_train",
            "--do_predict",
            "--max_steps",
            "6",
            "--batch_size",
            "16",
            "--learning_rate",
            "5e-3",
            "--save_steps",
            "3",
            "--logging_steps",
            "2",
            "--logdir",
            str(logdir),
        ]
    )
    logged = [line for line in log_lines() if "global step" in line]
    record = results.read_record(str(out / results.FILENAME))

    (log_file,) = glob.glob(str(logdir / "*"))
    reader = LogReader(file_path=log_file)
    scalars = {
        tag: [(r.id, r.value) for r in reader.get_data("scalar", tag)]
        for tag in ("train/loss", "train/lr", "eval/acc", "eval/loss")
    }
    assert [step for step, _ in scalars["train/loss"]] == [2, 4, 6]
    assert [f"{v:f}" for _, v in scalars["train/loss"]] == [line.split("loss: ")[1].split(",")[0] for line in logged]
    assert [step for step, _ in scalars["eval/acc"]] == [h["step"] for h in record["history"]] == [3, 6]
    assert [round(v, 4) for _, v in scalars["eval/acc"]] == [round(h["metrics"]["acc"], 4) for h in record["history"]]
    assert [round(v, 5) for _, v in scalars["eval/loss"]] == [round(h["loss"], 5) for h in record["history"]]

    made_by = record["made_by"]
    files = [clue.split_file("tnews", split, synthetic_data) for split in ("test", "test1.0", "train", "dev")]
    assert made_by["data_files"] == {
        os.path.abspath(p): hashlib.sha256(open(p, "rb").read()).hexdigest() for p in files
    }
    assert (made_by["python"], made_by["paddle"], made_by["paddlenlp"]) == (
        sys.version.split()[0],
        paddle.__version__,
        paddlenlp.__version__,
    )
    assert made_by["device"]["kind"] == "cpu" and made_by["device"]["count"] == 1 and made_by["device"]["name"]
    assert made_by["device"]["omp_num_threads"] == os.environ["OMP_NUM_THREADS"]
    assert made_by["device"].get("mkl_debug_cpu_type") == os.environ.get("MKL_DEBUG_CPU_TYPE")
    commit = made_by["git_commit"]
    assert commit is None or len(commit.removesuffix("+changes")) == 40
    # the test sets: 24 examples each, predicted once with the best weights
    assert record["throughput"]["predict_examples"] == 48 and record["throughput"]["predict_time_s"] > 0


def test_to_static_gives_the_same_numbers(tiny_models, synthetic_data, tmp_path, log_lines):
    """--to_static true: identical losses at every logged step, dev history (losses included) and predictions."""
    runs = {}
    for mode in ("false", "true"):
        out = tmp_path / mode
        CLASSIFIER.main(
            common_args("afqmc", tiny_models["ernie"], synthetic_data, out)
            + [
                "--do_train",
                "--do_predict",
                "--max_steps",
                "8",
                "--batch_size",
                "16",
                "--learning_rate",
                "5e-3",
                "--save_steps",
                "4",
                "--logging_steps",
                "1",
                "--to_static",
                mode,
            ]
        )
        losses = [line.split("loss: ")[1].split(",")[0] for line in log_lines() if "global step" in line]
        losses = losses[sum(len(run[0]) for run in runs.values()) :]  # the lines of this run
        record = results.read_record(str(out / results.FILENAME))
        runs[mode] = (losses, record["history"], read_jsonl(str(out / "afqmc_predict.json")))
    assert len(runs["false"][0]) == 8 and runs["true"] == runs["false"]
