"""Hostile results records and run-folder names (issue 21): extract and report skip a bad record with one
warning naming its file and field, never a traceback; names are names, never glob patterns; figures stay
readable with hundreds of configurations."""

import json
import os

from cluebench import results
from cluebench.grid import best_jobs, extract, report

import pytest

MODEL = "ernie-3.0-base-zh"


def record(value="60.00", step=100, **fields):
    metrics = {"acc": float(value)} if value.isascii() and "/" not in value else {"acc": 1.0}
    base = results.make_record(
        task="tnews",
        model=MODEL,
        script="run_clue_classifier.py",
        hyperparameters={"learning_rate": 1e-05},
        best={"metrics": metrics, "step": step, "epoch": 1},
        history=[{"step": step, "epoch": 1, "metrics": metrics, "loss": 1.0}],
        wall_time_s=1.0,
        throughput={},
        data={},
    )
    base["best"]["value"] = value
    base.update(fields)
    return base


def put(directory, task, name, rec):
    path = os.path.join(directory, task, name + ".json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(rec, f, ensure_ascii=False)
    return path


@pytest.mark.parametrize(
    "change, field",
    [
        ({"hyperparameters": {"learning_rate": [1, 2]}}, "hyperparameters.learning_rate: not a scalar"),
        ({"hyperparameters": "lr=1"}, "hyperparameters: not an object"),
        ({"best": {"metrics": {"acc": "99"}, "value": "99.00"}}, "best.metrics.acc: not a finite number"),
        ({"best": {"metrics": {"acc": True}, "value": "99.00"}}, "best.metrics.acc: not a finite number"),
        ({"best": "99.00"}, "best: not an object"),
        ({"history": [{"step": "10", "metrics": {"acc": 1.0}}]}, "history[0].step: not a number"),
        ({"history": [{"step": 10, "metrics": {"acc": None}}]}, "history[0].metrics.acc: not a finite number"),
        ({"history": {"step": 10}}, "history: not a list"),
        ({"predictions": [1]}, "predictions: not a list of strings"),
        ({"task": 7}, "task: not a string"),
        ({"data": []}, "data: not an object"),
    ],
)
def test_a_badly_typed_record_is_skipped_naming_the_field(tmp_path, capsys, change, field):
    directory = str(tmp_path / MODEL)
    good = put(directory, "tnews", "1e-05_16_0.1", record("50.00"))
    bad = put(directory, "tnews", "2e-05_16_0.1", record("99.00", **change))
    found = best_jobs.task_results(directory, "tnews")
    assert [(v, h) for v, h, _ in found] == [("50.00", ("1e-05", "16", "0.1"))], good
    assert capsys.readouterr().err.splitlines() == [f"extract: warning: {bad}: {field}; skipped"]


@pytest.mark.parametrize("value", ["９９.００", "٩٩.٠٠", "99.０0", "９９.００/８０.００"])
def test_non_ascii_digits_are_not_a_result(tmp_path, capsys, value):
    directory = str(tmp_path / MODEL)
    put(directory, "tnews", "1e-05_16_0.1", record("50.00"))
    bad = put(directory, "tnews", "2e-05_16_0.1", record(value))
    assert [v for v, _, _ in best_jobs.task_results(directory, "tnews")] == ["50.00"]
    assert capsys.readouterr().err.splitlines() == [
        f"extract: warning: {bad}: best.value: {value!r} is not a result (NN.NN or EM/F1); skipped"
    ]


def test_a_name_in_full_width_digits_is_not_a_configuration(tmp_path, capsys):
    directory = str(tmp_path / MODEL)
    put(directory, "tnews", "１e-05_16_0.1", record("99.00"))
    assert best_jobs.task_results(directory, "tnews") == []
    assert "the name is not LR_BS_DROPOUT; skipped" in capsys.readouterr().err


def test_a_linked_or_huge_record_is_not_read(tmp_path, monkeypatch):
    outside = put(str(tmp_path / "elsewhere"), "tnews", "x", record("99.00"))
    link = tmp_path / MODEL / "tnews" / "1e-05_16_0.1.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    assert results.read_record(str(link)) is None  # a link out of the run folder is not followed
    assert best_jobs.task_results(str(tmp_path / MODEL), "tnews") == []  # nor listed as a job file
    monkeypatch.setattr(results, "MAX_RECORD_BYTES", 100)
    assert results.read_record(outside) is None


@pytest.mark.parametrize("name", ["m[1]", "m?", "m*", "[m]"])
def test_glob_characters_in_model_and_root_are_names(tmp_path, capsys, name):
    root = tmp_path / ("runs" + name[-1])  # an output root with a glob character too
    put(str(root / name), "tnews", "1e-05_16_0.1", record("61.00"))
    put(str(tmp_path / "runsX" / "mX"), "tnews", "1e-05_16_0.1", record("99.00"))  # a neighbour a glob would match
    put(str(tmp_path / "runs1" / "m1"), "tnews", "1e-05_16_0.1", record("98.00"))
    assert extract.main([name, "--output_root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "TNEWS\t61.00\t(1e-05,16,0.1)" in out.splitlines()
    with open(root / name / "report" / "report.md", encoding="utf-8") as f:
        assert "**61.00**" in f.read()


def test_curves_draw_the_top_ten_and_one_band_for_the_rest(tmp_path, monkeypatch):
    curves = {(f"{i + 1}e-05", "16", "0.1"): ([100, 200], [i / 10, i / 5], 200, i / 5) for i in range(300)}
    best = ("300e-05", "16", "0.1")
    top, rest = report.top_curves(curves, best)
    assert top[0] == best and len(top) == 10 and len(rest) == 290
    assert top[1:] == [(f"{i}e-05", "16", "0.1") for i in range(299, 290, -1)]
    drawn = {}
    monkeypatch.setattr(report, "save", lambda fig, path: drawn.update(fig=fig))
    report.draw_curves(str(tmp_path / "c.png"), "tnews", curves, best)
    ax = drawn["fig"].axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert len(labels) == 12  # ten lines, the best point, the band of the other 290
    assert "the other 290 configurations" in labels
    assert any(t.get_text() == "top 10 of 300 configurations" for t in ax.texts)
    report.pyplot().close(drawn["fig"])


def test_heatmap_of_many_dropouts_keeps_four_panels(tmp_path, monkeypatch):
    cells = {
        (f"{i + 1}e-05", str(b), f"0.{d}"): f"{(i + b + d) % 90:.2f}"
        for i in range(10)
        for b in range(1, 6)
        for d in range(6)
    }
    drawn = {}
    monkeypatch.setattr(report, "save", lambda fig, path: drawn.update(fig=fig))
    report.draw_heatmap(str(tmp_path / "h.png"), "tnews", cells, ("1e-05", "1", "0.0"))
    panels = [ax for ax in drawn["fig"].axes if ax.get_title().startswith("dropout")]
    assert len(panels) == 4 and "0.0" in {ax.get_title().split()[1] for ax in panels}
    report.pyplot().close(drawn["fig"])


# ---------------------------------------------------------------- the output directory's lock
def lock_of(tmp_path, **owner):
    from cluebench.fileio import HOST, OutputDirLock, _boot_id, _process_start

    fields = {
        "host": HOST,
        "pid": os.getpid(),
        "started": "then",
        "proc_start": _process_start(os.getpid()),
        "boot_id": _boot_id(),
        **owner,
    }
    (tmp_path / OutputDirLock.NAME).write_text(json.dumps(fields))
    return OutputDirLock(str(tmp_path), log=said.append)


said = []


@pytest.mark.parametrize(
    "owner, why",
    [({"proc_start": 1}, "pid reused by another process"), ({"boot_id": "another-boot"}, "from before a reboot")],
)
def test_a_live_pid_of_another_process_or_boot_is_a_stale_lock(tmp_path, owner, why):
    said.clear()
    lock = lock_of(tmp_path, **owner)
    with lock.acquire():
        assert said == [f"{tmp_path}: taking over the stale lock of pid {os.getpid()} ({why})"]
    assert not (tmp_path / lock.NAME).exists()


def test_a_live_owner_keeps_its_lock(tmp_path):
    from cluebench.fileio import Busy

    with pytest.raises(Busy) as error:
        lock_of(tmp_path).acquire()
    assert "output directory is in use by pid" in str(error.value) and "host is gone" not in str(error.value)


def test_another_hosts_lock_says_how_to_release_it(tmp_path):
    from cluebench.fileio import Busy

    with pytest.raises(Busy) as error:
        lock_of(tmp_path, host="elsewhere", pid=1).acquire()
    assert str(error.value).endswith(
        "use another --output_dir; if that host is gone, rerun with --break_lock elsewhere"
    )
    assert f"(lock {tmp_path}/.cluebench.lock)" in str(error.value)


def test_break_lock_never_breaks_a_live_lock_of_this_host(tmp_path):
    from cluebench.fileio import HOST, Busy, OutputDirLock

    lock_of(tmp_path)
    with pytest.raises(Busy):
        OutputDirLock(str(tmp_path), log=said.append, break_host=HOST).acquire()


def test_a_lock_host_that_could_forge_lines_is_escaped(tmp_path):
    from cluebench.fileio import Busy

    with pytest.raises(Busy) as error:
        lock_of(tmp_path, host="gone\nOK: fine", pid=1).acquire()
    assert "\n" not in str(error.value) and "rerun with --break_lock gone\\nOK: fine" in str(error.value)


@pytest.mark.parametrize("kind", ["huge", "link"])
def test_a_huge_or_linked_lock_is_not_read(tmp_path, kind):
    from cluebench.fileio import OutputDirLock

    path = tmp_path / OutputDirLock.NAME
    target = tmp_path / "elsewhere"
    target.write_text(json.dumps({"host": "elsewhere", "pid": 1}) + " " * (0 if kind == "link" else 8192))
    if kind == "link":
        path.symlink_to(target)
    else:
        os.replace(target, path)
    os.utime(path, (0, 0), follow_symlinks=False)  # old: not a lock being written right now
    said.clear()
    with OutputDirLock(str(tmp_path), log=said.append).acquire():
        assert said == [f"{tmp_path}: taking over an unreadable lock"]


# ---------------------------------------------------------------- logs read back (runs known only from their log)
def test_a_log_that_is_a_fifo_or_a_link_is_refused_not_read(tmp_path, capsys):
    """A FIFO would hang the read forever; a link may point at any file of the reader's."""
    from test_report import LOG_LINE

    folder = tmp_path / "m" / "tnews"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "1e-05_16_0.1.log")
    (folder / "1e-05_16_0.1.json").write_text("{}")  # listed by its record; the log beside it is the FIFO
    (tmp_path / "elsewhere.log").write_text(LOG_LINE.format(99.0))
    os.symlink(tmp_path / "elsewhere.log", folder / "2e-05_16_0.1.log")
    (folder / "2e-05_16_0.1.json").write_text("{}")
    assert best_jobs.task_results(str(tmp_path / "m"), "tnews") == []
    err = capsys.readouterr().err
    assert f"{folder}/1e-05_16_0.1.log: is a FIFO, socket or device, not a log; skipped" in err
    assert f"{folder}/2e-05_16_0.1.log: is a symbolic link, not a log; skipped" in err


def test_a_huge_log_line_is_skipped_in_pieces(tmp_path):
    from test_report import LOG_LINE

    path = tmp_path / "job.log"
    with open(path, "w") as f:  # 4 MiB on one line, a best_result line faked inside it, then the real one
        f.write("x" * (2 * 2**20) + " " + LOG_LINE.format(99.0).strip() + " " + "y" * (2 * 2**20) + "\n")
        f.write(LOG_LINE.format(55.1))
    assert results.best_result_in_log(str(path)) == "55.10"
