"""The upstream README's two tables across the models of a grid root: dev results, and best hyper-parameters.

    python grid_search_tools/leaderboard.py [--output_root ROOT] [--output DIR] [MODEL ...]

Without MODEL, every model folder under ROOT: a folder holding at least one TASK/ folder with a job file
(TASK/LR_BS_DROPOUT.json or .log), at ROOT/LABEL or, for a built-in name with an organisation
(`hfl/rbt3`), ROOT/ORG/NAME; found by exact name (os.scandir), links skipped. A MODEL is a model name or a
local directory, mapped to its folder as the grid maps it (scheduler.model_label).

The best job per task, AVG and the published numbers are extract's and report's (the same rule, the same
code). A model folder is compared with the README's row of its label (ROOT/ernie-3.0-base-zh with ERNIE
3.0-Base-zh), whether the grid ran the built-in model or a local folder of that name (an offline copy):
the label is what the leaderboard row is named by. When the model's own config gives another
architecture than the README's row, the row is not compared (a warning says so): a different model that
happens to carry the name.

Rows are sorted as the README's table: by architecture, more layers first, then the wider hidden size,
then AVG descending; a model whose architecture is unknown comes last. Arch is NUM_LAYERS L HIDDEN H from
the model's config.json (or model_config.json) where the records' "model" is a local folder, else the
README's row, else `-`.

Written to DIR (default ROOT/leaderboard/): leaderboard.md (both tables, as printed), leaderboard.csv (our
rows of the results table, in the published CSV's own columns: arch,model,AVG,AFQMC,...,C3, so the two
files are read alike), leaderboard_hyperparameters.csv (the hyper-parameters table, one row per model) and
leaderboard.png (our scores as a table coloured within each column, with ours − published beneath).
Exit 0: written; 2: bad input (a missing model or ROOT, no models) or a file that cannot be written, said
in one line.
"""

import argparse
import csv
import json
import os
import re
import sys

from .. import results
from ..fileio import DataError, atomic_write, check_writable, is_local_path, printable, read_regular
from . import best_jobs, report, scheduler, seeds

PROG = "leaderboard"
TASKS = scheduler.REPORT_ORDER
RESULT_HEADER = ["Arch", "Model", "AVG"] + [t.upper() for t in TASKS]  # as the published CSV has them
CSV_HEADER = ["arch", "model", "AVG"] + [t.upper() for t in TASKS]  # published_results.csv's own header
CONFIGS = ("config.json", "model_config.json")  # PaddleNLP's current name first, then its older one
CONFIG_MAX_BYTES = 1 << 20  # a model config is a few KiB
ARCH = re.compile(r"([0-9]+)L([0-9]+)H", re.ASCII)
DEFAULT_DROPOUT = 0.1  # the grid's usual dropout: only another one is shown in the hyper-parameters table


def warn(path, why, then):
    print(f"{PROG}: warning: {printable(path)}: {why}; {then}", file=sys.stderr)


class Model:
    """One model's row: its label, run folder, extract's best per task, its AVG, arch and published row."""

    def __init__(self, label, directory, best, arch, published):
        self.label, self.directory, self.best, self.arch, self.published = label, directory, best, arch, published
        self.avg = best_jobs.average(best)
        self.seeds = seeds.summary(directory, reruns_only=True, best=best)  # {task: SeedRuns} after --seeds


# ---------------------------------------------------------------- finding the model folders
def is_run_folder(path):
    return any(best_jobs.job_files(path, task) for task in TASKS)


def folders(path):
    """(name, path) of path's sub-folders by exact name; a link is never followed (the root is shared)."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    return sorted((e.name, e.path) for e in entries if e.is_dir(follow_symlinks=False))


def find_models(root):
    """[(label, run folder)] under root: ROOT/LABEL, or ROOT/ORG/NAME for a name like `hfl/rbt3`."""
    found = []
    for name, path in folders(root):
        if is_run_folder(path):
            found.append((name, path))
        else:  # an organisation's folder: its models are one level down
            found += [
                (f"{name}/{inner}", inner_path) for inner, inner_path in folders(path) if is_run_folder(inner_path)
            ]
    return found


def given_models(models, root):
    """[(label, run folder, the model as given)]; a model without a results folder is a SetupError."""
    found = {}
    for model in models:
        directory = scheduler.existing_run_dir(model, root)
        if not is_run_folder(directory):
            raise scheduler.SetupError(
                f"{directory} holds no job files (TASK/LR_BS_DROPOUT.json or .log) for model {model!r}"
            )
        found.setdefault(scheduler.model_label(model), (directory, model))
    return [(label, directory, model) for label, (directory, model) in found.items()]


# ---------------------------------------------------------------- architecture
def arch_of(config):
    """NUM_LAYERS L HIDDEN H of a config's fields, or the reason there is none. PaddleNLP's older
    model_config.json keeps them in init_args[0]."""
    if (
        isinstance(config, dict)
        and "num_hidden_layers" not in config
        and isinstance(config.get("init_args"), list)
        and config["init_args"]
        and isinstance(config["init_args"][0], dict)
    ):
        config = config["init_args"][0]
    if not isinstance(config, dict):
        return None, "not a JSON object"
    values = [config.get(key) for key in ("num_hidden_layers", "hidden_size")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        return None, "no positive integer num_hidden_layers and hidden_size"
    return f"{values[0]}L{values[1]}H", None


def config_arch(model_dir):
    """The arch in a local model folder's config, or None (no config there, or a bad one: a warning)."""
    for name in CONFIGS:
        path = os.path.join(model_dir, name)
        if not os.path.lexists(path):
            continue
        try:
            arch, why = arch_of(json.loads(read_regular(path, CONFIG_MAX_BYTES).decode("utf-8")))
        except DataError as e:
            warn(path, str(e).removeprefix(f"{printable(path)}: "), "arch shown as -")
            return None
        except (UnicodeDecodeError, ValueError, RecursionError):
            arch, why = None, "not valid JSON"
        if why:
            warn(path, why, "arch shown as -")
        return arch
    return None


def model_dir(directory, best, given):
    """The local model folder of a run, or None for a built-in name: the MODEL given, else the "model" of
    its best jobs' records (as the training script was given it)."""
    if given is not None and os.path.isdir(given):
        return given
    for task, (_, hyper, source) in best.items():
        if source != "record":  # a job known only from its log names no model
            continue
        record = results.read_record(os.path.join(directory, task, "_".join(hyper) + ".json"))
        model = record.get("model") if record else None
        if isinstance(model, str) and model:
            path = os.path.expanduser(model)
            if os.path.isdir(path):
                return path
            if is_local_path(model):  # a folder, but not on this machine (or not from here)
                warn(
                    directory,
                    f"its records name the model folder {model}, which is not here",
                    "arch from the published table, if it lists the model",
                )
            return None
    return None


def make_model(label, directory, given=None):
    best = best_jobs.best_per_task(directory)
    local = model_dir(directory, best, given)
    arch = config_arch(local) if local else None
    published = report.published_row(label)  # by the label: see the module's docstring
    if published and arch and arch != published["arch"]:
        warn(
            directory,
            f"arch {arch} is not the published {report.builtin_name(published['model'])}'s {published['arch']}",
            "not compared with its published row",
        )
        published = None
    if arch is None and local is None and published:
        arch = published["arch"]
    return Model(label, directory, best, arch or "-", published)


# ---------------------------------------------------------------- the tables
def sort_key(model):
    """The README table's order: more layers, then a wider hidden size, then the higher AVG; unknown last."""
    m = ARCH.fullmatch(model.arch)
    arch = (0, -int(m[1]), -int(m[2])) if m else (1, 0, 0)
    return arch + (model.avg is None, -(model.avg or 0), model.label)


def avg_text(avg):
    return "-" if avg is None else f"{avg:.2f}"


def avg_difference(model):
    """Ours − published AVG: against the README's AVG when every task has a result, else against the
    published mean of the same tasks (said in the cell), so that the two averages cover the same tasks."""
    if model.avg is None:
        return "-"
    if len(model.best) == len(TASKS):
        return report.difference(avg_text(model.avg), model.published["AVG"])
    same = best_jobs.average({t: (model.published[t.upper()],) for t in model.best})
    tasks_done = f"{len(model.best)} task" + ("s" if len(model.best) > 1 else "")
    return f"{report.difference(avg_text(model.avg), avg_text(same))} ({tasks_done})"


def our_row(m):
    return [m.arch, m.label, avg_text(m.avg)] + [m.best[t][0] if t in m.best else "-" for t in TASKS]


def result_rows(models):
    """Table 1: each model's row, and for one in the README its published row and ours − published."""
    rows = []
    for m in models:
        rows.append(our_row(m))
        if m.published:
            rows.append(
                [m.published["arch"], f"{m.label} (published)", m.published["AVG"]]
                + [m.published[t.upper()] for t in TASKS]
            )
            rows.append(
                [m.arch, f"{m.label} (ours − published)", avg_difference(m)]
                + [report.difference(m.best[t][0], m.published[t.upper()]) if t in m.best else "-" for t in TASKS]
            )
    return rows


def hyper_cell(best, task):
    if task not in best:
        return "-"
    lr, bs, dropout = best[task][1]
    return f"{lr},{bs}" + ("" if float(dropout) == DEFAULT_DROPOUT else f",{dropout}")


def hyper_rows(models):
    """Table 2: per model and task the best job's `lr,batch`, `,dropout` added where it is not 0.1."""
    return [[m.label] + [hyper_cell(m.best, t) for t in TASKS] for m in models]


def markdown_cell(text):
    return printable(text).replace("|", "\\|")  # a `|` in a name would split the cell


def markdown(models):
    text = [
        "# CLUE leaderboard",
        "",
        "Best dev result per task (extract's rule; CMRC2018 EM/F1, AVG counting its EM); sorted by "
        "architecture (layers, then hidden size, descending), then AVG.",
        "",
        report.markdown_table(RESULT_HEADER, [[markdown_cell(c) for c in r] for r in result_rows(models)]),
    ]
    partial = [f"{markdown_cell(m.label)} {len(m.best)} of {len(TASKS)}" for m in models if len(m.best) < len(TASKS)]
    if partial:
        text.append(f"AVG over the tasks with results: {', '.join(partial)}.\n")
    text += [
        "## Best hyper-parameters",
        "",
        f"`lr,batch`, then `,dropout` where it is not {DEFAULT_DROPOUT}.",
        "",
        report.markdown_table(
            ["Model"] + [t.upper() for t in TASKS], [[markdown_cell(c) for c in r] for r in hyper_rows(models)]
        ),
    ]
    rerun = [m for m in models if m.seeds]
    if rerun:
        text += [
            "",
            "## Spread over seeds",
            "",
            f"Mean ± sample sd of each task's best configuration over seed {scheduler.GRID_SEED} (the grid's job, "
            "the number above) and its reruns (`grid_search.py --seeds N`); n seeds in brackets.",
            "",
            report.markdown_table(
                ["Model"] + [t.upper() for t in TASKS],
                [[markdown_cell(m.label)] + [seed_cell(m.seeds.get(t)) for t in TASKS] for m in rerun],
            ),
        ]
    return "\n".join(text)


def seed_cell(runs):
    if runs is None:
        return "-"
    return f"{runs.mean:.2f}" + ("" if runs.sd is None else f" ± {runs.sd:.2f}") + f" ({len(runs.values)})"


def write_csv(path, header, rows):
    with atomic_write(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[printable(c) for c in r] for r in rows])


# ---------------------------------------------------------------- the figure
def row_label(m):
    """The figure's row name: the model, its arch, and how many tasks its AVG covers when not all."""
    tasks_done = "" if len(m.best) == len(TASKS) else f", {len(m.best)}/{len(TASKS)} tasks"
    return f"{printable(m.label)}\n{m.arch if m.arch != '-' else 'arch unknown'}{tasks_done}"


def draw_table(path, models):
    """Our scores as a table: a row per model, AVG and the tasks across, each cell coloured by its place
    within its column (darker: better), ours − published beneath where the README has the model."""
    import numpy as np

    plt = report.pyplot()
    columns = ["AVG"] + [t.upper() for t in TASKS]
    scores = np.full((len(models), len(columns)), np.nan)
    for i, m in enumerate(models):
        if m.avg is not None:
            scores[i, 0] = m.avg
        for j, task in enumerate(TASKS, start=1):
            if task in m.best:
                scores[i, j] = best_jobs.score(m.best[task][0])
    low, high = np.nanmin(scores, axis=0, initial=np.inf), np.nanmax(scores, axis=0, initial=-np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):  # a column of one value, or of none
        shade = np.where(np.isnan(scores), np.nan, np.where(high > low, (scores - low) / (high - low), 0.5))
    compared = any(m.published for m in models)
    fig, ax = plt.subplots(
        figsize=(1.15 * len(columns) + 3.2, (0.75 if compared else 0.5) * len(models) + 1.6), layout="constrained"
    )
    ax.imshow(np.ma.masked_invalid(0.15 + 0.6 * shade), cmap="Greens", vmin=0, vmax=1, aspect="auto")
    for i, m in enumerate(models):
        for j, column in enumerate(columns):
            task = column.lower()
            value = avg_text(m.avg) if j == 0 else m.best[task][0] if task in m.best else "-"
            diff = None
            if m.published and value != "-":
                diff = (
                    avg_difference(m).split(" (")[0]
                    if j == 0
                    else report.difference(value, m.published[column]).split(" ")[0]
                )
            size = 8 if "/" in value else 10  # CMRC2018's EM/F1 is twice as long
            ax.text(
                j,
                i - (0.15 if diff else 0),
                value,
                ha="center",
                va="center",
                fontsize=size,
                parse_math=False,
                fontweight="bold" if j == 0 else "normal",
            )
            if diff:
                colour = "darkgreen" if diff.startswith("+") else "darkred"
                ax.text(j, i + 0.25, diff, ha="center", va="center", fontsize=8, color=colour, parse_math=False)
    ax.set_xticks(range(len(columns)), columns, fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(models)), [row_label(m) for m in models], fontsize=9, parse_math=False)
    ax.set_xticks(np.arange(len(columns) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(models) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="both", length=0)
    note = (
        "\nBeneath: ours − published (green: ours higher; AVG against the published mean of the same tasks)."
        if compared
        else ""
    )
    ax.set_title(
        f"CLUE dev results, best job per task (CMRC2018: EM/F1; AVG counts its EM). Darker: better within "
        f"its column.{note}",
        fontsize=9,
        loc="left",
    )
    report.save(fig, path)


# ---------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", metavar="MODEL", help="model names or local model folders (default: all)")
    p.add_argument("--output_root", default=".", help="the grid's root: ROOT/MODEL_LABEL/TASK/ (default .)")
    p.add_argument("--output", help="where the files go (default ROOT/leaderboard)")
    args = p.parse_args(argv)
    root = args.output_root
    if not os.path.isdir(root):
        print(f"{PROG}: error: --output_root {printable(root)}: no such folder", file=sys.stderr)
        return 2
    out = args.output or os.path.join(root, "leaderboard")
    try:
        check_writable(out, "--output")
        if args.models:
            found = given_models(args.models, root)
        else:
            found = [(label, directory, None) for label, directory in find_models(root)]
    except (scheduler.SetupError, DataError) as e:
        print(f"{PROG}: error: {printable(e)}", file=sys.stderr)
        return 2
    if not found:
        print(
            f"{PROG}: error: no model results under {printable(os.path.abspath(root))} (no MODEL/TASK/"
            "LR_BS_DROPOUT.json or .log)",
            file=sys.stderr,
        )
        return 2
    models = sorted((make_model(*f) for f in found), key=sort_key)
    text = markdown(models)
    print(text, end="")
    paths = [
        os.path.join(out, name)
        for name in ("leaderboard.md", "leaderboard.csv", "leaderboard_hyperparameters.csv", "leaderboard.png")
    ]
    try:
        with atomic_write(paths[0]) as f:
            f.write(text)
        write_csv(paths[1], CSV_HEADER, [our_row(m) for m in models])
        write_csv(paths[2], ["model"] + [t.upper() for t in TASKS], hyper_rows(models))
    except (OSError, DataError) as e:  # a full disk, a folder where a file goes: one line
        print(f"{PROG}: error: {printable(e)}", file=sys.stderr)
        return 2 if isinstance(e, DataError) else 1
    drawn = report.draw(paths[3], draw_table, models)  # a figure that fails costs the figure only (a warning)
    print(f"(written: {', '.join(printable(p) for p in paths[: 3 + drawn])})", file=sys.stderr)
    return 0
