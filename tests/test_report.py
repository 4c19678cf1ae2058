"""The grid report (cluebench.report): figures, report.md and the published numbers, from a fake run folder."""
import os

import pytest
from PIL import Image

from cluebench import extract, report, results

MODEL = "ernie-3.0-base-zh"  # built in, and in the upstream README's table as "ERNIE 3.0-Base-zh"


def write_job(directory, task, name, history, metric="acc"):
    """A complete record whose best is the history's highest point."""
    top = max(history, key=lambda h: h[1])
    metrics = (lambda v: {"em": v[0], "f1": v[1]}) if metric == "em_f1" else (lambda v: {"acc": v})
    record = results.make_record(
        task=task, model=MODEL, script="run_clue_classifier.py", hyperparameters={},
        best={"metrics": metrics(top[1]), "step": top[0], "epoch": 1},
        history=[{"step": s, "epoch": 1, "metrics": metrics(v), "loss": 1.0} for s, v in history],
        wall_time_s=1.0, throughput={}, data={})
    results.write_record(os.path.join(directory, task, name + ".json"), record)


def write_log(directory, task, name, text):
    path = os.path.join(directory, task, name + ".log")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


LOG_LINE = "[2024-05-01 10:00:00,000] [    INFO] - best_result: {:.2f}\n"  # the value is field 7


def fake_run(directory):
    # TNEWS: 2 learning rates x 2 batch sizes with records, one job only logged (no record), one killed
    for name, top in (("1e-05_16_0.1", 57.50), ("1e-05_32_0.1", 58.00), ("2e-05_16_0.1", 59.00),
                      ("2e-05_32_0.1", 60.12)):
        write_job(directory, "tnews", name, [(100, top - 3), (200, top), (300, top - 1)])
    write_log(directory, "tnews", "5e-05_16_0.1", LOG_LINE.format(55.10))
    write_log(directory, "tnews", "5e-05_32_0.1", "[2024-05-01 10:00:00,000] [    INFO] - step 10\n")
    # IFLYTEK: both dropouts of the grid
    for name, top in (("2e-05_16_0.1", 61.00), ("2e-05_16_0.0", 61.80), ("3e-05_32_0.0", 60.00)):
        write_job(directory, "iflytek", name, [(50, top - 2), (100, top)])
    # CMRC2018: EM/F1
    write_job(directory, "cmrc2018", "1e-05_32_0.1", [(10, (65.0, 85.0)), (20, (71.0, 90.0))], "em_f1")
    write_job(directory, "cmrc2018", "2e-05_24_0.1", [(10, (69.5, 89.0))], "em_f1")


EXPECTED_PNGS = {f"{t}_{kind}.png" for t in ("tnews", "iflytek", "cmrc2018") for kind in ("curves", "heatmap")}


@pytest.fixture
def run(tmp_path, capsys):
    directory = tmp_path / MODEL
    fake_run(str(directory))
    assert extract.main([MODEL, "--output_root", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    return directory / "report", err


def test_figures_are_pngs(run):
    out, err = run
    assert f"(report: {out}/report.md and its figures)" in err.splitlines()
    assert EXPECTED_PNGS <= set(os.listdir(out))
    sizes = {}
    for name in EXPECTED_PNGS:
        with Image.open(out / name) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 0 and image.size[1] > 0
            sizes[name] = image.size
    # IFLYTEK's map has a panel per dropout: wider than CMRC2018's single panel of the same two batch sizes
    assert sizes["iflytek_heatmap.png"][0] > sizes["cmrc2018_heatmap.png"][0]


def test_report_tables_and_published_numbers(run):
    out, _ = run
    text = (out / "report.md").read_text()
    for name in EXPECTED_PNGS:
        assert f"]({name})" in text  # embedded by a path relative to report.md
    assert "| ernie-3.0-base-zh | " in text  # results.md's table, first
    # the best per task, computed by hand: published ERNIE 3.0-Base-zh TNEWS 58.26, IFLYTEK 61.56, CMRC2018 70.71/90.41
    assert "| TNEWS | 60.12 | 58.26 | +1.86 | 2e-05 | 32 | 0.1 | record |" in text
    assert "| IFLYTEK | 61.80 | 61.56 | +0.24 | 2e-05 | 16 | 0.0 | record |" in text
    assert "| CMRC2018 | 71.00/90.00 | 70.71/90.41 | +0.29 (EM) | 1e-05 | 32 | 0.1 | record |" in text
    assert "| AFQMC | - | 75.93 | - | - | - | - | - |" in text
    assert "Published (ERNIE 3.0-Base-zh)" in text
    # every configuration of TNEWS, the best in bold, the logged job without a curve, the killed one without a result
    assert "| **2e-05_32_0.1** | **2e-05** | **32** | **0.1** | **60.12** | **record** |" in text
    assert "| 1e-05_16_0.1 | 1e-05 | 16 | 0.1 | 57.50 | record |" in text
    assert "| 5e-05_16_0.1 | 5e-05 | 16 | 0.1 | 55.10 | log |" in text
    assert "| 5e-05_32_0.1 | 5e-05 | 32 | 0.1 | - | no result |" in text
    assert "No curve for 5e-05_16_0.1: known only from the log" in text


def test_same_run_same_bytes(run):
    out, _ = run
    before = {name: (out / name).read_bytes() for name in EXPECTED_PNGS}
    directory = str(out.parent)
    report.write_report(directory, MODEL, extract.best_per_task(directory))
    assert {name: (out / name).read_bytes() for name in EXPECTED_PNGS} == before


def test_a_local_model_gets_no_published_numbers(tmp_path, capsys):
    model = tmp_path / "models" / MODEL  # named like a built-in model, but a directory: unknown contents
    model.mkdir(parents=True)
    root = tmp_path / "runs"
    fake_run(str(root / MODEL))
    assert extract.main([str(model), "--output_root", str(root)]) == 0
    text = (root / MODEL / "report" / "report.md").read_text()
    assert "No published numbers for a local model." in text and "Published" not in text
    assert "| TNEWS | 60.12 | 2e-05 | 32 | 0.1 | record |" in text


def test_only_logs_give_a_heat_map_and_no_curves(tmp_path, capsys):
    write_log(str(tmp_path / "m"), "afqmc", "1e-05_16_0.1", LOG_LINE.format(70.00))
    assert extract.main(["m", "--output_root", str(tmp_path)]) == 0
    out = tmp_path / "m" / "report"
    assert sorted(os.listdir(out)) == ["afqmc_heatmap.png", "report.md"]
    text = (out / "report.md").read_text()
    assert "No published numbers for m: the upstream README's table does not list it." in text


def test_a_figure_that_fails_keeps_the_report(run, monkeypatch, capsys):
    out, _ = run
    for name in EXPECTED_PNGS:
        (out / name).unlink()

    def broken(*args):
        raise RuntimeError("no canvas")

    monkeypatch.setattr(report, "draw_curves", broken)
    directory = str(out.parent)
    report.write_report(directory, MODEL, extract.best_per_task(directory))
    assert f"extract: warning: {out}/tnews_curves.png: could not draw (RuntimeError: no canvas); left out of the " \
           "report" in capsys.readouterr().err
    text = (out / "report.md").read_text()
    assert "tnews_curves.png" not in text and "](tnews_heatmap.png)" in text and "| TNEWS | 60.12 |" in text


@pytest.mark.parametrize("display, name", [
    ("ERNIE 3.0-Base-zh", "ernie-3.0-base-zh"), ("HFL/RoBERTa-wwm-ext", "hfl/roberta-wwm-ext"),
    ("BERT-Base-Chinese", "bert-base-chinese"), ("ERNIE-Gram-zh", "ernie-gram-zh"),
    ("HFL/RBT3, Chinese", "hfl/rbt3"), ("HLF/RBT6, Chinese", "hfl/rbt6"), ("TinyBERT4, Chinese", "tinybert-4l-312d-zh"),
    ("UER/Chinese-RoBERTa-L6-H768", "uer/chinese-roberta-6l-768h"), ("Langboat/Mengzi-BERT-Base",
                                                                     "langboat/mengzi-bert-base")])
def test_display_names_to_builtin_names(display, name):
    assert report.builtin_name(display) == name


def test_published_table_ships_in_the_package():
    table = report.published_table()
    assert len(table) == 26 and len({report.builtin_name(r["model"]) for r in table}) == 26
    assert report.published_row("ERNIE-3.0-Base-zh")["TNEWS"] == "58.26"  # any case
    assert report.published_row("hfl/roberta-wwm-ext")["CMRC2018"] == "68.39/88.50"
    assert report.published_row("./ernie-3.0-base-zh") is None and report.published_row("my-model") is None
    assert report.difference("55.00", "57.552") == "-2.55" and report.difference("58.26", "58.26") == "+0.00"
    assert report.difference("71.00/90.00", "70.71/90.41") == "+0.29 (EM)"
