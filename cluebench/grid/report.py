"""A grid run's report for a person to look at: RUN_DIR/report/ with, per task, the dev curve of every
configuration (TASK_curves.png) and a learning-rate x batch-size heat map of their best dev scores
(TASK_heatmap.png), the expected best dev score of a search of n of its configurations (TASK_expected.png,
cluebench.expected), and report.md with extract's tables, every configuration's value, and, for a model of
the upstream README's results table, the published dev scores beside ours.

extract.main writes it after results.csv and results.md, so a figure that fails to draw costs the figure
only (a warning names it), never the tables.
"""

import contextlib
import csv
import io
import os
from importlib import resources

from .. import results, tasks
from ..fileio import atomic_write, is_local_path
from . import best_jobs, expected, scheduler, seeds

PUBLISHED = "published_results.csv"  # the upstream README's results table, cell for cell (package data)

# The README names models for display; PaddleNLP's built-in name is the display name lower-cased, ", Chinese"
# dropped and spaces hyphenated ("ERNIE 3.0-Base-zh" -> "ernie-3.0-base-zh", "HFL/RBT3, Chinese" ->
# "hfl/rbt3"), except for the four below, which PaddleNLP names differently ("HLF" is the README's typo).
RENAMED = {
    "hlf/rbt6": "hfl/rbt6",
    "tinybert6": "tinybert-6l-768d-zh",
    "tinybert4": "tinybert-4l-312d-zh",
    "uer/chinese-roberta-l6-h768": "uer/chinese-roberta-6l-768h",
}


def builtin_name(display_name):
    name = display_name.lower().replace(", chinese", "").replace(" ", "-")
    return RENAMED.get(name, name)


def published_table():
    """The rows of the upstream README's table: {"arch", "model", "AVG", "AFQMC", ..., "C3"} (text cells)."""
    with resources.files(__package__).joinpath(PUBLISHED).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def published_row(model):
    """The README's row for a built-in model name (any case), else None. A local directory never matches:
    what it holds is unknown, whatever its name."""
    if is_local_path(model):
        return None
    return next((row for row in published_table() if builtin_name(row["model"]) == model.lower()), None)


def difference(ours, published):
    """ours - published on best_jobs.score (CMRC2018: EM, and it says so), signed, two decimals."""
    text = f"{round(best_jobs.score(ours) - best_jobs.score(published), 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"
    return text + " (EM)" if "/" in published else text


def metric_name(task):
    return "EM" if tasks.get(task).metric == "em_f1" else "accuracy"


def grid_order(hyper):
    """(lr, bs, dropout) texts in the grid's order, as extract breaks ties: learning rate, batch size, dropout
    from the larger."""
    lr, bs, dropout = hyper
    return float(lr), int(bs), -float(dropout)


def configurations(directory, task):
    """{(lr, bs, dropout): (value, source), or None for a job without a result (killed, still running)} for
    every job of the task that left a record or a log."""
    with contextlib.redirect_stderr(io.StringIO()):  # extract has warned about these files already
        found = {hyper: (value, source) for value, hyper, source in best_jobs.task_results(directory, task)}
    for path in best_jobs.job_files(directory, task):
        hyper = best_jobs.hyperparameters(os.path.basename(path).rsplit(".", 1)[0])
        if hyper is not None:
            found.setdefault(hyper, None)
    return dict(sorted(found.items(), key=lambda item: grid_order(item[0])))


def dev_curve(record, key):
    """(steps, values) of a record's dev history; an evaluation without a number (a hand-edited record) is
    left out rather than drawn as zero."""
    points = [(h.get("step"), (h.get("metrics") or {}).get(key)) for h in record.get("history") or ()]
    points = [(s, v) for s, v in points if isinstance(s, (int, float)) and isinstance(v, (int, float))]
    return [s for s, _ in points], [v for _, v in points]


# ---------------------------------------------------------------- figures
def pyplot():
    """matplotlib's pyplot on the Agg backend (no display), imported only when a figure is drawn: extract
    and the grid tools start without it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path):
    """Write fig as a PNG atomically; no Software tag (Agg writes no date), so the same run gives the same
    bytes."""
    plt = pyplot()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100, metadata={"Software": None})
    finally:
        plt.close(fig)


MIN_SPAN = 5.0  # points of a percentage: a flat series is drawn flat, not blown up to its third decimal
FLAT = 0.05  # points: curves all closer than this are said to overlap


def score_limits(values, min_span=MIN_SPAN, pad=0.06):
    """(low, high) of a percentage axis: the values with some padding, at least min_span points wide and
    within [0, 100] (shifted rather than cut where the values are near either end; a value outside, from a
    hand-edited record, widens the bounds rather than being hidden)."""
    low, high = min(values), max(values)
    floor, ceiling = min(0.0, low), max(100.0, high)
    margin = max((high - low) * pad, (min_span - (high - low)) / 2)
    low, high = low - margin, high + margin
    if low < floor:
        low, high = floor, min(high + (floor - low), ceiling)
    if high > ceiling:
        low, high = max(low - (high - ceiling), floor), ceiling
    return low, high


def plain_numbers(axis):
    """Tick labels as the numbers themselves: matplotlib's offset ("+3.846e1" above 0.0000 to 0.0016) and
    scientific notation read as a different metric."""
    from matplotlib.ticker import ScalarFormatter

    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)


TOP_CURVES = 10  # lines a person can tell apart; the other configurations are drawn as one grey band


def top_curves(curves, best_hyper, n=TOP_CURVES):
    """(the n configurations with the highest best dev score, the best first; the rest), each a list of
    hyper-parameters: sorting once, no per-record work beyond it."""
    ranked = sorted(curves, key=lambda h: (h != best_hyper, -curves[h][3], grid_order(h)))
    return ranked[:n], ranked[n:]


def curves_figure(task, curves, best_hyper):
    """The figure of draw_curves, returned (tests look at its Axes)."""
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    top, rest = top_curves(curves, best_hyper)
    lrs = sorted({h[0] for h in top}, key=float)
    bss = sorted({h[1] for h in top}, key=int)
    dropouts = sorted({h[2] for h in top}, key=float, reverse=True)
    styles, markers = ("-", "--", ":", "-."), ("", "o", "s", "^")
    fig, ax = plt.subplots(figsize=(10, 5.5), layout="constrained")
    if rest:
        lines = [list(zip(curves[h][0], curves[h][1])) for h in rest]
        ax.add_collection(
            LineCollection(
                lines,
                colors="0.6",
                linewidths=0.6,
                alpha=0.3,
                zorder=1,
                label=f"the other {len(rest):,} configurations",
            )
        )
        # a job evaluated once is a point, which a line collection does not draw
        single = [(curves[h][0][0], curves[h][1][0]) for h in rest if len(curves[h][0]) == 1]
        if single:
            ax.scatter(*zip(*single), s=9, color="0.6", alpha=0.5, zorder=1)
    # the best first, so that it heads the legend (its zorder puts it on top of the others)
    for hyper in top:
        steps, values, best_step, best_value = curves[hyper]
        name = "_".join(hyper)
        if hyper == best_hyper:
            ax.plot(
                steps,
                values,
                color="black",
                linewidth=3,
                marker="o" if len(steps) == 1 else "",
                markersize=8,
                zorder=3,
                label=f"{name} (best)",
            )
            if best_step is not None:  # a record without best.step: no point to put the star at
                ax.plot(
                    [best_step],
                    [best_value],
                    linestyle="none",
                    marker="*",
                    markersize=18,
                    color="red",
                    markeredgecolor="black",
                    zorder=4,
                    label=f"best: {best_value:.2f} at step {best_step}",
                    gid="best",
                )
        else:
            marker = markers[dropouts.index(hyper[2]) % len(markers)]
            ax.plot(
                steps,
                values,
                color=plt.get_cmap("tab10")(lrs.index(hyper[0]) % 10),
                linestyle=styles[bss.index(hyper[1]) % len(styles)],
                # one evaluation is a point: it needs a marker of a size one can see, whatever the dropout's
                marker=(marker or "o") if len(steps) == 1 else marker,
                markersize=7 if len(steps) == 1 else 3,
                linewidth=1.2,
                alpha=0.75,
                label=name,
                zorder=2,
            )
    values = [v for h in curves for v in curves[h][1]] + [curves[h][3] for h in curves]
    if len(curves) > 1 and max(values) - min(values) < FLAT:
        # lines drawn on top of one another look like a single job: say that they are all there
        ax.text(
            0.01,
            0.99,
            f"all {len(curves):,} configurations within {max(values) - min(values):.3f} points "
            f"of each other: their lines overlap",
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize="small",
        )
    if rest:
        ax.text(
            0.99,
            0.01,
            f"top {len(top)} of {len(curves):,} configurations",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize="small",
        )
    steps = [s for h in curves for s in curves[h][0]]
    # steps from 0: jobs evaluated once each (all at the same step) are not spread over "86 to 94"
    ax.set_xlim(0, max(steps) * 1.04 if max(steps) > 0 else 1)
    ax.set_ylim(*score_limits(values))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole: no tick at step 2.5
    plain_numbers(ax.xaxis)
    plain_numbers(ax.yaxis)
    ax.set_xlabel("step")
    ax.set_ylabel(f"dev {metric_name(task)} (%)")
    ax.set_title(f"{task.upper()}: dev {metric_name(task)} of every configuration (LR_BS_DROPOUT)")
    ax.grid(alpha=0.3)
    # outside the axes, to their right: a legend inside covers some line whatever its corner
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, fontsize="small")
    return fig


def draw_curves(path, task, curves, best_hyper):
    """curves: {(lr, bs, dropout): (steps, values, best_step, best_value)}; the best job's line (when it is
    among them) black and thick, with its best point starred at the record's own value. Colour tells the
    learning rate, line style the batch size, marker the dropout, so the lines stay apart; the legend (beside
    the axes) names each; a job evaluated once is a marker. Only the top TOP_CURVES get a line and a legend
    entry; the rest are one grey collection (one artist, however many). The y-axis is the metric's scale,
    at least MIN_SPAN points, with plain tick labels."""
    save(curves_figure(task, curves, best_hyper), path)


HEATMAP_PANELS, HEATMAP_LABELS = 4, 64
HEATMAP_MIN_SPAN = 1.0  # points: equal scores get one colour, not the two ends of a collapsed scale
MAX_WIDTH, CELL_WIDTH = 24.0, 1.0  # inches: the figure, and one cell while it fits
MIN_FONT = 7.0  # points: smaller cell numbers are not drawn (the colours and the table still tell)


def heatmap_dropouts(cells, best_hyper, n=HEATMAP_PANELS):
    """The dropouts given a panel: the best job's, then those of the highest scores, n at most."""
    ranked = sorted((h for h, v in cells.items() if v is not None), key=lambda h: -best_jobs.score(cells[h]))
    shown = [best_hyper[2]]
    for h in ranked:
        if len(shown) >= n:
            break
        if h[2] not in shown:
            shown.append(h[2])
    return set(shown)


def cell_font(value_chars, cell_inches):
    """The font size (points) at which a cell's number fits its width, 9 at most; None when it would be
    under MIN_FONT. A digit of the default font is about 0.6 em wide."""
    size = min(9.0, 0.85 * cell_inches * 72 / (0.6 * value_chars))
    return size if size >= MIN_FONT else None


def heatmap_figure(task, cells, best_hyper):
    """The figure of draw_heatmap, returned (tests look at its Axes and images)."""
    import numpy as np
    from matplotlib.patches import Rectangle

    plt = pyplot()
    lrs = sorted({h[0] for h in cells}, key=float)
    bss = sorted({h[1] for h in cells}, key=int)
    dropouts = sorted({h[2] for h in cells}, key=float, reverse=True)  # the grid's order: 0.1, then 0.0
    shown = heatmap_dropouts(cells, best_hyper)
    note = "" if len(shown) == len(dropouts) else f" ({len(shown)} of {len(dropouts)} dropouts: the best ones)"
    dropouts = [d for d in dropouts if d in shown]
    cells = {h: v for h, v in cells.items() if h[2] in shown}
    row, column = {lr: i for i, lr in enumerate(lrs)}, {bs: j for j, bs in enumerate(bss)}
    scores = [best_jobs.score(v) for v in cells.values() if v is not None]
    low, high = score_limits(scores, HEATMAP_MIN_SPAN, pad=0)
    # panels side by side while their cells get CELL_WIDTH each; else one above the other, so that many batch
    # sizes (15 columns a panel) keep numbers one can read
    across = len(dropouts)
    if across > 1 and CELL_WIDTH * len(bss) * across + 1.2 * across + 1.5 > MAX_WIDTH:
        across = 1
    down = len(dropouts) // across
    title = f"{task.upper()}: best dev {metric_name(task)} per configuration{note}"
    # never narrower than the title (about 0.1 inch a character at its size): one column would clip it
    width = min(max(CELL_WIDTH * len(bss) * across + 1.2 * across + 1.5, 0.1 * len(title) + 0.5), MAX_WIDTH)
    # the width a cell gets once labels and the colour bar have theirs: what its number must fit in
    cell = (width - 1.2 * across - 1.5) / (len(bss) * across)
    chars = max((len(v.split("/")[0]) for v in cells.values() if v is not None), default=5)
    font = cell_font(chars, cell) if len(lrs) * len(bss) <= HEATMAP_LABELS else None
    height = min(down * (0.7 * len(lrs) + 1.3) + 0.7, 16 * down)
    fig, axes = plt.subplots(down, across, figsize=(width, height), squeeze=False, layout="constrained")
    for ax, dropout in zip(axes.flat, dropouts):
        table = np.full((len(lrs), len(bss)), np.nan)
        for (lr, bs, d), value in cells.items():
            if d == dropout and value is not None:
                table[row[lr], column[bs]] = best_jobs.score(value)
        image = ax.imshow(np.ma.masked_invalid(table), cmap="viridis", vmin=low, vmax=high, aspect="auto")
        for (i, j), s in np.ndenumerate(table):
            if font and not np.isnan(s):
                value = cells[(lrs[i], bss[j], dropout)]
                # the text colour from the cell's own colour (its luminance), not from where s lies in the
                # range: right for any colour map and for a range that all values share
                r, g, b, _ = image.cmap(image.norm(s))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(
                    j,
                    i,
                    value.replace("/", "\n"),
                    ha="center",
                    va="center",
                    fontsize=font,
                    color="white" if dark else "black",
                )
        if best_hyper[2] == dropout:
            ax.add_patch(
                Rectangle(
                    (bss.index(best_hyper[1]) - 0.5, lrs.index(best_hyper[0]) - 0.5),
                    1,
                    1,
                    fill=False,
                    edgecolor="red",
                    linewidth=3,
                )
            )
        ax.set_xticks(range(len(bss)), bss)
        ax.set_yticks(range(len(lrs)), lrs)
        ax.set_xlabel("batch size")
        ax.set_ylabel("learning rate")
        ax.set_title(f"dropout {dropout}")
    bar = fig.colorbar(image, ax=axes.ravel().tolist(), label=f"best dev {metric_name(task)} (%)")
    plain_numbers(bar.ax.yaxis)
    fig.suptitle(title)
    return fig


def draw_heatmap(path, task, cells, best_hyper):
    """cells: {(lr, bs, dropout): value or None}: learning rate down, batch size across, one panel per
    dropout (side by side, or one above the other where many batch sizes would not fit across); every panel
    on one colour scale (at least HEATMAP_MIN_SPAN points, so equal scores share a colour), the best cell
    framed in red, a cell without a result empty, a cell's number only at a font size one can read."""
    save(heatmap_figure(task, cells, best_hyper), path)


def expected_figure(task, values, curve):
    """The expected best dev score of n = 1 .. N configurations (curve: expected.expected_max(values)), with
    a band of one standard deviation, and the whole grid's best as a line."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    n = list(range(1, len(curve) + 1))
    means = [m for m, _ in curve]
    # the best of n draws lies between the grid's worst and best: the band stops there
    below = [max(m - s, min(values)) for m, s in curve]
    above = [min(m + s, max(values)) for m, s in curve]
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    ax.fill_between(n, below, above, color="tab:blue", alpha=0.2, linewidth=0, label="± 1 standard deviation")
    # a marker per n while they stay apart; thousands would merge into a thick band
    ax.plot(
        n,
        means,
        color="tab:blue",
        marker="o" if len(curve) <= 60 else "",
        markersize=4,
        linewidth=2,
        label="expected best dev score",
    )
    ax.axhline(
        max(values),
        color="black",
        linestyle="--",
        linewidth=1.2,
        label=f"grid best: {max(values):.2f} (all {len(values)})",
    )
    ax.set_xlim(0.5, len(curve) + 0.5)
    ax.set_ylim(*score_limits(below + above + [max(values)]))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    plain_numbers(ax.xaxis)
    plain_numbers(ax.yaxis)
    ax.set_xlabel("configurations tried (drawn at random, with replacement)")
    ax.set_ylabel(f"expected best dev {metric_name(task)} (%)")
    ax.set_title(f"{task.upper()}: expected validation performance (Dodge et al. 2019)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, fontsize="small")
    return fig


def draw_expected(path, task, values, curve):
    """values: the best dev score (best_jobs.score) of every configuration with a result, two at least."""
    save(expected_figure(task, values, curve), path)


def draw(path, drawing, *args):
    """drawing(path, *args); True if the figure was written. A figure that fails is left out with a warning:
    the tables matter more than any picture of them."""
    try:
        drawing(path, *args)
        return True
    except Exception as e:  # anything matplotlib or a hand-edited record may raise
        best_jobs.warn(path, f"could not draw ({type(e).__name__}: {e})", "left out of the report", tool="report")
        return False


# ---------------------------------------------------------------- report.md
def markdown_table(header, rows):
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, ["---"] * len(header), *rows]) + "\n"


def best_table(best, row):
    """Per task: our best value, its hyper-parameters and, with the README's row, its number and the difference."""
    header = (
        ["Task", "Ours"]
        + ([f"Published ({row['model']})", "Ours − published"] if row else [])
        + ["Learning rate", "Batch size", "Dropout", "Source"]
    )
    lines = []
    for task in scheduler.REPORT_ORDER:
        value, hyper, source = best.get(task, ("-", ("-", "-", "-"), "-"))
        theirs = []
        if row:
            published = row[task.upper()]
            theirs = [published, difference(value, published) if task in best else "-"]
        lines.append([task.upper(), value] + theirs + list(hyper) + [source])
    return markdown_table(header, lines)


def scores(configs):
    """The best dev score (best_jobs.score: CMRC2018's EM) of every configuration with a result."""
    return [best_jobs.score(found[0]) for found in configs.values() if found]


def expected_section(task, values, curve, figures):
    """report.md's lines on expected validation performance (curve: expected.expected_max(values), None for
    fewer than two values): the figure, a one-line reading at half the grid and a table of n against the
    expected best; one line saying why where a task has a single result."""
    metric = metric_name(task)
    if curve is None:
        return [
            f"No expected-performance curve: {len(values)} configuration with a result, nothing to draw a subset from.",
            "",
        ]
    half = (len(values) + 1) // 2
    text = []
    if f"{task}_expected.png" in figures:
        text += [f"![{task.upper()} expected validation performance]({task}_expected.png)", ""]
    text += [
        f"Expected validation performance (Dodge et al. 2019; {metric}, configurations drawn at random with "
        f"replacement). {half} of {len(values)} configurations: expected best {curve[half - 1][0]:.2f} "
        f"± {curve[half - 1][1]:.2f} (grid best {max(values):.2f}).",
        "",
    ]
    rows = [[str(n), f"{curve[n - 1][0]:.2f}", f"{curve[n - 1][1]:.2f}"] for n in expected.table_sizes(len(values))]
    text.append(markdown_table(["Configurations tried", f"Expected best {metric}", "Standard deviation"], rows))
    return text


def task_section(task, best, row, configs, figures, reruns=None, curve=None):
    """A task's heading, its best configuration (beside the published number and, after --seeds, its mean
    ± sd over seeds), figures, expected performance (curve, as expected_section takes it) and every
    configuration."""
    value, best_hyper, _ = best[task]
    published = row[task.upper()] if row else None
    versus = f"; published {published}, ours − published {difference(value, published)}" if row else ""
    text = [
        f"## {task.upper()}",
        "",
        f"Best: **{value}** ({'EM/F1' if '/' in value else metric_name(task)}) with learning rate {best_hyper[0]}, "
        f"batch size {best_hyper[1]}, dropout {best_hyper[2]} ({'_'.join(best_hyper)}){versus}.",
        "",
    ]
    if reruns is not None:
        text += [f"Over seeds (the grid's job and its reruns): {seeds.line(reruns)}.", ""]
    for kind, caption in (("curves", "dev curves"), ("heatmap", "heat map")):
        if f"{task}_{kind}.png" in figures:
            text += [f"![{task.upper()} {caption}]({task}_{kind}.png)", ""]
    logged = ["_".join(h) for h, found in configs.items() if found and found[1] == "log"]
    if logged:
        text += [f"No curve for {', '.join(logged)}: known only from the log (no record, so no dev history).", ""]
    text += expected_section(task, scores(configs), curve, figures)
    rows = []
    for hyper, found in configs.items():
        cells = ["_".join(hyper), *hyper, *(found or ("-", "no result"))]
        rows.append([f"**{c}**" for c in cells] if hyper == best_hyper else cells)
    text.append(markdown_table(["Configuration", "Learning rate", "Batch size", "Dropout", "Result", "Source"], rows))
    return "\n".join(text)


def dev_curves(directory, task, configs):
    """{(lr, bs, dropout): (steps, values, best step, best value)} of the jobs with a record and a history:
    a job known only from its log has no curve."""
    key = "em" if tasks.get(task).metric == "em_f1" else "acc"
    curves = {}
    for hyper, found in configs.items():
        if not found or found[1] != "record":
            continue
        record = results.read_record(os.path.join(directory, task, "_".join(hyper) + ".json"))
        steps, values = dev_curve(record, key) if record else ([], [])
        if steps:
            best = record.get("best") or {}
            # the star at the record's own number, as precise as the curve it sits on: best.value is rounded
            # to two decimals, and a flat curve 0.003 above it would float over its star
            value = (best.get("metrics") or {}).get(key)
            value = value if results.is_number(value) else best_jobs.score(found[0])
            curves[hyper] = (steps, values, best.get("step"), value)
    return curves


def write_report(directory, model, best):
    """Draw the figures of every task in best (best_jobs.best_per_task) and write RUN_DIR/report/report.md,
    after extract.write_reports (its results.md is the first table). Returns report.md's path."""
    out = os.path.join(directory, "report")
    os.makedirs(out, exist_ok=True)
    configs = {task: configurations(directory, task) for task in best}
    figures, performance = set(), {}  # performance: each task's expected.expected_max curve
    for task in best:
        curves = dev_curves(directory, task, configs[task])
        if curves and draw(os.path.join(out, f"{task}_curves.png"), draw_curves, task, curves, best[task][1]):
            figures.add(f"{task}_curves.png")
        cells = {hyper: found[0] if found else None for hyper, found in configs[task].items()}
        if draw(os.path.join(out, f"{task}_heatmap.png"), draw_heatmap, task, cells, best[task][1]):
            figures.add(f"{task}_heatmap.png")
        values = scores(configs[task])
        if len(values) >= 2:  # computed once: the figure and report.md's table show the same curve
            performance[task] = expected.expected_max(values)
            if draw(os.path.join(out, f"{task}_expected.png"), draw_expected, task, values, performance[task]):
                figures.add(f"{task}_expected.png")

    row = published_row(model)
    text = [f"# CLUE grid report: {scheduler.model_label(model)}", "", "Best dev result per task (results.md):", ""]
    with contextlib.suppress(FileNotFoundError):
        with open(os.path.join(directory, "results.md"), encoding="utf-8") as f:
            text.append(f.read())
    text += ["## Best hyper-parameters", ""]
    if row:
        text += [
            f"Published: the dev results of {row['model']} in the upstream README (the same grid, on GPUs; "
            f"AVG {row['AVG']} over the ten tasks). CMRC2018 is compared on EM.",
            "",
        ]
    elif is_local_path(model):
        text += ["No published numbers for a local model.", ""]
    else:
        text += [f"No published numbers for {model}: the upstream README's table does not list it.", ""]
    text.append(best_table(best, row))
    spread = seeds.summary(directory, reruns_only=True, best=best)
    text += [
        task_section(task, best, row, configs[task], figures, spread.get(task), performance.get(task)) for task in best
    ]
    path = os.path.join(out, "report.md")
    with atomic_write(path) as f:
        f.write("\n".join(text).rstrip("\n") + "\n")
    return path
