"""Hostile input to the reading-comprehension scripts and readers.

Each case ends the run with one line `error: FILE[:LINE][: field 'F']: message` and exit status 2,
before the first training step and before anything is written to the output directory.
"""

import json
import os
import shutil

from cluebench import results
from cluebench.fileio import DataError
from cluebench.tasks import reading as mrc
from cluebench.train import setup as cli
from helpers import load_script, run_python

import pytest

TASKS = ("cmrc2018", "c3", "chid")
SCRIPTS = {task: load_script(f"mrc/run_{task}.py") for task in TASKS}
CHID_NO_BLANKS = "no blanks found (expected JSON lines of {candidates, content} with #idiomNNNNNN# tags in the content)"


@pytest.fixture
def data(synthetic_data, tmp_path):
    """A copy of the synthetic reading-comprehension data for this test to spoil."""
    for task in ("cmrc2018", "c3", "chid"):
        shutil.copytree(os.path.join(synthetic_data, f"{task}_public"), tmp_path / "data" / f"{task}_public")
    return tmp_path / "data"


def path_of(data, task, split, k=0):
    return mrc.split_files(task, split, str(data))[k]


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dump(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)


def edit_line(path, number, change):
    """Apply change(record) to JSON line `number` (1-based) of a JSON-lines file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    record = json.loads(lines[number - 1])
    change(record)
    lines[number - 1] = json.dumps(record, ensure_ascii=False)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def argv(task, model, data, out, *extra):
    """Training (and with --do_predict, prediction) of two steps at most: tiny, and fast if it got that far."""
    return [
        "--model_name_or_path",
        model,
        "--data_dir",
        str(data),
        "--device",
        "cpu",
        "--output_dir",
        str(out),
        "--cache_dir",
        str(out.parent / "cache"),
        "--max_seq_length",
        "64",
        "--batch_size",
        "4",
        "--gradient_accumulation_steps",
        "1",
        "--do_train",
        "--max_steps",
        "2",
        "--logging_steps",
        "1",
        *extra,
    ]


@pytest.fixture
def fails(tiny_models, data, tmp_path, capsys, log_lines):
    """fails(task, *flags) runs the script as `python run_TASK.py` would (setup.exit_cleanly) and returns its one error
    line, having checked exit status 2, no training step and an output directory absent or empty."""

    def run(task, *flags):
        out = tmp_path / "out"
        with pytest.raises(SystemExit) as stop:
            cli.exit_cleanly(lambda: SCRIPTS[task].main(argv(task, tiny_models["ernie"], data, out, *flags)))
        assert stop.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, errors
        assert not any("global step" in line or "eval " in line for line in log_lines())
        assert not out.exists() or os.listdir(out) == []
        return errors[0]

    return run


def test_doc_stride_zero(fails):
    # it used to loop forever over the windows of the first context while memory grew
    assert (
        fails("cmrc2018", "--doc_stride", "0")
        == "error: --doc_stride 0: must be at least 1 (the tokens between two window starts)"
    )


@pytest.mark.parametrize(
    "length, message",
    [
        ("0", "must be at least 1"),
        ("1024", "exceeds the 512 positions of {model} (max_position_embeddings)"),
        ("6", "is too short for this task (at least 7)"),
    ],
)
def test_max_seq_length(length, message, fails, tiny_models):
    expected = f"error: --max_seq_length {length}: " + message.format(model=tiny_models["ernie"])
    assert fails("c3", "--max_seq_length", length) == expected


def test_cache_directory_is_a_file(fails, tmp_path):
    (tmp_path / "cache").write_text("")
    assert fails("c3") == f"error: {tmp_path / 'cache'}: cache directory is a file, not a directory"


def test_chid_row_of_seven_candidates(fails, data, tmp_path):
    # the model scores 10: a row of 7 misaligned the features, the loader died and the run hung
    path = path_of(data, "chid", "train")
    edit_line(path, 2, lambda r: r.update(candidates=r["candidates"][:7]))
    assert fails("chid") == f"error: {path}:2: field 'candidates': expected 10 candidates, got 7"
    cache = tmp_path / "cache"
    assert not cache.exists() or not [n for n in os.listdir(cache) if n.endswith(".npz")]  # nothing bad cached


def test_chid_content_as_a_string(fails, data):
    # a string used to be read character by character: its blanks were silently dropped
    path = path_of(data, "chid", "dev")
    edit_line(path, 1, lambda r: r.update(content="".join(r["content"])))
    assert fails("chid") == f"error: {path}:1: field 'content': expected a list of strings, got a string"


def test_duplicate_chid_test_tags(fails, data):
    path = path_of(data, "chid", "test1.1")
    with open(path, encoding="utf-8") as f:
        first_tag = mrc.CHID_TAG.findall(f.readline())[0]
    edit_line(
        path, 2, lambda r: r.update(content=[mrc.CHID_TAG.sub(first_tag, r["content"][0], count=1)] + r["content"][1:])
    )
    assert first_tag == "#idiom577157#"
    assert (
        fails("chid", "--do_predict")
        == f"error: {path}:2: field 'content': blank #idiom577157# is used twice (first at line 1)"
    )


def test_duplicate_cmrc2018_test_ids(fails, data):
    # predictions are a JSON object keyed by id: the second answer used to overwrite the first
    path = path_of(data, "cmrc2018", "test")
    test = load(path)
    test["data"][1]["paragraphs"][0]["qas"][0]["id"] = "TEST_0_QUERY_0"
    dump(path, test)
    assert fails("cmrc2018", "--do_predict") == (
        f"error: {path}: field 'id': article 1, paragraph 0, question 0: id 'TEST_0_QUERY_0' is used twice "
        f"(first at article 0, paragraph 0, question 0)"
    )


def test_c3_test_question_without_id(fails, data):
    # its id used to be invented ("test1.1.json:0:0"), which the leaderboard cannot match
    path = path_of(data, "c3", "test1.1")
    test = load(path)
    del test[0][1][0]["id"]
    dump(path, test)
    assert fails("c3", "--do_predict") == f"error: {path}: field 'id': document 0, question 0: missing"


def test_duplicate_c3_test_ids(fails, data):
    path = path_of(data, "c3", "test1.1")
    test = load(path)
    test[2][1][0]["id"] = test[0][1][0]["id"]
    dump(path, test)
    assert test[0][1][0]["id"] == 500
    assert fails("c3", "--do_predict") == (
        f"error: {path}: field 'id': document 2, question 0: id 500 is used twice (first at document 0, question 0)"
    )


@pytest.mark.parametrize("count", [5, 0])
def test_c3_choice_count(count, fails, data):
    # a fifth choice used to be cut silently (and with it, maybe, the answer)
    path = path_of(data, "c3", "train", 1)
    train = load(path)
    question = train[1][1][0]
    question["choice"] = (question["choice"] + ["甲", "乙", "丙", "丁", "戊"])[:count]
    dump(path, train)
    assert fails("c3") == f"error: {path}: field 'choice': document 1, question 0: expected 1 to 4 choices, got {count}"


@pytest.mark.parametrize(
    "task, content, message",
    [
        (
            "cmrc2018",
            '{"version": "v1.0", "data": []}',
            "no questions found (expected SQuAD-style {'data': [{'paragraphs': ...}]})",
        ),
        ("c3", "", "empty file"),
        ("c3", "[]", "no questions found"),
        ("chid", "", CHID_NO_BLANKS),
    ],
)
def test_empty_test_file(task, content, message, fails, data):
    path = path_of(data, task, "test" if task == "cmrc2018" else "test1.1")
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)
    assert fails(task, "--do_predict") == f"error: {path}: {message}"


def test_empty_train_split(fails, data):
    for path in mrc.split_files("c3", "train", str(data)):
        dump(path, [])
    assert fails("c3") == f"error: {path_of(data, 'c3', 'train')}: no questions found (nor in m-train.json)"


def test_invalid_utf8_in_a_json_lines_train_file(fails, data):
    path = path_of(data, "chid", "train")
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    lines[2] = lines[2][:20] + b"\xff" + lines[2][20:]
    with open(path, "wb") as f:
        f.write(b"\n".join(lines))
    assert fails("chid") == f"error: {path}:3: not valid UTF-8 (byte 0xff at byte 21 of the line)"


def test_invalid_utf8_in_a_json_train_file(fails, data):
    path = path_of(data, "c3", "train")
    train = load(path)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(train, f, ensure_ascii=False, indent=1)
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    lines[5] = b"\xff" + lines[5]
    with open(path, "wb") as f:
        f.write(b"\n".join(lines))
    assert fails("c3") == f"error: {path}:6: not valid UTF-8 (byte 0xff at column 1)"


def test_truncated_json_file(fails, data):
    path = path_of(data, "cmrc2018", "dev")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert "\n" not in text
    cut = text[: text.rindex(", ") + 1]  # cut after a comma, as a copy interrupted there
    with open(path, "w", encoding="utf-8") as f:
        f.write(cut)
    # one line: the column is the one after the last character kept
    assert fails("cmrc2018") == f"error: {path}:1: truncated JSON, column {len(cut) + 1}"


@pytest.mark.slow  # a subprocess
def test_bad_test_file_stops_the_run_before_training(tiny_models, data, tmp_path):
    """As a user runs it: one error line, status 2, no traceback; no step, no record, nothing in the output."""
    path = path_of(data, "cmrc2018", "test")
    test = load(path)
    del test["data"][2]["paragraphs"][0]["qas"][1]["question"]
    dump(path, test)
    out = tmp_path / "out"
    proc = run_python(
        ["mrc/run_cmrc2018.py"]
        + argv("cmrc2018", tiny_models["ernie"], data, out, "--do_predict", "--doc_stride", "32"),
        timeout=300,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.rstrip().splitlines()[-1]
        == f"error: {path}: field 'question': article 2, paragraph 0, question 1: missing"
    )
    assert "Traceback" not in proc.stderr and "global step" not in proc.stdout + proc.stderr
    assert not out.exists() or os.listdir(out) == []
    assert not os.path.exists(os.path.join(out, results.FILENAME))


# ---------------------------------------------------------------- readers, on hand-made files
def cmrc_file(**qa):
    return {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": "甲乙丙丁",
                        "qas": [
                            dict(
                                {"id": "D_0", "question": "问？", "answers": [{"text": "乙丙", "answer_start": 1}]},
                                **qa,
                            )
                        ],
                    }
                ]
            }
        ]
    }


def c3_file(**item):
    return [[["男：你好"], [dict({"question": "问？", "choice": ["甲", "乙"], "answer": "甲"}, **item)], "1-1"]]


@pytest.mark.parametrize(
    "obj, labelled, message",
    [
        (cmrc_file(id=None), True, "field 'id': article 0, paragraph 0, question 0: expected a string, got null"),
        (
            cmrc_file(question=["问"]),
            False,
            "field 'question': article 0, paragraph 0, question 0: expected a string, got a list",
        ),
        (cmrc_file(answers=[]), True, "field 'answers': question D_0: no answer"),
        (cmrc_file(answers=[{"answer_start": 1}]), True, "field 'text': question D_0, answer 0: missing"),
        (
            {"data": [{"paragraphs": [{"context": "甲乙丙丁", "qas": [{"question": "问？"}]}]}]},
            False,
            "field 'id': article 0, paragraph 0, question 0: missing",
        ),
        (
            {"data": [{"paragraphs": {"context": "甲"}}]},
            False,
            "field 'paragraphs': article 0: expected a list, got an object",
        ),
        ([], False, "field 'data': expected SQuAD-style JSON {'data': [{'paragraphs': ...}]}"),
    ],
)
def test_cmrc_reader(obj, labelled, message, tmp_path):
    path = str(tmp_path / "dev.json")
    dump(path, obj)
    with pytest.raises(DataError) as e:
        mrc.read_cmrc(path, check_starts=False, labelled=labelled)
    assert str(e.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    "obj, labelled, message",
    [
        ([{"turns": []}], True, "document 0: expected [turns, questions, document id], got an object"),
        ([[["甲"]]], True, "document 0: expected [turns, questions, document id], got a list of 1"),
        ([["甲", [], "1"]], True, "field 'turns': document 0: expected a list of strings, got a string"),
        (
            c3_file(choice="甲乙"),
            True,
            "field 'choice': document 0, question 0: expected a list of strings, got a string",
        ),
        (
            c3_file(choice=["甲", 2]),
            True,
            "field 'choice': document 0, question 0: expected a list of strings, item 1 is an integer",
        ),
        (c3_file(question=7), True, "field 'question': document 0, question 0: expected a string, got an integer"),
        (
            c3_file(answer="丙"),
            True,
            "field 'answer': document 0, question 0: answer '丙' is not among the choices ['甲', '乙']",
        ),
        (c3_file(id=True), False, "field 'id': document 0, question 0: expected an integer or a string, got a boolean"),
        ({"documents": []}, True, "expected a list of [turns, questions, document id] records, got an object"),
    ],
)
def test_c3_reader(obj, labelled, message, tmp_path):
    path = str(tmp_path / "c3.json")
    dump(path, obj)
    with pytest.raises(DataError) as e:
        mrc.read_c3([path], labelled=labelled)
    assert str(e.value) == f"{path}: {message}"


def test_c3_reader_keeps_test_ids_and_pads_choices(tmp_path):
    path = str(tmp_path / "test1.1.json")
    dump(
        path,
        [
            [
                ["男：你好"],
                [
                    {"question": "问？", "choice": ["甲", "乙", "丙"], "id": 7},
                    {"question": "问？", "choice": ["丁"], "id": "x8"},
                ],
            ]
        ],
    )
    examples = mrc.read_c3([path], labelled=False)
    assert [(e.id, e.choices, e.label) for e in examples] == [
        (7, ["甲", "乙", "丙", mrc.C3_FILLER], None),
        ("x8", ["丁", mrc.C3_FILLER, mrc.C3_FILLER, mrc.C3_FILLER], None),
    ]


ROW = {"candidates": ["甲乙丙丁"] * 10, "content": ["前#idiom000005#后"]}


@pytest.mark.parametrize(
    "rows, answers, message",
    [
        (
            [dict(ROW, candidates="甲乙丙丁")],
            {},
            "{rows}:1: field 'candidates': expected a list of strings, got a string",
        ),
        (
            [dict(ROW, candidates=["甲乙丙丁"] * 9 + [3])],
            {},
            "{rows}:1: field 'candidates': expected a list of strings, item 9 is an integer",
        ),
        ([{"content": ROW["content"]}], {}, "{rows}:1: field 'candidates': missing"),
        (
            [dict(ROW, content=["前#idiom000005#后#idiom000005#"])],
            {"#idiom000005#": 1},
            "{rows}:1: field 'content': blank #idiom000005# is used twice (first at line 1)",
        ),
        (
            [dict(ROW, content=["前#idiom#后"])],
            {},
            "{rows}:1: field 'content': '#idiom#' is not a blank tag (#idiom and six digits, then #)",
        ),
        (
            [dict(ROW, content=["前#idiom57715#后#idiom000005#"])],
            {"#idiom000005#": 1},
            "{rows}:1: field 'content': '#idiom57715#' is not a blank tag (#idiom and six digits, then #)",
        ),
        ([dict(ROW, candidates=["甲乙丙丁"] * 9 + [" "])], {}, "{rows}:1: field 'candidates': an empty candidate"),
        ([ROW], ["#idiom000005#"], "{answers}: expected an object of blank tag -> candidate index, got a list"),
        (
            [ROW],
            {"#idiom000005#": "1"},
            "{answers}: field '#idiom000005#': blank #idiom000005#: answer '1' is not a candidate index (an integer)",
        ),
        (
            [ROW],
            {"#idiom000005#": 10},
            "{answers}: field '#idiom000005#': blank #idiom000005#: answer 10 is outside the 10 candidates",
        ),
    ],
)
def test_chid_reader(rows, answers, message, tmp_path):
    paths = [str(tmp_path / "train.json"), str(tmp_path / "train_answer.json")]
    with open(paths[0], "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    dump(paths[1], answers)
    with pytest.raises(DataError) as e:
        mrc.read_chid(paths, labelled=True)
    assert str(e.value) == message.replace("{rows}", paths[0]).replace("{answers}", paths[1])


@pytest.mark.parametrize("task", TASKS)
def test_nothing_to_do_names_only_flags_the_script_has(task, data, tiny_models, tmp_path, capsys):
    """The reading-comprehension scripts have no --do_eval: the line must not ask for it (it once did), and
    it is the one line and exit status 2 of `python run_TASK.py`."""
    with pytest.raises(SystemExit) as stop:
        cli.exit_cleanly(
            lambda: SCRIPTS[task].main(
                [
                    "--model_name_or_path",
                    tiny_models["ernie"],
                    "--data_dir",
                    str(data),
                    "--device",
                    "cpu",
                    "--output_dir",
                    str(tmp_path / "out"),
                ]
            )
        )
    assert stop.value.code == 2
    assert (
        capsys.readouterr().err.splitlines()[-1] == "error: flags: nothing to do: give --do_train and/or --do_predict"
    )
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as stop:  # and argparse refuses the flag it has not
        SCRIPTS[task].parse_args(["--model_name_or_path", tiny_models["ernie"], "--do_eval"])
    assert stop.value.code == 2
