"""grid_search.py --seeds N: reruns of each task's best job with other seeds, with stand-in jobs (no training)."""

import dataclasses
import json
import os
import subprocess
import sys
from types import SimpleNamespace

from cluebench import results
from cluebench.grid import best_jobs, scheduler as grid, seeds, submission
from helpers import ROOT, load_script
from test_grid import FakeLauncher, FakeProcess

import pytest

# the stand-in grid: three TNEWS jobs and three AFQMC ones, each job's dev value fixed here
VALUES = {
    "tnews/1e-05_32_0.1": "50.00",
    "tnews/2e-05_32_0.1": "56.50",
    "tnews/3e-05_32_0.1": "53.00",
    "afqmc/1e-05_32_0.1": "70.00",
    "afqmc/2e-05_32_0.1": "71.00",
    "afqmc/3e-05_32_0.1": "69.00",
    "tnews/2e-05_32_0.1_s43": "55.80",
    "tnews/2e-05_32_0.1_s44": "56.06",
    "afqmc/2e-05_32_0.1_s43": "99.00",
    "afqmc/2e-05_32_0.1_s44": "70.50",
}  # a rerun above the best
GRID = ["--tasks", "tnews", "afqmc", "--learning_rates", "1e-05", "2e-05", "3e-05", "--batch_sizes", "32"]


class ValuedProcess(FakeProcess):
    def poll(self):
        code = super().poll()
        if code == 0 and not getattr(self, "valued", False):  # the record FakeProcess wrote, with this job's value
            self.valued = True
            job = self.launcher.job_of(self.argv)
            path = grid.record_path(self.launcher.dir, job)
            record = results.read_record(path)
            record["best"]["value"] = VALUES[f"{job.task}/{job.name}"]
            results.write_record(path, record)
        return code


class SeedLauncher(FakeLauncher):
    """The grid tests' stand-in launcher, knowing a rerun by its --rerun_seed."""

    def job_of(self, argv):
        job = super().job_of(argv)
        if "--rerun_seed" not in argv:
            return job
        return dataclasses.replace(job, seed=int(argv[argv.index("--rerun_seed") + 1]))

    def start(self, argv, env):
        process = ValuedProcess(self, argv, env)
        self.started.append(process)
        return process


@pytest.fixture
def search(tmp_path, monkeypatch, capsys):
    """grid_search.py's main() in this process with the stand-in launcher on CPU slots; the tables and zip
    made after it (subprocesses) are left out. Returns (exit status, launcher, stdout lines)."""

    def call(*args, outcomes=None):
        capsys.readouterr()
        monkeypatch.setattr(sys, "dont_write_bytecode", True)
        monkeypatch.chdir(tmp_path)
        script = load_script("grid_search_tools/grid_search.py")
        launcher = SeedLauncher(str(tmp_path / "some-model"), duration=2, outcomes=outcomes)
        monkeypatch.setattr(script.scheduler, "ProcessLauncher", lambda tools_dir: launcher)
        monkeypatch.setattr(script, "subprocess", SimpleNamespace(run=lambda *a, **k: SimpleNamespace(returncode=0)))
        code = script.main(
            [
                "some-model",
                "--device",
                "cpu",
                "--skip_warmup",
                "--poll",
                "0.001",
                "--output_root",
                str(tmp_path),
                *GRID,
                *args,
            ]
        )
        return code, launcher, capsys.readouterr().out.splitlines()

    return call


def started(launcher):
    return [(launcher.job_of(p.argv).task, launcher.job_of(p.argv).name) for p in launcher.started]


def test_a_rerun_is_a_job_of_its_own():
    job = grid.Job("tnews", 2e-5, 32, 1, 0.1, 3, 128)
    rerun = dataclasses.replace(job, seed=43)
    assert seeds.rerun_seeds(1) == [] and seeds.rerun_seeds(4) == [43, 44, 45]
    assert (job.name, rerun.name) == ("2e-05_32_0.1", "2e-05_32_0.1_s43")
    assert rerun.command("m") == job.command("m") + ["--rerun_seed", "43"]  # the positional contract unchanged
    assert grid.record_path("/r", job) == "/r/tnews/2e-05_32_0.1.json"
    assert grid.record_path("/r", rerun) == "/r/tnews/seeds/2e-05_32_0.1_s43.json"
    assert grid.log_path("/r", rerun) == "/r/tnews/seeds/2e-05_32_0.1_s43.log"
    mrc = dataclasses.replace(grid.Job("c3", 2e-5, 24, 12), seed=44)
    assert mrc.command("m") == ["bash", "run_mrc.sh", "m", "c3", "24", "2e-05", "12", "--rerun_seed", "44"]


def test_seeds_1_changes_nothing(search, tmp_path):
    code, launcher, out = search()
    assert code == 0 and len(launcher.started) == 6
    assert not any(line.startswith(("after the grid", "seed reruns", "TNEWS")) for line in out)
    directory = tmp_path / "some-model"
    assert not os.path.exists(directory / "seeds.md") and not seeds.has_reruns(str(directory))


def test_grid_then_reruns_of_each_best_then_restart(search, tmp_path):
    directory = str(tmp_path / "some-model")
    code, launcher, out = search("--seeds", "3")
    assert code == 0, out
    names = started(launcher)
    assert sorted(names[:6]) == sorted(tuple(k.split("/")) for k in list(VALUES)[:6])  # the grid first
    assert names[6:] == [
        ("tnews", "2e-05_32_0.1_s43"),
        ("tnews", "2e-05_32_0.1_s44"),
        ("afqmc", "2e-05_32_0.1_s43"),
        ("afqmc", "2e-05_32_0.1_s44"),
    ]
    assert [p.argv[-4:] for p in launcher.started[6:]] == [
        ["--rerun_seed", "43", "--device", "cpu"],
        ["--rerun_seed", "44", "--device", "cpu"],
    ] * 2
    assert sorted(os.listdir(tmp_path / "some-model" / "tnews" / "seeds")) == [
        "2e-05_32_0.1_s43.json",
        "2e-05_32_0.1_s43.log",
        "2e-05_32_0.1_s44.json",
        "2e-05_32_0.1_s44.log",
    ]
    # the mean and sample sd by hand: (56.50 + 55.80 + 56.06) / 3 = 56.12; sqrt((.38² + .32² + .06²) / 2) = 0.35
    assert "TNEWS 2e-05_32_0.1 over 3 seeds: 56.12 ± 0.35 (42: 56.50, 43: 55.80, 44: 56.06)" in out
    assert "AFQMC 2e-05_32_0.1 over 3 seeds: 80.17 ± 16.31 (42: 71.00, 43: 99.00, 44: 70.50)" in out
    assert out.index("seed reruns: 4 jobs (best configuration of each task × 2 seeds)") < out.index("All done!")
    # a rerun is never a candidate: AFQMC's 99.00 of seed 43 does not win
    best = best_jobs.best_per_task(directory)
    assert {t: (v, "_".join(h)) for t, (v, h, _) in best.items()} == {
        "tnews": ("56.50", "2e-05_32_0.1"),
        "afqmc": ("71.00", "2e-05_32_0.1"),
    }
    with open(os.path.join(directory, "seeds.md"), encoding="utf-8") as f:
        assert "| tnews | 2e-05_32_0.1 | 3 | 56.12 | 0.35 | 42: 56.50, 43: 55.80, 44: 56.06 |\n" in f.read()
    table = seeds.summary(directory)
    assert table["tnews"].values == [(42, "56.50"), (43, "55.80"), (44, "56.06")]
    assert table["tnews"].mean == pytest.approx(56.12) and table["tnews"].sd == pytest.approx((0.2504 / 2) ** 0.5)

    # restart: nothing is run again; a rerun whose record is gone is the only job started
    code, again, out = search("--seeds", "3")
    assert code == 0 and again.started == []
    assert "10 of 10 jobs already complete; 0 to run" not in out  # the two phases are counted apart
    assert "6 of 6 jobs already complete; 0 to run" in out and "4 of 4 jobs already complete; 0 to run" in out
    os.remove(os.path.join(directory, "tnews", "seeds", "2e-05_32_0.1_s44.json"))
    code, third, _ = search("--seeds", "3")
    assert code == 0 and started(third) == [("tnews", "2e-05_32_0.1_s44")]


def test_a_failed_rerun_is_in_failures_json(search, tmp_path):
    code, launcher, out = search(
        "--seeds", "3", "--retries", "1", outcomes={"tnews/2e-05_32_0.1_s44": [(1, "boom\n")] * 2}
    )
    assert code == 1
    assert started(launcher).count(("tnews", "2e-05_32_0.1_s44")) == 2  # retried as any job
    with open(tmp_path / "some-model" / "failures.json", encoding="utf-8") as f:
        failures = json.load(f)
    assert [(f["task"], f["job"], f["kind"], f["attempts"]) for f in failures] == [
        ("tnews", "2e-05_32_0.1_s44", "failed", 2)
    ]
    assert "TNEWS 2e-05_32_0.1 over 2 seeds: 56.15 ± 0.49 (42: 56.50, 43: 55.80)" in out


def test_dry_run_and_refusals(search, capsys):
    code, launcher, out = search("--seeds", "3", "--dry_run")
    assert code == 0 and launcher.started == []
    assert out[-1].startswith("after the grid: best config of each task × 2 seeds (2 tasks, 4 jobs, seeds 43, 44)")
    for args, why in [
        (["--seeds", "0"], "argument --seeds: must be an integer >= 1, not '0'"),
        (["--seeds", "21"], "--seeds 21: at most 20"),
        (
            ["--seeds", "2", "--slurm"],
            "--seeds is not supported with --slurm: once the array jobs "
            "have finished, run the same command without --slurm and only "
            "the seed reruns run",
        ),
        (["--seeds", "2", "--", "--seed", "7"], "--seeds sets each rerun's seed: do not pass --seed after '--'"),
    ]:
        with pytest.raises(SystemExit) as stop:
            search(*args)
        assert stop.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(": error: " + why)


def test_submission_md_says_it_is_the_grids_best(search, tmp_path):
    directory = str(tmp_path / "some-model")
    search()
    assert "seed reruns" not in submission.summary(directory, "z.zip", [], [])
    search("--seeds", "2")
    assert (
        "It uses the grid's best job of each task (seed 42), not its seed reruns (TASK/seeds/, seeds.md)."
        in submission.summary(directory, "z.zip", [], []).splitlines()
    )


@pytest.mark.slow  # two real training runs of the tiny model on CPU
def test_real_rerun_of_one_tnews_job(tiny_models, synthetic_data, tmp_path):
    from test_grid_e2e import grid_search as real_grid_search

    proc = real_grid_search(
        tiny_models["ernie"],
        synthetic_data,
        tmp_path,
        "--tasks",
        "tnews",
        "--learning_rates",
        "2e-05",
        "--batch_sizes",
        "32",
        "--seeds",
        "2",
        "--skip_warmup",
        "--",
        "--max_steps",
        "2",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    directory = grid.run_dir(tiny_models["ernie"], str(tmp_path))
    job = grid.select(grid.full_grid(), ["tnews"], [2e-5], [32])[0]
    rerun = dataclasses.replace(job, seed=43)
    grid_record, rerun_record = (results.read_record(grid.record_path(directory, j)) for j in (job, rerun))
    assert rerun_record["hyperparameters"]["output_dir"] == os.path.join(directory, "tnews", "seeds", rerun.name) + "/"
    assert grid_record["hyperparameters"]["output_dir"] == os.path.join(directory, "tnews", job.name) + "/"
    assert (grid_record["hyperparameters"]["seed"], rerun_record["hyperparameters"]["seed"]) == (42, 43)
    assert os.path.isfile(grid.log_path(directory, rerun))
    values = f"42: {grid_record['best']['value']}, 43: {rerun_record['best']['value']}"
    assert any(
        line.startswith("TNEWS 2e-05_32_0.1 over 2 seeds: ") and line.endswith(f"({values})")
        for line in proc.stdout.splitlines()
    )
    assert f"TNEWS\t{grid_record['best']['value']}\t(2e-05,32,0.1)" in proc.stdout  # extract: the grid's job


@pytest.mark.parametrize(
    "job",
    [grid.Job("tnews", 2e-5, 32, 1, 0.1, 3, 128, seed=43), grid.Job("c3", 2e-5, 24, 12, seed=44)],
    ids=["run_cls.sh", "run_mrc.sh"],
)
def test_wrappers_find_a_rerun_where_grid_looks(job, tmp_path):
    """The wrapper's record of a rerun is grid.record_path's: a complete one there is skipped, as on restart."""
    path = grid.record_path(str(tmp_path), job)
    results.write_record(path, {"schema": results.SCHEMA, "status": "complete", "best": {"value": "50.00"}})
    proc = subprocess.run(
        job.command("m"),
        cwd=os.path.join(ROOT, "grid_search_tools"),
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHON=sys.executable, CLUE_RUN_DIR=str(tmp_path)),
    )
    assert (proc.returncode, proc.stdout) == (0, f"skip: {path} is complete\n"), proc.stderr
    bad = subprocess.run(
        job.command("m")[:-1] + ["x"],
        cwd=os.path.join(ROOT, "grid_search_tools"),
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHON=sys.executable, CLUE_RUN_DIR=str(tmp_path)),
    )
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[0].endswith("error: --rerun_seed 'x' is not a seed (an integer)")


def test_report_and_leaderboard_give_the_spread_beside_the_best(search, tmp_path, capsys):
    from cluebench.grid import leaderboard, report

    code, _, out = search("--seeds", "3")
    assert code == 0, out
    directory = str(tmp_path / "some-model")
    path = report.write_report(directory, directory, best_jobs.best_per_task(directory))
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert (
        "Over seeds (the grid's job and its reruns): TNEWS 2e-05_32_0.1 over 3 seeds: 56.12 ± 0.35 "
        "(42: 56.50, 43: 55.80, 44: 56.06)." in text
    )
    capsys.readouterr()
    assert leaderboard.main(["--output_root", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "## Spread over seeds" in table
    assert "| some-model | 80.17 ± 16.31 (3) | 56.12 ± 0.35 (3) | - |" in table  # AFQMC, TNEWS, then no IFLYTEK


def test_an_off_grid_best_is_rerun_too(tmp_path):
    """A best job at an --off_grid rate (the demo's 0.001) is a job of the grid it ran in."""
    directory = tmp_path / "m"
    for name, value in (("0.001_16_0.1", 80.0), ("2e-05_16_0.1", 10.0)):
        from test_report import write_job

        write_job(str(directory), "tnews", name, [(10, value)])
    assert seeds.rerun_jobs(str(directory), 2) == []  # the rate is not upstream's: not found without it
    [job] = seeds.rerun_jobs(str(directory), 2, off_grid_rates=[0.001])
    assert (job.task, job.name, job.batch_size) == ("tnews", "0.001_16_0.1_s43", 16)
