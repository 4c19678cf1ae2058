"""The best dev result per task of a grid run: spec §10's two tables, plus CSV and Markdown.

    python -m cluebench.extract MODEL [--output_root ROOT]      (what extract_result.sh runs)

Which job is best, and where its result comes from, is best.py's rule.
"""

import csv
import os
import sys

from .. import tasks
from ..fileio import atomic_write
from . import best_jobs, report, scheduler


def tables(best):
    """The text upstream's extract_result.sh prints."""
    lines = [
        "\t".join(t.upper() for t in tasks.REPORT_ORDER),
        "".join((best[t][0] if t in best else "0") + "\t" for t in tasks.REPORT_ORDER),
        "=" * 68,
        "Best hyper-parameters list: ",
        "=" * 68,
        "TASK\tresult\t(lr, batch_size, dropout_p)",
    ]
    for task in tasks.REPORT_ORDER:
        if task in best:
            value, (lr, bs, dropout), _ = best[task]
            lines.append(f"{task.upper()}\t{value}\t({lr},{bs},{dropout})")
    return "\n".join(lines) + "\n"


def write_reports(directory, model, best):
    with atomic_write(os.path.join(directory, "results.csv")) as f:
        writer = csv.writer(f)
        writer.writerow(["task", "result", "learning_rate", "batch_size", "dropout", "source"])
        for task in tasks.REPORT_ORDER:
            if task in best:
                value, hyper, source = best[task]
                writer.writerow([task, value, *hyper, source])
    avg = best_jobs.average(best)
    header = ["Model", "AVG"] + [t.upper() for t in tasks.REPORT_ORDER]
    row = [scheduler.model_label(model), "-" if avg is None else f"{avg:.2f}"] + [
        best[t][0] if t in best else "-" for t in tasks.REPORT_ORDER
    ]
    with atomic_write(os.path.join(directory, "results.md")) as f:
        f.write("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n| " + " | ".join(row) + " |\n")
        if len(best) < len(tasks.REPORT_ORDER):
            f.write(f"\nAVG over the {len(best)} of {len(tasks.REPORT_ORDER)} tasks with results.\n")


def main(argv=None):
    args = scheduler.run_dir_parser(__doc__).parse_args(argv)
    directory = scheduler.run_dir_of(args, "extract")
    if directory is None:
        return 2
    best = best_jobs.best_per_task(directory)
    print(tables(best), end="")
    write_reports(directory, args.model, best)
    print(f"(also written: {os.path.join(directory, 'results.csv')} and results.md)", file=sys.stderr)
    print(f"(report: {report.write_report(directory, args.model, best)} and its figures)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
