"""The leaderboard (cluebench.leaderboard): both tables across the models of a fake grid root, the published
rows beside ours, sorting, the files written, and the one-line refusals."""

import json
import os

from cluebench import results
from cluebench.grid import leaderboard, report
from helpers import run_python
from test_report import LOG_LINE, fake_run, write_job, write_log

import pytest
from PIL import Image

OUTPUTS = ["leaderboard.csv", "leaderboard.md", "leaderboard.png", "leaderboard_hyperparameters.csv"]
DASHES = " | -" * 9  # nine tasks without a result, after the one a row has


def local_model(folder, layers, hidden, name="config.json"):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w") as f:
        json.dump({"num_hidden_layers": layers, "hidden_size": hidden, "vocab_size": 100}, f)
    return str(folder)


def named(directory, model):
    """Say in every record of a run folder that the grid ran `model` (test_report's write_job names a built-in)."""
    for task in os.listdir(directory):
        for name in os.listdir(os.path.join(directory, task)):
            path = os.path.join(directory, task, name)
            record = results.read_record(path) if name.endswith(".json") else None
            if record:
                record["model"] = model
                results.write_record(path, record)


BERT = {
    "afqmc": "75.63",
    "tnews": "58.13",
    "iflytek": "62.29",
    "cmnli": "81.97",
    "ocnli": "76.22",
    "cluewsc2020": "82.91",
    "csl": "82.90",
    "chid": "83.01",
    "c3": "66.38",
}  # the README's + 1.00 each


@pytest.fixture
def root(tmp_path):
    """Seven models: built-in ones (one under an organisation's folder), local folders (one named like a
    built-in model), names with `[` and `?`, and a run known only from a log."""
    runs, models = tmp_path / "runs", tmp_path / "models"
    fake_run(str(runs / "ernie-3.0-base-zh"))  # TNEWS 60.12, IFLYTEK 61.80 (dropout 0.0), CMRC2018 71.00/90.00
    named(str(runs / "ernie-3.0-base-zh"), local_model(models / "ernie-3.0-base-zh", 12, 768))
    for task, value in BERT.items():  # every task: the AVG difference is against the README's AVG
        write_job(str(runs / "bert-base-chinese"), task, "2e-05_32_0.1", [(10, float(value))])
    write_job(str(runs / "bert-base-chinese"), "cmrc2018", "3e-05_24_0.1", [(10, (66.30, 87.53))], "em_f1")
    write_job(str(runs / "big"), "afqmc", "2e-05_16_0.1", [(10, 60.00)])
    named(str(runs / "big"), local_model(models / "big", 24, 1024))
    write_job(str(runs / "six-b"), "afqmc", "2e-05_32_0.1", [(10, 65.00)])
    named(str(runs / "six-b"), local_model(models / "six-b", 6, 768, "model_config.json"))
    write_job(str(runs / "m[1]"), "afqmc", "3e-05_32_0.0", [(10, 70.50)])
    write_job(str(runs / "m[1]"), "tnews", "1e-05_16_0.1", [(10, 55.00)])
    named(str(runs / "m[1]"), local_model(models / "m[1]", 6, 768))
    write_job(str(runs / "hfl" / "rbt3"), "afqmc", "3e-05_32_0.1", [(10, 71.50)])
    named(str(runs / "hfl" / "rbt3"), "hfl/rbt3")
    write_log(str(runs / "runs?"), "tnews", "1e-05_16_0.1", LOG_LINE.format(50.00))
    os.symlink(runs / "m[1]", runs / "a-link")  # not followed: the root is shared
    (runs / "not-a-run" / "afqmc").mkdir(parents=True)  # a task folder without a job file
    return runs


RESULTS = [
    "| Arch | Model | AVG | AFQMC | TNEWS | IFLYTEK | CMNLI | OCNLI | CLUEWSC2020 | CSL | CMRC2018 | CHID | C3 |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    "| 24L1024H | big | 60.00 | 60.00" + DASHES + " |",
    "| 12L768H | bert-base-chinese | 73.57 | 75.63 | 58.13 | 62.29 | 81.97 | 76.22 | 82.91 | 82.90 | 66.30/87.53 "
    "| 83.01 | 66.38 |",
    "| 12L768H | bert-base-chinese (published) | 72.57 | 74.63 | 57.13 | 61.29 | 80.97 | 75.22 | 81.91 | 81.90 "
    "| 65.30/86.53 | 82.01 | 65.38 |",
    "| 12L768H | bert-base-chinese (ours − published) | +1.00 | +1.00 | +1.00 | +1.00 | +1.00 | +1.00 | +1.00 "
    "| +1.00 | +1.00 (EM) | +1.00 | +1.00 |",
    "| 12L768H | ernie-3.0-base-zh | 64.31 | - | 60.12 | 61.80 | - | - | - | - | 71.00/90.00 | - | - |",
    "| 12L768H | ernie-3.0-base-zh (published) | 76.05 | 75.93 | 58.26 | 61.56 | 83.02 | 80.10 | 86.18 | 82.63 "
    "| 70.71/90.41 | 84.26 | 77.88 |",
    # AVG against the published mean of TNEWS, IFLYTEK and CMRC2018's EM: (58.26 + 61.56 + 70.71) / 3 = 63.51
    "| 12L768H | ernie-3.0-base-zh (ours − published) | +0.80 (3 tasks) | - | +1.86 | +0.24 | - | - | - | - "
    "| +0.29 (EM) | - | - |",
    "| 6L768H | six-b | 65.00 | 65.00" + DASHES + " |",
    "| 6L768H | m[1] | 62.75 | 70.50 | 55.00 | - | - | - | - | - | - | - | - |",
    "| 3L768H | hfl/rbt3 | 71.50 | 71.50" + DASHES + " |",
    "| 3L768H | hfl/rbt3 (published) | 65.72 | 70.95 | 55.53 | 59.18 | 76.20 | 70.71 | 67.11 | 76.63 | 55.73/78.63 "
    "| 70.26 | 54.93 |",
    "| 3L768H | hfl/rbt3 (ours − published) | +0.55 (1 task) | +0.55" + DASHES + " |",
    "| - | runs? | 50.00 | - | 50.00 | - | - | - | - | - | - | - | - |",
]
HYPERPARAMETERS = [
    "| Model | AFQMC | TNEWS | IFLYTEK | CMNLI | OCNLI | CLUEWSC2020 | CSL | CMRC2018 | CHID | C3 |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    "| big | 2e-05,16" + DASHES + " |",
    "| bert-base-chinese | 2e-05,32 | 2e-05,32 | 2e-05,32 | 2e-05,32 | 2e-05,32 | 2e-05,32 | 2e-05,32 | 3e-05,24 "
    "| 2e-05,32 | 2e-05,32 |",
    "| ernie-3.0-base-zh | - | 2e-05,32 | 2e-05,16,0.0 | - | - | - | - | 1e-05,32 | - | - |",
    "| six-b | 2e-05,32" + DASHES + " |",
    "| m[1] | 3e-05,32,0.0 | 1e-05,16 | - | - | - | - | - | - | - | - |",
    "| hfl/rbt3 | 3e-05,32" + DASHES + " |",
    "| runs? | - | 1e-05,16 | - | - | - | - | - | - | - | - |",
]


def block(lines, first):
    """The table of `lines` that starts with the line `first`."""
    start = lines.index(first)
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_both_tables_across_models(root, capsys):
    assert leaderboard.main(["--output_root", str(root)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert block(lines, RESULTS[0]) == RESULTS
    assert block(lines, HYPERPARAMETERS[0]) == HYPERPARAMETERS
    assert (
        "AVG over the tasks with results: big 1 of 10, ernie-3.0-base-zh 3 of 10, six-b 1 of 10, m[1] 2 of 10, "
        "hfl/rbt3 1 of 10, runs? 1 of 10." in lines
    )
    written = root / "leaderboard"
    assert sorted(os.listdir(written)) == OUTPUTS
    assert (written / "leaderboard.md").read_text() == out
    order = ["leaderboard.md", "leaderboard.csv", "leaderboard_hyperparameters.csv", "leaderboard.png"]
    assert err == f"(written: {', '.join(str(written / name) for name in order)})\n"


def test_csv_files(root, capsys):
    assert leaderboard.main(["--output_root", str(root), "--output", str(root / "elsewhere")]) == 0
    table = (root / "elsewhere" / "leaderboard.csv").read_text().splitlines()
    # published_results.csv's own columns, our rows only, in the table's order
    assert table[0] == "arch,model,AVG,AFQMC,TNEWS,IFLYTEK,CMNLI,OCNLI,CLUEWSC2020,CSL,CMRC2018,CHID,C3"
    assert [row.split(",")[1] for row in table[1:]] == [
        "big",
        "bert-base-chinese",
        "ernie-3.0-base-zh",
        "six-b",
        "m[1]",
        "hfl/rbt3",
        "runs?",
    ]
    assert table[3] == "12L768H,ernie-3.0-base-zh,64.31,-,60.12,61.80,-,-,-,-,71.00/90.00,-,-"
    hyper = (root / "elsewhere" / "leaderboard_hyperparameters.csv").read_text().splitlines()
    assert hyper[0] == "model,AFQMC,TNEWS,IFLYTEK,CMNLI,OCNLI,CLUEWSC2020,CSL,CMRC2018,CHID,C3"
    assert hyper[5] == 'm[1],"3e-05,32,0.0","1e-05,16",-,-,-,-,-,-,-,-'
    assert not (root / "leaderboard").exists()


def test_the_figure_is_a_png(root, capsys):
    assert leaderboard.main(["--output_root", str(root)]) == 0
    with Image.open(root / "leaderboard" / "leaderboard.png") as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 1000 and image.size[1] > 400
    capsys.readouterr()
    # the leaderboard's own folder is not a model: a second run gives the same rows
    assert leaderboard.main(["--output_root", str(root)]) == 0
    assert block(capsys.readouterr().out.splitlines(), RESULTS[0]) == RESULTS


def test_given_models_only(root, tmp_path, capsys):
    # a local folder gives its run folder (its own name) and its config; a name gives its folder
    assert leaderboard.main(["--output_root", str(root), str(tmp_path / "models" / "m[1]"), "runs?", "runs?"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert block(lines, RESULTS[0]) == RESULTS[:2] + [RESULTS[10], RESULTS[14]]


def test_a_local_model_of_another_arch_is_not_compared(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_job(str(runs / "bert-base-chinese"), "afqmc", "2e-05_32_0.1", [(10, 70.00)])
    named(str(runs / "bert-base-chinese"), local_model(tmp_path / "bert-base-chinese", 4, 312))
    assert leaderboard.main(["--output_root", str(runs)]) == 0
    out, err = capsys.readouterr()
    assert "| 4L312H | bert-base-chinese | 70.00 | 70.00" + DASHES + " |" in out.splitlines()
    assert "(published)" not in out
    assert (
        f"leaderboard: warning: {runs}/bert-base-chinese: arch 4L312H is not the published bert-base-chinese's "
        "12L768H; not compared with its published row" in err.splitlines()
    )


@pytest.mark.parametrize(
    "config, why",
    [
        ("{not json", "not valid JSON"),
        ('{"num_hidden_layers": "12", "hidden_size": 768}', "no positive integer num_hidden_layers and hidden_size"),
        ("[12, 768]", "not a JSON object"),
        (None, "is a link; links are not followed"),
    ],
)
def test_a_bad_config_is_a_warning_and_a_dash(tmp_path, capsys, config, why):
    runs, model = tmp_path / "runs", tmp_path / "models" / "m"
    model.mkdir(parents=True)
    if config is None:
        local_model(tmp_path / "elsewhere", 12, 768)
        os.symlink(tmp_path / "elsewhere" / "config.json", model / "config.json")
    else:
        (model / "config.json").write_text(config)
    write_job(str(runs / "m"), "afqmc", "2e-05_32_0.1", [(10, 70.00)])
    named(str(runs / "m"), str(model))
    assert leaderboard.main(["--output_root", str(runs)]) == 0
    out, err = capsys.readouterr()
    assert "| - | m | 70.00 | 70.00" + DASHES + " |" in out.splitlines()
    assert f"leaderboard: warning: {model}/config.json: {why}; arch shown as -" in err.splitlines()


def test_an_old_style_config(tmp_path):
    assert leaderboard.arch_of({"init_args": [{"num_hidden_layers": 4, "hidden_size": 312}]}) == ("4L312H", None)
    assert leaderboard.arch_of({"num_hidden_layers": True, "hidden_size": 768})[0] is None


def test_refusals_are_one_line(tmp_path, capsys):
    (tmp_path / "empty" / "m" / "afqmc").mkdir(parents=True)
    assert leaderboard.main(["--output_root", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err == (
        f"leaderboard: error: no model results under {tmp_path}/empty (no MODEL/TASK/LR_BS_DROPOUT.json or .log)\n"
    )
    assert leaderboard.main(["--output_root", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"leaderboard: error: --output_root {tmp_path}/nowhere: no such folder\n"
    assert leaderboard.main(["--output_root", str(tmp_path / "empty"), "mymodel"]) == 2
    assert capsys.readouterr().err == (
        f"leaderboard: error: no results folder {tmp_path}/empty/mymodel (for model 'mymodel' under {tmp_path}/empty)\n"
    )
    assert leaderboard.main(["--output_root", str(tmp_path / "empty"), "m"]) == 2
    assert capsys.readouterr().err == (
        f"leaderboard: error: {tmp_path}/empty/m holds no job files (TASK/LR_BS_DROPOUT.json or .log) for model 'm'\n"
    )
    assert not (tmp_path / "empty" / "leaderboard").exists()


def test_the_script_imports_no_paddle(root):
    # the thin entry, as a person runs it; -X importtime lists every module the process imported
    done = run_python(["-X", "importtime", "grid_search_tools/leaderboard.py", "--output_root", str(root)])
    assert done.returncode == 0, done.stderr
    assert block(done.stdout.splitlines(), RESULTS[0]) == RESULTS
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert "matplotlib" in imported and not imported & {"paddle", "paddlenlp"}


def test_bad_records_and_odd_names(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_job(str(runs / "a|b"), "afqmc", "2e-05_32_0.1", [(10, 70.00)])
    write_job(str(runs / "a|b"), "tnews", "2e-05_32_0.1", [(10, 56.00)])
    record = json.loads((runs / "a|b" / "tnews" / "2e-05_32_0.1.json").read_text())
    record["best"]["value"] = "abc"  # a hand-edited record: extract skips it, with a warning
    (runs / "a|b" / "tnews" / "2e-05_32_0.1.json").write_text(json.dumps(record))
    assert leaderboard.main(["--output_root", str(runs)]) == 0
    out, err = capsys.readouterr()
    assert "| - | a\\|b | 70.00 | 70.00" + DASHES + " |" in out.splitlines()  # a `|` does not split the cell
    assert (
        f"extract: warning: {runs}/a|b/tnews/2e-05_32_0.1.json: best.value: 'abc' is not a result (NN.NN or "
        "EM/F1); skipped" in err.splitlines()
    )
    assert (runs / "leaderboard" / "leaderboard.csv").read_text().splitlines()[1] == "-,a|b,70.00,70.00" + ",-" * 9


def test_an_output_that_is_a_file(root, capsys):
    (root / "taken").write_text("")
    assert leaderboard.main(["--output_root", str(root), "--output", str(root / "taken")]) == 2
    assert capsys.readouterr().err == f"leaderboard: error: {root}/taken: --output is a file, not a directory\n"


def test_the_sort_is_the_published_tables():
    # the README's own rows, sorted by the leaderboard's rule, come out in the README's order
    table = report.published_table()
    models = [
        leaderboard.Model(
            row["model"],
            "",
            {t: (row[t.upper()], ("2e-05", "32", "0.1"), "record") for t in leaderboard.TASKS},
            row["arch"],
            row,
        )
        for row in table
    ]
    assert [m.label for m in sorted(models, key=leaderboard.sort_key)] == [row["model"] for row in table]
