"""The submission checker: grid_search_tools/check_submission.py over cluebench/submission_check.py.

The good submission is built from the synthetic test files read raw here (not by the readers the checker
uses), then damaged one way per test."""

import json
import os
import re
import shutil
import zipfile
from types import SimpleNamespace

from cluebench import tasks
from cluebench.grid import submission_check
from helpers import load_script, run_python

import pytest

CHECKER = "grid_search_tools/check_submission.py"
TAG = re.compile(r"#idiom\d{6}#")
OPTIONAL_ABSENT = [
    "MISSING chid10_predict.json (optional: DATA_DIR has no chid_public/test1.0.json)",
    "MISSING c310_predict.json (optional: DATA_DIR has no c3_public/test1.0.json)",
]


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def raw_test_answers(data):
    """{leaderboard name: [(id, choices)]} straight from the synthetic test files, in file order. choices:
    C3's answers per question, CHID's candidates per row, else None."""
    out = {}
    for task in ("afqmc", "tnews", "iflytek", "ocnli", "cmnli", "cluewsc2020", "csl"):
        for split, name in tasks.get(task).predictions.items():
            out[name] = [(r["id"], None) for r in _lines(os.path.join(data, f"{task}_public", f"{split}.json"))]
    with open(os.path.join(data, "cmrc2018_public", "test.json"), encoding="utf-8") as f:
        out["cmrc2018_predict.json"] = [
            (q["id"], None) for a in json.load(f)["data"] for p in a["paragraphs"] for q in p["qas"]
        ]
    with open(os.path.join(data, "c3_public", "test1.1.json"), encoding="utf-8") as f:
        out["c311_predict.json"] = [(q["id"], len(q["choice"])) for doc in json.load(f) for q in doc[1]]
    out["chid11_predict.json"] = [
        (tag, len(r["candidates"]))
        for r in _lines(os.path.join(data, "chid_public", "test1.1.json"))
        for p in r["content"]
        for tag in TAG.findall(p)
    ]
    return out


@pytest.fixture(scope="module")
def good(synthetic_data):
    """files: {name: text} of a valid submission for every test file of the synthetic data; ids: {name: [ids]}."""
    answers = raw_test_answers(synthetic_data)
    files = {}
    for name, items in answers.items():
        task, _ = submission_check.LEADERBOARD[name]
        if task == "cmrc2018":  # as run_cmrc2018.py writes it
            files[name] = json.dumps({i: "答案" for i, _ in items}, ensure_ascii=False, indent=4) + "\n"
        elif task == "chid":  # as run_chid.py writes it
            files[name] = json.dumps({tag: k % n for k, (tag, n) in enumerate(items)}, indent=2) + "\n"
        else:
            labels = tasks.get(task).labels
            files[name] = "".join(
                json.dumps({"id": i, "label": k % n if task == "c3" else labels[k % len(labels)]}) + "\n"
                for k, (i, n) in enumerate(items)
            )
    return SimpleNamespace(
        files=files,
        ids={name: [i for i, _ in items] for name, items in answers.items()},
        choices={name: [n for _, n in items] for name, items in answers.items()},
    )


def test_the_synthetic_test_files_have_the_expected_sizes(good):
    sizes = {name: len(ids) for name, ids in good.ids.items()}
    assert sizes == {
        "afqmc_predict.json": 24,
        "tnews11_predict.json": 24,
        "tnews10_predict.json": 24,
        "iflytek_predict.json": 24,
        "ocnli_50k_predict.json": 24,
        "cmnli_predict.json": 24,
        "cluewsc11_predict.json": 24,
        "cluewsc10_predict.json": 24,
        "csl_predict.json": 24,
        "cmrc2018_predict.json": 16,
        "c311_predict.json": sizes["c311_predict.json"],
        "chid11_predict.json": sizes["chid11_predict.json"],
    }
    assert 6 <= sizes["c311_predict.json"] <= 12 and sizes["chid11_predict.json"] >= 3
    assert min(good.choices["c311_predict.json"]) < 4  # a question with fewer choices, for the C3 damage


def ok_lines(ids):
    return sorted(f"OK  {name}  {len(i)} {'blanks' if name.startswith('chid') else 'ids'}" for name, i in ids.items())


def write_dir(path, files):
    os.makedirs(path, exist_ok=True)
    for name, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(path, name)), exist_ok=True)
        with open(os.path.join(path, name), "w", encoding="utf-8") as f:
            f.write(text)
    return str(path)


def write_zip(path, files):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return str(path)


def check(capsys, *argv):
    """(exit code, stdout lines, stderr) of submission_check.main(argv)."""
    code = submission_check.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.mark.parametrize("form", ["dir", "zip"])
def test_a_good_submission_passes(form, good, synthetic_data, tmp_path, capsys):
    path = write_dir(tmp_path / "sub", good.files) if form == "dir" else write_zip(tmp_path / "sub.zip", good.files)
    code, lines, err = check(capsys, path, "--data_dir", synthetic_data)
    assert code == 0, lines
    assert lines == ok_lines(good.ids) + OPTIONAL_ABSENT + ["12 files OK, 0 failed"]
    assert "OK  afqmc_predict.json  24 ids" in lines and err == ""
    # the 1.0 files of C3 and CHID are optional: DATA_DIR has none, nor do our scripts write them
    assert check(capsys, path, "--data_dir", synthetic_data, "--strict")[0] == 0


def test_a_missing_file_fails_only_with_strict(good, synthetic_data, tmp_path, capsys):
    files = {n: t for n, t in good.files.items() if n != "afqmc_predict.json"}
    path = write_dir(tmp_path / "sub", files)
    code, lines, _ = check(capsys, path, "--data_dir", synthetic_data)
    assert code == 0 and "MISSING afqmc_predict.json" in lines and lines[-1] == "11 files OK, 0 failed"
    code, lines, _ = check(capsys, path, "--data_dir", synthetic_data, "--strict")
    assert code == 1 and "FAIL afqmc_predict.json: missing from the submission (--strict)" in lines
    assert lines[-1] == "11 files OK, 1 failed"


def test_string_ids_are_the_integer_ids(good, synthetic_data, tmp_path, capsys):
    """0 and "0" are one id to the leaderboard."""
    name = "tnews11_predict.json"
    text = "".join(json.dumps({**r, "id": str(r["id"])}) + "\n" for r in map(json.loads, good.files[name].splitlines()))
    code, lines, _ = check(
        capsys, write_dir(tmp_path / "sub", {**good.files, name: text}), "--data_dir", synthetic_data
    )
    assert code == 0 and "OK  tnews11_predict.json  24 ids" in lines


def _edit_lines(text, edit):
    lines = text.splitlines()
    edit(lines)
    return "\n".join(lines) + "\n"


def _set(lines, k, **fields):
    lines[k] = json.dumps({**json.loads(lines[k]), **fields})


def missing_id(files, good):
    files["afqmc_predict.json"] = _edit_lines(files["afqmc_predict.json"], lambda ls: ls.pop(2))
    return [
        f"FAIL afqmc_predict.json: 1 of the 24 ids of afqmc_public/test.json missing (first: "
        f"{good.ids['afqmc_predict.json'][2]})"
    ]


def duplicate_id(files, good):
    files["tnews11_predict.json"] = _edit_lines(files["tnews11_predict.json"], lambda ls: ls.append(ls[0]))
    first = good.ids["tnews11_predict.json"][0]
    return [f"FAIL tnews11_predict.json: line 25: duplicate id {first} (first on line 1)"]


def extra_id(files, good):
    assert 99999 not in good.ids["csl_predict.json"]
    files["csl_predict.json"] += json.dumps({"id": 99999, "label": "0"}) + "\n"
    return ["FAIL csl_predict.json: line 25: id 99999 is not in csl_public/test.json"]


def bad_label(files, good):
    files["ocnli_50k_predict.json"] = _edit_lines(
        files["ocnli_50k_predict.json"], lambda ls: _set(ls, 1, label="maybe")
    )
    return [
        f'FAIL ocnli_50k_predict.json: line 2: id {good.ids["ocnli_50k_predict.json"][1]}: label "maybe" is not '
        "one of the 3 ocnli labels (strings: entailment, contradiction, neutral)"
    ]


def integer_label(files, good):
    files["iflytek_predict.json"] = _edit_lines(files["iflytek_predict.json"], lambda ls: _set(ls, 0, label=5))
    return [
        f"FAIL iflytek_predict.json: line 1: id {good.ids['iflytek_predict.json'][0]}: label 5 is not one of the "
        "119 iflytek labels (strings: 0 to 118)"
    ]


def c3_index_past_choices(files, good):
    k = next(k for k, n in enumerate(good.choices["c311_predict.json"]) if n < 4)
    n = good.choices["c311_predict.json"][k]
    files["c311_predict.json"] = _edit_lines(files["c311_predict.json"], lambda ls: _set(ls, k, label=n))
    return [
        f"FAIL c311_predict.json: line {k + 1}: id {good.ids['c311_predict.json'][k]}: label {n} is not an index "
        f"into its {n} choices (0 to {n - 1})"
    ]


def chid_blank_left_out(files, good):
    answers = json.loads(files["chid11_predict.json"])
    tag = good.ids["chid11_predict.json"][1]
    del answers[tag]
    files["chid11_predict.json"] = json.dumps(answers, indent=2)
    return [
        f"FAIL chid11_predict.json: 1 of the {len(good.ids['chid11_predict.json'])} blanks of "
        f'chid_public/test1.1.json missing (first: "{tag}")'
    ]


def chid_index_past_candidates(files, good):
    answers = json.loads(files["chid11_predict.json"])
    tag = good.ids["chid11_predict.json"][2]
    answers[tag] = 10
    files["chid11_predict.json"] = json.dumps(answers, indent=2)  # key k is on line k + 2
    return [
        f'FAIL chid11_predict.json: line 4: blank "{tag}": label 10 is not an index into its 10 candidates (0 to 9)'
    ]


def cmrc_duplicate_question(files, good):
    first = good.ids["cmrc2018_predict.json"][0]
    files["cmrc2018_predict.json"] = _edit_lines(
        files["cmrc2018_predict.json"], lambda ls: ls.insert(1, f'    "{first}": "另一个",')
    )
    return [f'FAIL cmrc2018_predict.json: line 3: duplicate id "{first}" (first on line 2)']


def wrong_name(files, good):
    files["tnews_predict.json"] = files.pop("tnews11_predict.json")
    return [
        "FAIL tnews_predict.json: not a CLUE leaderboard file name (did you mean tnews11_predict.json or "
        "tnews10_predict.json?)",
        "MISSING tnews11_predict.json",
    ]


def fewclue_name(files, good):
    files["bustm_predict.json"] = files["afqmc_predict.json"]
    return ["FAIL bustm_predict.json: not a CLUE leaderboard file name"]


def jsonl_not_json(files, good):
    files["afqmc_predict.json"] = _edit_lines(
        files["afqmc_predict.json"], lambda ls: ls.__setitem__(4, ls[4].rstrip("}"))
    )
    return [
        "FAIL afqmc_predict.json: line 5: not valid JSON (Expecting ',' delimiter, column "
        f"{len(json.dumps({'id': good.ids['afqmc_predict.json'][4], 'label': '0'}))})",
        f"FAIL afqmc_predict.json: 1 of the 24 ids of afqmc_public/test.json missing (first: "
        f"{good.ids['afqmc_predict.json'][4]})",
    ]


def object_not_json(files, good):
    text = files["cmrc2018_predict.json"].rstrip()[:-1].rstrip()  # the closing brace cut off
    files["cmrc2018_predict.json"] = text
    return [
        f"FAIL cmrc2018_predict.json: line {text.count(chr(10)) + 1}: not valid JSON (Expecting ',' or '}}', "
        f"column {len(text.splitlines()[-1]) + 1}); expected one object {{question id: answer}}"
    ]


def jsonl_for_an_object(files, good):
    files["chid11_predict.json"] = "".join(
        json.dumps({"id": t, "label": 0}) + "\n" for t in good.ids["chid11_predict.json"]
    )
    return [
        "FAIL chid11_predict.json: line 2: not valid JSON (Extra data after the object, column 1); expected one "
        "object {blank tag: candidate index}"
    ]


def absent_test_file(files, good):
    files["c310_predict.json"] = files["c311_predict.json"]
    return ["FAIL c310_predict.json: cannot check it: DATA_DIR has no c3_public/test1.0.json"]


DAMAGES = [
    missing_id,
    duplicate_id,
    extra_id,
    bad_label,
    integer_label,
    c3_index_past_choices,
    chid_blank_left_out,
    chid_index_past_candidates,
    cmrc_duplicate_question,
    wrong_name,
    fewclue_name,
    jsonl_not_json,
    object_not_json,
    jsonl_for_an_object,
    absent_test_file,
]


@pytest.mark.parametrize("form", ["dir", "zip"])
@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_a_damaged_submission_fails_naming_file_and_line(damage, form, good, synthetic_data, tmp_path, capsys):
    files = dict(good.files)
    expected = damage(files, good)
    path = write_dir(tmp_path / "sub", files) if form == "dir" else write_zip(tmp_path / "sub.zip", files)
    code, lines, _ = check(capsys, path, "--data_dir", synthetic_data)
    assert code == 1
    assert [line for line in lines if line.startswith("FAIL") or line in expected and line.startswith("MISSING")] == [
        line for line in expected
    ], lines
    failed = {line.split()[1].rstrip(":") for line in expected if line.startswith("FAIL")}
    assert len(failed) == 1
    # every other file still passes, with its count
    assert [line for line in lines if line.startswith("OK")] == [
        line for line in ok_lines(good.ids) if line.split()[1] in files and line.split()[1] not in failed
    ]
    assert lines[-1] == f"{sum(line.startswith('OK') for line in lines)} files OK, 1 failed"


def test_many_problems_are_counted_past_the_first_ten(good, synthetic_data, tmp_path, capsys):
    bad = "".join(json.dumps({"id": i, "label": "none"}) + "\n" for i in good.ids["csl_predict.json"])
    code, lines, _ = check(
        capsys, write_dir(tmp_path / "sub", {**good.files, "csl_predict.json": bad}), "--data_dir", synthetic_data
    )
    failures = [line for line in lines if line.startswith("FAIL csl_predict.json: ")]
    assert code == 1 and len(failures) == 11 and failures[-1] == "FAIL csl_predict.json: ... and 14 more problems"
    assert failures[0] == (
        f'FAIL csl_predict.json: line 1: id {good.ids["csl_predict.json"][0]}: label "none" is '
        "not one of the 2 csl labels (strings: 0, 1)"
    )


def test_a_nested_path_in_the_zip_fails(good, synthetic_data, tmp_path, capsys):
    files = {n: t for n, t in good.files.items() if n != "afqmc_predict.json"}
    files["sub/afqmc_predict.json"] = good.files["afqmc_predict.json"]
    code, lines, _ = check(capsys, write_zip(tmp_path / "sub.zip", files), "--data_dir", synthetic_data)
    assert code == 1
    assert "FAIL sub/afqmc_predict.json: a nested path; the leaderboard wants every file at the top of the zip" in lines
    assert "MISSING afqmc_predict.json" in lines and lines[-1] == "11 files OK, 1 failed"
    # a folder submitted with a sub-folder: the same failure
    code, lines, _ = check(capsys, write_dir(tmp_path / "dir", files), "--data_dir", synthetic_data)
    assert (
        code == 1
        and "FAIL sub/afqmc_predict.json: a nested path; the leaderboard wants every file at the top of the zip"
        in lines
    )


def test_a_file_twice_in_the_zip_fails(good, synthetic_data, tmp_path, capsys):
    path = write_zip(tmp_path / "sub.zip", good.files)
    with zipfile.ZipFile(path, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("csl_predict.json", good.files["csl_predict.json"])
    code, lines, _ = check(capsys, path, "--data_dir", synthetic_data)
    assert code == 1 and "FAIL csl_predict.json: is in the zip twice" in lines


def test_usage_errors_exit_2(good, synthetic_data, tmp_path, capsys):
    sub = write_dir(tmp_path / "sub", good.files)
    (tmp_path / "notes.txt").write_text("not a zip")
    (tmp_path / "empty").mkdir()
    cases = [
        ((tmp_path / "nope.zip", "--data_dir", synthetic_data), "no such zip file or folder"),
        ((tmp_path / "notes.txt", "--data_dir", synthetic_data), "neither a zip file nor a folder"),
        ((sub, "--data_dir", tmp_path / "nowhere"), "no such folder"),
        ((sub, "--data_dir", tmp_path / "empty"), "holds no <task>_public/ folder"),
    ]
    for argv, message in cases:
        code, lines, err = check(capsys, *argv)
        assert (code, lines) == (2, []) and err.startswith("check_submission.py: error: ") and message in err, err
    code, _, err = check(capsys, sub)  # no --data_dir
    assert code == 2 and "--data_dir" in err


@pytest.mark.slow  # a subprocess run
def test_the_script_runs(good, synthetic_data, tmp_path):
    sub = write_dir(tmp_path / "sub", good.files)
    proc = run_python([CHECKER, sub, "--data_dir", synthetic_data], timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ok_lines(good.ids) + OPTIONAL_ABSENT + ["12 files OK, 0 failed"]
    os.remove(os.path.join(sub, "csl_predict.json"))
    proc = run_python([CHECKER, sub, "--data_dir", synthetic_data, "--strict"], timeout=300)
    assert proc.returncode == 1 and "FAIL csl_predict.json: missing from the submission (--strict)" in proc.stdout


# ---------------------------------------------------------------- real files ($CLUE_DATA_DIR)
REAL = {
    "afqmc_predict.json": 3861,
    "csl_predict.json": 3000,
    "ocnli_50k_predict.json": 3000,
    "cmrc2018_predict.json": 2000,
    "c311_predict.json": 3892,
}


@pytest.fixture(scope="module")
def real_submission(clue_data, real_vocab_model, tmp_path_factory):
    """A folder of the five prediction files made by predict-only runs of the real scripts (tiny model)."""
    root = tmp_path_factory.mktemp("real-submission")
    sub = root / "submission"
    sub.mkdir()
    classifier = load_script("classification/run_clue_classifier.py")
    for task in ("afqmc", "csl", "ocnli"):
        classifier.main(
            [
                "--task_name",
                task,
                "--do_predict",
                "--device",
                "cpu",
                "--model_name_or_path",
                real_vocab_model,
                "--data_dir",
                clue_data,
                "--output_dir",
                str(root / task),
                "--batch_size",
                "64",
                "--max_seq_length",
                "128",
            ]
        )
    for task in ("cmrc2018", "c3"):
        load_script(f"mrc/run_{task}.py").main(
            [
                "--do_predict",
                "--device",
                "cpu",
                "--model_name_or_path",
                real_vocab_model,
                "--data_dir",
                clue_data,
                "--output_dir",
                str(root / task),
                "--cache_dir",
                str(root / "cache"),
                "--max_seq_length",
                "128",
                "--eval_batch_size",
                "64",
            ]
        )
    for task in ("afqmc", "csl", "ocnli", "cmrc2018", "c3"):
        for name in tasks.get(task).predictions.values():
            if os.path.exists(root / task / name):  # each run's folder also holds its lock and results record
                shutil.copy(root / task / name, sub / name)
    return sub


def _c3_padding_picks(clue_data, submission):
    """The checker's lines for C3 answers past the question's own choices (run_c3.py once picked the padding it
    adds to reach four), computed from the raw test file."""
    with open(os.path.join(clue_data, "c3_public", "test1.1.json"), encoding="utf-8") as f:
        choices = {q["id"]: len(q["choice"]) for doc in json.load(f) for q in doc[1]}
    return [
        f"FAIL c311_predict.json: line {k}: id {r['id']}: label {r['label']} is not an index into its "
        f"{choices[r['id']]} choices (0 to {choices[r['id']] - 1})"
        for k, r in enumerate(_lines(submission / "c311_predict.json"), start=1)
        if r["label"] >= choices[r["id"]]
    ]


@pytest.mark.slow
def test_real_predictions_pass_with_the_test_files_counts(clue_data, real_submission, tmp_path, capsys):
    assert sorted(os.listdir(real_submission)) == sorted(REAL)
    # the counts, read raw from the test files
    assert len(_lines(os.path.join(clue_data, "afqmc_public", "test.json"))) == 3861
    assert len(_lines(os.path.join(clue_data, "csl_public", "test.json"))) == 3000
    assert len(_lines(os.path.join(clue_data, "ocnli_public", "test.json"))) == 3000
    with open(os.path.join(clue_data, "cmrc2018_public", "test.json"), encoding="utf-8") as f:
        assert sum(len(p["qas"]) for a in json.load(f)["data"] for p in a["paragraphs"]) == 2000
    with open(os.path.join(clue_data, "c3_public", "test1.1.json"), encoding="utf-8") as f:
        assert sum(len(doc[1]) for doc in json.load(f)) == 3892

    # every answer valid: the C3 ones among each question's own choices, never the reader's padding
    code, lines, _ = check(capsys, real_submission, "--data_dir", clue_data)
    assert [line for line in lines if line.startswith(("OK", "FAIL"))] == sorted(
        f"OK  {name}  {n} ids" for name, n in REAL.items()
    )
    assert code == 0 and lines[-1] == f"{len(REAL)} files OK, 0 failed"
    assert _c3_padding_picks(clue_data, real_submission) == []

    # with --strict the leaderboard files not made here fail, tnews11 among them (this data has no TNEWS test)
    code, lines, _ = check(capsys, real_submission, "--data_dir", clue_data, "--strict")
    assert code == 1 and "FAIL tnews11_predict.json: missing from the submission (--strict)" in lines

    # the same files zipped, one C3 answer dropped
    c3 = _lines(real_submission / "c311_predict.json")
    dropped = c3.pop()["id"]
    files = {name: (real_submission / name).read_text(encoding="utf-8") for name in REAL}
    files["c311_predict.json"] = "".join(json.dumps(r) + "\n" for r in c3)
    code, lines, _ = check(capsys, write_zip(tmp_path / "real.zip", files), "--data_dir", clue_data)
    assert code == 1 and [line for line in lines if line.startswith("FAIL")] == [
        f"FAIL c311_predict.json: 1 of the 3892 ids of c3_public/test1.1.json missing (first: {dropped})"
    ]
    assert [line for line in lines if line.startswith("OK")] == sorted(
        f"OK  {name}  {n} ids" for name, n in REAL.items() if name != "c311_predict.json"
    )
