"""The README's demo command keeps working."""

import json
import os

from cluebench import demo, results
from cluebench.grid import best_jobs, scheduler as grid
from helpers import ROOT, log_field, read_jsonl, run_python

import pytest

pytestmark = pytest.mark.slow  # end to end: `pytest -m "not slow"` leaves this module out


def chance(data, task):
    """Dev accuracy (%) without learning: the majority label; for C3 the better of a random pick and
    always the same position."""
    if task != "c3":
        labels = [r["label"] for r in read_jsonl(os.path.join(data, f"{task}_public", "dev.json"))]
        return 100 * max(labels.count(label) for label in labels) / len(labels)
    questions = []
    for name in ("d-dev.json", "m-dev.json"):
        with open(os.path.join(data, "c3_public", name), encoding="utf-8") as f:
            questions += [q for document in json.load(f) for q in document[1]]
    positions = [q["choice"].index(q["answer"]) for q in questions]
    return 100 * max(
        sum(1 / len(q["choice"]) for q in questions) / len(questions),
        max(positions.count(p) for p in positions) / len(positions),
    )


def test_demo(tmp_path):
    """As the README runs it: the default, relative workdir (here under a scratch folder)."""
    proc = run_python(["-m", "cluebench.demo"], cwd=tmp_path, env={"PYTHONPATH": ROOT}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tmp_path = tmp_path / "demo_output"
    record = results.read_record(str(tmp_path / "tnews" / results.FILENAME))
    finals = [log_field(line, 7) for line in proc.stderr.splitlines() if " - best_result: " in line]
    assert finals[0] == record["best"]["value"] + "\x1b[0m"  # then the grid's warm-up and jobs
    assert f"best dev accuracy {record['best']['value']}" in proc.stdout
    assert float(record["best"]["value"]) >= 90.0  # synthetic TNEWS is learnable; majority class is 6.67
    for name in ("tnews11_predict.json", "tnews10_predict.json"):
        with open(os.path.join(tmp_path, "tnews", name), encoding="utf-8") as f:
            assert [json.loads(line)["id"] for line in f] == list(range(50))
    # the small grid: 2 TNEWS, 2 AFQMC and 2 C3 jobs (batch 24 is a C3 size only), then the extract tables
    directory = grid.run_dir(str(tmp_path / "tiny-ernie"), str(tmp_path / "grid"))
    rates = [float(lr) for lr in demo.GRID_RATES]
    assert grid.off_grid(rates) == rates  # rates upstream's grid lacks, run through --off_grid
    jobs = grid.select(grid.full_grid(rates), list(demo.GRID_TASKS), rates, [16, 24])
    assert len(jobs) == 6 and all(grid.is_complete(directory, j) for j in jobs)
    best = best_jobs.best_per_task(directory)
    assert f"C3\t{best['c3'][0]}\t({best['c3'][1][0]},24,0.1)" in proc.stdout
    assert "All done!" in proc.stdout
    # ... and it learns: every task's best beats chance, each job has a curve (evaluations > 1), at least
    # one task's best job got better after its first evaluation, and the rates differ somewhere (heat map)
    records = {j: results.read_record(grid.record_path(directory, j)) for j in jobs}
    curves = {j: [h["metrics"]["acc"] for h in r["history"]] for j, r in records.items()}
    for task in demo.GRID_TASKS:
        level = chance(str(tmp_path / "grid_data"), task)
        assert best_jobs.score(best[task][0]) > level + 10, (task, best[task], level)  # by more than luck
        assert f"  {task.upper():6} {best[task][0]:>6} at learning rate {best[task][1][0]}" in proc.stdout
    assert all(len(curve) > 1 for curve in curves.values()), curves
    assert any(max(curve) > curve[0] for j, curve in curves.items() if j.name == "_".join(best[j.task][1])), curves
    assert any(len({records[j]["best"]["value"] for j in jobs if j.task == task}) > 1 for task in demo.GRID_TASKS)
    # ... the report has every figure, and the leaderboard the model's row with the grid's best values
    figures = set(os.listdir(os.path.join(directory, "report")))
    assert {f"{t}_{kind}.png" for t in demo.GRID_TASKS for kind in ("curves", "heatmap", "expected")} <= figures
    row = f"| 2L64H | tiny-ernie | {best_jobs.average(best):.2f} | {best['afqmc'][0]} | {best['tnews'][0]} |"
    assert row in proc.stdout, proc.stdout[-3000:]
    # ... and the grid ends with a leaderboard zip of the best jobs that the checker accepts
    zip_path = os.path.join(directory, "submission.zip")
    assert f"Submission: {zip_path} " in proc.stdout
    check = run_python(
        [
            os.path.join(ROOT, "grid_search_tools", "check_submission.py"),
            zip_path,
            "--data_dir",
            str(tmp_path / "grid_data"),
        ],
        timeout=300,
    )
    assert check.returncode == 0, check.stdout
    with open(tmp_path / "grid_data" / "c3_public" / "test1.1.json", encoding="utf-8") as f:
        c3_questions = sum(len(document[1]) for document in json.load(f))
    assert [line for line in check.stdout.splitlines() if line.startswith("OK")] == [
        "OK  afqmc_predict.json  24 ids",
        f"OK  c311_predict.json  {c3_questions} ids",
        "OK  tnews10_predict.json  50 ids",
        "OK  tnews11_predict.json  50 ids",
    ]
