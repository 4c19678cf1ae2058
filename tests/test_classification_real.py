"""The classification tasks on the real CLUE files in $CLUE_DATA_DIR (skipped when it is unset)."""

import os

from cluebench import results
from cluebench.fileio import read_jsonl
from cluebench.tasks import classification as clue
from helpers import load_script, log_field, run_python

import pytest

pytestmark = pytest.mark.slow  # end to end: `pytest -m "not slow"` leaves this module out

CLASSIFIER = load_script("classification/run_clue_classifier.py")


@pytest.mark.parametrize(
    "task, split, count, dropped",
    [
        ("tnews", "dev", 10000, 0),
        ("afqmc", "dev", 4316, 0),
        ("afqmc", "test", 3861, 0),
        ("iflytek", "dev", 2599, 0),
        ("ocnli", "dev", 2950, 50),
        ("cmnli", "train", 1, 0),
        ("cmnli", "dev", 1, 0),
        ("cmnli", "test", 1, 0),
        ("cluewsc2020", "train", 1244, 0),
        ("cluewsc2020", "dev", 304, 0),
        ("csl", "dev", 3000, 0),
        ("csl", "test", 3000, 0),
    ],
)
def test_real_counts(clue_data, task, split, count, dropped):
    examples, n_dropped = clue.load_split(task, split, clue_data)
    assert (len(examples), n_dropped) == (count, dropped)
    if split == "test":
        assert all(e.label is None for e in examples)
    else:
        assert all(0 <= e.label < len(clue.label_list(task)) for e in examples)


def test_real_iflytek_labels_and_u2028(clue_data):
    examples, _ = clue.load_split("iflytek", "dev", clue_data)
    assert len({e.label for e in examples}) == 119 == len(clue.label_list("iflytek"))
    with_separator = [e.text for e in examples if "\u2028" in e.text]
    assert len(with_separator) == 5  # a splitlines() reader would have cut these examples in two


def test_real_tnews_uses_fifteen_labels(clue_data):
    examples, _ = clue.load_split("tnews", "dev", clue_data)
    labels = [r["label"] for _, r in read_jsonl(os.path.join(clue_data, "tnews_public", "labels.json"))]
    assert labels == clue.label_list("tnews") and {e.label for e in examples} == set(range(15))


def test_all_real_wsc_markers_land_on_their_spans(clue_data):
    checked = 0
    for split in ("train", "dev"):
        path = clue.split_file("cluewsc2020", split, clue_data)
        for _, record in read_jsonl(path):
            t = record["target"]
            marked = clue.example_text("cluewsc2020", record, path, 0)[0]
            # markers before a span shift it by 2 characters each pair
            shift1 = 2 if t["span2_index"] < t["span1_index"] else 0
            shift2 = 2 if t["span1_index"] < t["span2_index"] else 0
            i, j = t["span1_index"] + shift1, t["span2_index"] + shift2
            assert marked[i : i + len(t["span1_text"]) + 2] == "_" + t["span1_text"] + "_"
            assert marked[j : j + len(t["span2_text"]) + 2] == "[" + t["span2_text"] + "]"
            assert len(marked) == len(record["text"]) + 4
            checked += 1
    assert checked == 1244 + 304


def test_real_csl_prediction_carries_test_ids(clue_data, real_vocab_model, tmp_path):
    CLASSIFIER.main(
        [
            "--task_name",
            "csl",
            "--model_name_or_path",
            real_vocab_model,
            "--data_dir",
            clue_data,
            "--device",
            "cpu",
            "--do_predict",
            "--output_dir",
            str(tmp_path),
            "--batch_size",
            "64",
            "--max_seq_length",
            "256",
        ]
    )
    expected = [r["id"] for _, r in read_jsonl(os.path.join(clue_data, "csl_public", "test.json"))]
    written = [r for _, r in read_jsonl(str(tmp_path / "csl_predict.json"))]
    assert len(written) == 3000 and [r["id"] for r in written] == expected
    assert expected[:3] == [2415, 2565, 2625]  # not the 0..N-1 of upstream
    assert {r["label"] for r in written} <= {"0", "1"}


def test_real_run_best_result_is_field_seven(clue_data, real_vocab_model, tmp_path):
    """A real training run logged as run_cls.sh does; its last line read as extract_result.sh reads it."""
    out, log = tmp_path / "out", tmp_path / "3e-05_32_0.1.log"
    proc = run_python(
        [
            "-u",
            "classification/run_clue_classifier.py",
            "--task_name",
            "cluewsc2020",
            "--model_name_or_path",
            real_vocab_model,
            "--data_dir",
            clue_data,
            "--device",
            "cpu",
            "--do_train",
            "--output_dir",
            str(out),
            "--max_steps",
            "8",
            "--save_steps",
            "4",
            "--logging_steps",
            "4",
            "--batch_size",
            "32",
            "--learning_rate",
            "3e-05",
            "--save_best_model",
            "False",
        ],
        log=log,
        timeout=600,
    )
    lines = log.read_text(encoding="utf-8").splitlines()
    assert proc.returncode == 0, lines[-20:]
    last = lines[-1]
    assert log_field(last, 6) == "best_result:"
    record = results.read_record(str(out / results.FILENAME))
    value = log_field(last, 7)[:5]  # upstream extract_result.sh keeps the first 5 characters
    assert float(value) == float(record["best"]["value"])
    assert record["data"]["dev_examples"] == 304 and [h["step"] for h in record["history"]] == [4, 8]
    best_acc = max(h["metrics"]["acc"] for h in record["history"])
    assert float(value) == round(best_acc, 2)
