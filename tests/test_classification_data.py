"""Task data handling of the classification suite: markers, readers, errors, file writing."""

import argparse
import json
import os

from cluebench.fileio import DataError, atomic_write
from cluebench.tasks import classification as clue
from cluebench.train import loop as training, setup as cli, speedups

import pytest


# CLUEWSC2020 markers: hand-written expectations.
@pytest.mark.parametrize(
    "text, target, expected",
    [
        # noun first (as in every real example)
        (
            "有些这样的“洋人”就站在大众之间。他们排在后面",
            (6, "洋人", 17, "他们"),
            "有些这样的“_洋人_”就站在大众之间。[他们]排在后面",
        ),
        # pronoun first: the later noun's index must not be shifted wrongly
        ("她说小红的书很好看", (2, "小红", 0, "她"), "[她]说_小红_的书很好看"),
        # spans touching
        ("小明他来了", (0, "小明", 2, "他"), "_小明_[他]来了"),
        # pronoun at the very end
        ("张三打了李四，因为他", (0, "张三", 9, "他"), "_张三_打了李四，因为[他]"),
    ],
)
def test_wsc_markers(text, target, expected):
    assert clue.mark_wsc_spans(text, *target) == expected


def test_wsc_marker_errors():
    with pytest.raises(ValueError, match=r"span2_text '他' is not at span2_index 4 .*found '很'"):
        clue.mark_wsc_spans("小明说他很累", 0, "小明", 4, "他")
    with pytest.raises(ValueError, match="overlap"):
        clue.mark_wsc_spans("小明说他很累", 0, "小明", 1, "明")


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


def test_synthetic_splits_load_with_counts(synthetic_data):
    train, dropped = clue.load_split("ocnli", "train", synthetic_data)
    assert (len(train), dropped) == (61, 3)  # 64 written, 3 labelled '-'
    dev, dropped = clue.load_split("cmnli", "dev", synthetic_data)
    assert (len(dev), dropped) == (29, 3)
    test, _ = clue.load_split("csl", "test", synthetic_data)
    assert len(test) == 24 and all(e.label is None for e in test)
    with open(os.path.join(synthetic_data, "csl_public", "test.json"), encoding="utf-8") as f:
        file_ids = [json.loads(line)["id"] for line in f]
    assert [e.id for e in test] == file_ids and file_ids != list(range(24))  # CSL ids are the file's own
    tnews, _ = clue.load_split("tnews", "dev", synthetic_data)
    assert [e.label for e in tnews[:16]] == list(range(15)) + [0]


def test_u2028_survives(tmp_path):
    sentence = "第一行\u2028第二行"
    path = write_lines(
        tmp_path / "iflytek_public" / "dev.json",
        [json.dumps({"label": "3", "sentence": sentence}, ensure_ascii=False)] * 2,
    )
    examples, _ = clue.read_split("iflytek", "dev", path)
    assert [e.text for e in examples] == [sentence, sentence] and examples[0].label == 3


def test_integer_labels_of_fewclue(tmp_path):
    path = write_lines(tmp_path / "t.json", ['{"label": 102, "sentence": "一"}'])
    assert clue.read_split("tnews", "train", path)[0][0].label == 2


@pytest.mark.parametrize(
    "task, lines, message",
    [
        (
            "tnews",
            ['{"label": "100", "sentence": "a"}', '{"label": "100", "sentence": "a"', ""],
            r"t\.json:2: not valid JSON",
        ),
        (
            "tnews",
            ['{"label": "100", "sentence": "a"}', '{"label": "999", "sentence": "b"}'],
            r"t\.json:2: field 'label': label '999' is not one of the 15 tnews labels \(100, 101",
        ),
        ("afqmc", ['{"sentence1": "a", "label": "0"}'], r"t\.json:1: field 'sentence2': missing"),
        ("csl", ['{"abst": "a", "keyword": "k", "label": "0"}'], r"t\.json:1: field 'keyword': expected a list"),
        (
            "cluewsc2020",
            [
                '{"text": "小明说他很累", "label": "true", "target": {"span1_index": 0, "span1_text": "小明", '
                '"span2_index": 4, "span2_text": "他"}}'
            ],
            r"t\.json:1: field 'target': span2_text '他' is not at span2_index 4",
        ),
        (
            "ocnli",
            ['{"sentence1": "a", "sentence2": "b", "label": "-"}', "[1, 2]"],
            r"t\.json:2: expected a JSON object",
        ),
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path, task, lines, message):
    path = write_lines(tmp_path / "t.json", lines)
    with pytest.raises(DataError, match=message):
        clue.read_split(task, "train", path)


def test_missing_split_names_expected_path(tmp_path):
    os.makedirs(tmp_path / "ocnli_public")
    expected = os.path.join(str(tmp_path), "ocnli_public", "train.50k.json")
    with pytest.raises(DataError, match=f"{expected}: file not found"):
        clue.load_split("ocnli", "train", str(tmp_path))


def test_data_dir_is_task_folder_or_parent(synthetic_data):
    parent = clue.split_file("tnews", "dev", synthetic_data)
    folder = clue.split_file("tnews", "dev", os.path.join(synthetic_data, "tnews_public"))
    assert parent == folder == os.path.join(synthetic_data, "tnews_public", "dev.json")


def test_unknown_task_lists_valid_ones():
    with pytest.raises(argparse.ArgumentTypeError, match="unknown task 'sst2'; valid tasks: afqmc, tnews, iflytek"):
        clue.task_name("sst2")
    assert clue.task_name("CLUEWSC2020") == "cluewsc2020"


def test_model_directory_checks(tmp_path, tiny_models):
    cli.check_model_path(tiny_models["ernie"])
    cli.check_model_path("ernie-3.0-medium-zh")  # a built-in name passes through
    for missing, message in [("model_state.pdparams", "no weights"), ("vocab.txt", "no vocabulary")]:
        folder = tmp_path / missing
        folder.mkdir()
        for name in os.listdir(tiny_models["ernie"]):
            if name != missing:
                (folder / name).write_bytes(open(os.path.join(tiny_models["ernie"], name), "rb").read())
        with pytest.raises(DataError, match=f"{folder}: model directory has {message}"):
            cli.check_model_path(str(folder))
    with pytest.raises(DataError, match="model directory not found"):
        cli.check_model_path(str(tmp_path / "nope"))


def test_prediction_file_is_atomic(tmp_path):
    path = tmp_path / "csl_predict.json"
    examples = [clue.Example("a", "b", None, i) for i in (2415, 2565, 7)]
    clue.write_predictions(str(path), examples, ["1", "0", "1"])
    assert path.read_text().splitlines() == [
        '{"id": 2415, "label": "1"}',
        '{"id": 2565, "label": "0"}',
        '{"id": 7, "label": "1"}',
    ]
    before = path.read_text()

    def failing():
        yield "0"
        raise RuntimeError("killed mid-way")

    with pytest.raises(RuntimeError):
        clue.write_predictions(str(path), examples, failing())
    assert path.read_text() == before and os.listdir(tmp_path) == ["csl_predict.json"]
    with pytest.raises(RuntimeError), atomic_write(str(tmp_path / "new.json")) as f:
        f.write("half")
        raise RuntimeError
    assert not (tmp_path / "new.json").exists()


def test_prediction_splits(synthetic_data, tmp_path):
    assert clue.prediction_splits("tnews", synthetic_data) == [
        ("test", "tnews11_predict.json"),
        ("test1.0", "tnews10_predict.json"),
    ]
    assert clue.prediction_splits("ocnli", synthetic_data) == [("test", "ocnli_50k_predict.json")]
    os.makedirs(tmp_path / "cluewsc2020_public")  # no test1.0.json: only the 1.1 file
    assert clue.prediction_splits("cluewsc2020", str(tmp_path)) == [("test", "cluewsc11_predict.json")]


@pytest.mark.parametrize(
    "batches, gas, epochs, max_steps, expected",
    [
        (10, 1, 3, -1, (30, 3)),
        (10, 4, 3, -1, (9, 3)),  # 4 + 4 + 2 batches: three updates an epoch, none leaking over
        (10, 4, 3, 7, (7, 3)),
        (10, 1, 3, 25, (25, 3)),
        (10, 1, 3, 0, (30, 3)),
    ],
)
def test_plan_steps(batches, gas, epochs, max_steps, expected):
    assert training.plan_steps(batches, gas, epochs, max_steps) == expected
    assert training.plan_steps(10, 1, 3, 0, zero_means_no_steps=True) == (0, 0)


def test_override_dropout(tiny_models):
    import paddle
    from paddlenlp.transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert"], num_classes=2)
    assert speedups.override_dropout(model, 0.0) == 1 + 3 * 2  # embeddings + 3 per encoder layer
    ps = {n: layer.p for n, layer in model.named_sublayers() if isinstance(layer, paddle.nn.Dropout)}
    assert ps["dropout"] == 0.1  # the classifier head keeps its dropout
    assert all(p == 0.0 for n, p in ps.items() if n.startswith("bert."))
    assert all(layer._config["attn_dropout"] == 0.1 for layer in model.bert.encoder.layers)


def test_length_sorted_batches_cover_every_index_once():
    lengths = [5, 1, 9, 3, 3, 7, 2]
    batches = training.length_sorted_batches(lengths, 3)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert [[lengths[i] for i in b] for b in batches] == [[1, 2, 3], [3, 5, 7], [9]]
