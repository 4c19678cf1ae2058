"""The grid report (cluebench.report): figures, report.md and the published numbers, from a fake run folder."""

import os

from cluebench import results
from cluebench.grid import best_jobs, extract, report
from cluebench.grid.expected import expected_max

import pytest
from PIL import Image

MODEL = "ernie-3.0-base-zh"  # built in, and in the upstream README's table as "ERNIE 3.0-Base-zh"


def write_job(directory, task, name, history, metric="acc"):
    """A complete record whose best is the history's highest point."""
    top = max(history, key=lambda h: h[1])
    metrics = (lambda v: {"em": v[0], "f1": v[1]}) if metric == "em_f1" else (lambda v: {"acc": v})
    record = results.make_record(
        task=task,
        model=MODEL,
        script="run_clue_classifier.py",
        hyperparameters={},
        best={"metrics": metrics(top[1]), "step": top[0], "epoch": 1},
        history=[{"step": s, "epoch": 1, "metrics": metrics(v), "loss": 1.0} for s, v in history],
        wall_time_s=1.0,
        throughput={},
        data={},
    )
    results.write_record(os.path.join(directory, task, name + ".json"), record)


def write_log(directory, task, name, text):
    path = os.path.join(directory, task, name + ".log")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


LOG_LINE = "[2024-05-01 10:00:00,000] [    INFO] - best_result: {:.2f}\n"  # the value is field 7


def fake_run(directory):
    # TNEWS: 2 learning rates x 2 batch sizes with records, one job only logged (no record), one killed
    for name, top in (
        ("1e-05_16_0.1", 57.50),
        ("1e-05_32_0.1", 58.00),
        ("2e-05_16_0.1", 59.00),
        ("2e-05_32_0.1", 60.12),
    ):
        write_job(directory, "tnews", name, [(100, top - 3), (200, top), (300, top - 1)])
    write_log(directory, "tnews", "5e-05_16_0.1", LOG_LINE.format(55.10))
    write_log(directory, "tnews", "5e-05_32_0.1", "[2024-05-01 10:00:00,000] [    INFO] - step 10\n")
    # IFLYTEK: both dropouts of the grid
    for name, top in (("2e-05_16_0.1", 61.00), ("2e-05_16_0.0", 61.80), ("3e-05_32_0.0", 60.00)):
        write_job(directory, "iflytek", name, [(50, top - 2), (100, top)])
    # CMRC2018: EM/F1
    write_job(directory, "cmrc2018", "1e-05_32_0.1", [(10, (65.0, 85.0)), (20, (71.0, 90.0))], "em_f1")
    write_job(directory, "cmrc2018", "2e-05_24_0.1", [(10, (69.5, 89.0))], "em_f1")


EXPECTED_PNGS = {
    f"{t}_{kind}.png" for t in ("tnews", "iflytek", "cmrc2018") for kind in ("curves", "heatmap", "expected")
}


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
    report.write_report(directory, MODEL, best_jobs.best_per_task(directory))
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
    report.write_report(directory, MODEL, best_jobs.best_per_task(directory))
    assert (
        f"report: warning: {out}/tnews_curves.png: could not draw (RuntimeError: no canvas); left out of the "
        "report" in capsys.readouterr().err
    )
    text = (out / "report.md").read_text()
    assert "tnews_curves.png" not in text and "](tnews_heatmap.png)" in text and "| TNEWS | 60.12 |" in text


@pytest.mark.parametrize(
    "display, name",
    [
        ("ERNIE 3.0-Base-zh", "ernie-3.0-base-zh"),
        ("HFL/RoBERTa-wwm-ext", "hfl/roberta-wwm-ext"),
        ("BERT-Base-Chinese", "bert-base-chinese"),
        ("ERNIE-Gram-zh", "ernie-gram-zh"),
        ("HFL/RBT3, Chinese", "hfl/rbt3"),
        ("HLF/RBT6, Chinese", "hfl/rbt6"),
        ("TinyBERT4, Chinese", "tinybert-4l-312d-zh"),
        ("UER/Chinese-RoBERTa-L6-H768", "uer/chinese-roberta-6l-768h"),
        ("Langboat/Mengzi-BERT-Base", "langboat/mengzi-bert-base"),
    ],
)
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


# ---------------------------------------------------------------- what the figures show (their Axes, not pixels)
def figure_of(tmp_path, task, jobs, metric="acc"):
    """curves_figure of the jobs {name: history}, through the report's own reading of records."""
    directory = str(tmp_path / "m")
    for name, history in jobs.items():
        write_job(directory, task, name, history, metric)
    best = best_jobs.best_per_task(directory)[task]
    configs = report.configurations(directory, task)
    fig = report.curves_figure(task, report.dev_curves(directory, task, configs), best[1])
    fig.canvas.draw()  # tick labels, offset text and extents exist once drawn
    return fig, directory


def assert_plain_ticks(ax, axes="xy"):
    for axis in (getattr(ax, f"{a}axis") for a in axes):
        assert axis.get_major_formatter().get_useOffset() is False
        assert axis.get_offset_text().get_text() == ""
        assert not any("e" in t.get_text() for t in axis.get_ticklabels())


def assert_legend_outside(fig, ax):
    legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= frame.x1  # beside the axes: it can cover no line


def star(ax):
    return next(line for line in ax.get_lines() if line.get_gid() == "best")


def test_a_flat_series_has_plain_ticks_a_real_range_and_its_star_on_it(tmp_path):
    # chance level on C3, differing in the third decimal: once drawn as 0.0000 to 0.0016 under "+3.846e1"
    flat = [(10, 38.461538), (20, 38.463141), (30, 38.461538)]
    fig, directory = figure_of(tmp_path, "c3", {"2e-05_16_0.1": flat, "3e-05_16_0.1": flat[::-1]})
    ax = fig.axes[0]
    assert_plain_ticks(ax)
    low, high = ax.get_ylim()
    assert high - low >= report.MIN_SPAN and 0 <= low < 38.46 < high <= 100
    record = results.read_record(os.path.join(directory, "c3", "2e-05_16_0.1.json"))
    # the star at the record's number (38.463141), not at its rounded text (38.46) below the line
    assert list(star(ax).get_ydata()) == [record["best"]["metrics"]["acc"]] == [38.463141]
    assert list(star(ax).get_xdata()) == [record["best"]["step"]] == [20]
    assert any("lines overlap" in t.get_text() for t in ax.texts)
    assert_legend_outside(fig, ax)
    report.pyplot().close(fig)


def test_a_job_evaluated_once_is_a_visible_marker(tmp_path):
    jobs = {"2e-05_16_0.1": [(90, 50.12)], "2e-05_32_0.1": [(90, 52.45)], "3e-05_16_0.1": [(90, 49.80)]}
    fig, _ = figure_of(tmp_path, "tnews", jobs)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_gid() != "best"]
    assert len(lines) == 3
    for line in lines:
        assert len(line.get_xdata()) == 1 and line.get_marker() not in ("", "None", None)
        assert line.get_markersize() >= 5
    assert ax.get_xlim()[0] == 0  # steps from 0, not "86 to 94" around the one step
    assert list(star(ax).get_ydata()) == [52.45]
    assert_plain_ticks(ax)
    report.pyplot().close(fig)


def test_a_rising_grid_of_twelve(tmp_path):
    jobs = {}
    for i, (lr, bs) in enumerate((lr, bs) for lr in ("1e-05", "2e-05", "3e-05", "5e-05") for bs in ("16", "32", "64")):
        jobs[f"{lr}_{bs}_0.1"] = [(100 * k, 60 + 3 * k + i * 0.1) for k in range(1, 11)]
    fig, _ = figure_of(tmp_path, "afqmc", jobs)
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low <= 63 and 91.1 <= high <= 100  # every point within the axes, little more
    assert len([line for line in ax.get_lines() if line.get_gid() != "best"]) == report.TOP_CURVES
    assert list(star(ax).get_ydata()) == [pytest.approx(91.1)]
    assert_plain_ticks(ax)
    assert_legend_outside(fig, ax)
    report.pyplot().close(fig)


@pytest.mark.parametrize(
    "low, high, span",
    [(38.46, 38.46, report.MIN_SPAN), (99.9, 100.0, report.MIN_SPAN), (0.0, 0.2, report.MIN_SPAN), (30.0, 90.0, 60.0)],
)
def test_score_limits(low, high, span):
    bottom, top = report.score_limits([low, high])
    assert 0 <= bottom <= low <= high <= top <= 100 and top - bottom >= span


def test_score_limits_show_a_value_out_of_range():
    assert report.score_limits([50.0, 120.0])[1] == 120.0 and report.score_limits([-3.0, 10.0])[0] == -3.0


def test_a_constant_heat_map_keeps_a_colour_scale(tmp_path):
    cells = {(lr, bs, "0.1"): "38.46" for lr in ("2e-05", "3e-05") for bs in ("16", "24")}
    fig = report.heatmap_figure("c3", cells, ("2e-05", "16", "0.1"))
    image = fig.axes[0].get_images()[0]
    assert image.norm.vmin < 38.46 < image.norm.vmax
    texts = fig.axes[0].texts
    assert len(texts) == 4 and len({t.get_color() for t in texts}) == 1  # one colour, one text colour
    fig.canvas.draw()
    assert_plain_ticks(fig.axes[-1], "y")  # the colour bar
    report.pyplot().close(fig)


def test_a_constant_row_and_fifteen_batch_sizes_stay_readable():
    bss = ("4", "8", "12", "16", "20", "24", "28", "32", "40", "48", "56", "64", "96", "128", "256")
    cells = {}
    for i, lr in enumerate(("1e-05", "2e-05", "3e-05")):
        for j, bs in enumerate(bss):
            for dropout in ("0.1", "0.0"):
                cells[(lr, bs, dropout)] = "60.00" if lr == "3e-05" else f"{55 + (7 * i + 3 * j) % 7:.2f}"
    fig = report.heatmap_figure("tnews", cells, ("1e-05", "8", "0.1"))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    # side by side, 30 cells would not fit the figure's width: one panel above the other
    assert fig.axes[0].get_window_extent().y0 > fig.axes[1].get_window_extent().y1
    for ax in fig.axes[:2]:
        cell = ax.get_window_extent().width / len(bss)
        assert len(ax.texts) == 3 * len(bss)
        for text in ax.texts:  # every number inside its cell, at a size one can read
            assert text.get_window_extent(renderer).width < cell and text.get_fontsize() >= report.MIN_FONT
    report.pyplot().close(fig)


def test_cell_numbers_left_out_when_they_cannot_fit():
    assert report.cell_font(5, 1.0) == 9.0
    assert report.cell_font(5, 0.2) is None


def test_expected_performance_figure():
    values = [55.10, 57.50, 58.00, 59.00, 60.12]
    fig = report.expected_figure("tnews", values, expected_max(values))
    fig.canvas.draw()
    ax = fig.axes[0]
    assert_plain_ticks(ax)
    assert_legend_outside(fig, ax)
    means = ax.get_lines()[0].get_ydata()
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4, 5] and means[0] == pytest.approx(57.944)
    assert list(ax.get_lines()[1].get_ydata()) == [60.12, 60.12]  # the grid's best, across
    low, high = ax.get_ylim()
    band = ax.collections[0].get_paths()[0].vertices[:, 1]  # mean +- sd, kept between the worst and the best
    assert 55.10 <= band.min() and band.max() <= 60.12
    assert 0 <= low < band.min() and 60.12 < high <= 100 and high - low >= report.MIN_SPAN
    report.pyplot().close(fig)


def test_report_has_expected_performance(run):
    out, _ = run
    assert {"tnews_expected.png", "iflytek_expected.png", "cmrc2018_expected.png"} <= set(os.listdir(out))
    text = (out / "report.md").read_text()
    assert "](tnews_expected.png)" in text
    # TNEWS: 55.10 (log), 57.50, 58.00, 59.00, 60.12; n=3 by hand: (55.10 + 7*57.50 + 19*58 + 37*59 + 61*60.12)/125
    assert "3 of 5 configurations: expected best 59.28 ± 0.97 (grid best 60.12)." in text
    assert "| 1 | 57.94 | 1.68 |" in text and "| 5 | 59.67 | 0.70 |" in text
    assert "| Configurations tried | Expected best EM | Standard deviation |" in text  # CMRC2018 on EM


def test_one_configuration_gets_no_expected_curve(tmp_path, capsys):
    write_log(str(tmp_path / "m"), "afqmc", "1e-05_16_0.1", LOG_LINE.format(70.00))
    assert extract.main(["m", "--output_root", str(tmp_path)]) == 0
    text = (tmp_path / "m" / "report" / "report.md").read_text()
    assert "No expected-performance curve: 1 configuration with a result" in text


def test_a_one_column_heat_map_keeps_its_whole_title():
    fig = report.heatmap_figure(
        "afqmc", {("0.0002", "16", "0.1"): "100.00", ("0.001", "16", "0.1"): "100.00"}, ("0.0002", "16", "0.1")
    )
    fig.canvas.draw()
    title = fig._suptitle.get_window_extent()
    assert 0 <= title.x0 and title.x1 <= fig.bbox.width, (title, fig.bbox)
    report.pyplot().close(fig)
