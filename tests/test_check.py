"""python -m cluebench.check: how each row decides, with a stand-in host whose jobs return chosen records
(the whole check runs for real on the CPU as a docs command: tests/test_readme_commands.py)."""

import argparse
import re

from cluebench import check
from cluebench.grid import footprint

import pytest


def record(steps_per_s=10.0, best=("50.00", 4), history=((2, 40.0), (4, 50.0)), batch=16):
    return {
        "hyperparameters": {"batch_size": batch},
        "throughput": {"train_examples_per_s": steps_per_s * batch, "world_size": 1},
        "best": {"value": best[0], "step": best[1]},
        "history": [{"step": s, "metrics": {"acc": a}} for s, a in history],
    }


class StandIn(check.Host):
    """A Host whose jobs are given, not run: {name prefix: [(record, losses)], ...} consumed in order."""

    def __init__(self, device="gpu", use_amp=None, outcomes=None, model="/nonexistent"):
        self.args = argparse.Namespace(device=device, use_amp=use_amp, steps=20, model=model)
        self.outcomes, self.asked = outcomes or {}, []
        self.reference, self.peak_host_gib, self.peak_card_gib = None, None, None

    def jobs(self, script, name, k, *extra):
        self.asked.append((name, k, extra))
        prefix = next(p for p in self.outcomes if name.startswith(p))
        return [self.outcomes[prefix].pop(0) for _ in range(k)]


LOSSES = {1: 2.5, 2: 2.4, 3: 2.3}


def test_to_static_and_eager_must_give_the_same_losses():
    host = StandIn(outcomes={"tnews": [(record(12.0), LOSSES), (record(4.0), LOSSES)]})
    detail = check.row_classification(host)
    assert detail == "3 steps, the same losses with --to_static true and false; 12.00 against 4.00 steps/s"
    assert host.reference[1] == LOSSES and [a[0] for a in host.asked] == ["tnews-static", "tnews-eager"]
    drifted = StandIn(outcomes={"cmrc2018": [(record(), LOSSES), (record(), {**LOSSES, 2: 2.41})]})
    with pytest.raises(check.Failed, match=r"losses differ at step 2: 2.4 static, 2.41 eager"):
        check.row_reading(drifted)


def test_jobs_a_card_recommended_only_for_a_real_gain():
    def rates(one, two, four):
        return {"share1": [(record(one), {})], "share2": [(record(two), {})] * 2, "share4": [(record(four), {})] * 4}

    # a base model: a second job only time-slices with the first
    assert check.row_sharing(StandIn(outcomes=rates(10.0, 5.2, 2.6))).endswith("recommended --max_jobs_per_gpu 1")
    # a small model leaves the card idle alone: two jobs make 1.5x the steps
    detail = check.row_sharing(StandIn(outcomes=rates(10.0, 7.5, 3.0)))
    assert detail.startswith("1 a card: 10.00 steps/s in all, 2 a card: 15.00") and detail.endswith("per_gpu 2")
    with pytest.raises(check.Skipped, match="--slots"):
        check.row_sharing(StandIn(device="cpu"))


def test_memory_fails_when_a_job_takes_more_than_the_grid_claims():
    host = StandIn(device="cpu")
    with pytest.raises(check.Skipped):
        check.row_memory(host)
    claim = footprint.host_gib(footprint.BASE)
    host.peak_host_gib = claim - 0.5
    assert check.row_memory(host).startswith(f"host {claim - 0.5:.2f} GiB at peak, {claim:.2f} claimed")
    host.peak_host_gib, host.peak_card_gib = 1.0, footprint.gpu_gib(footprint.BASE, check.JOB) + 1
    with pytest.raises(check.Failed, match=r"card .* claimed \(TNEWS, batch 16, length 128\).*--max_jobs_per_gpu"):
        check.row_memory(host)


def test_mixed_precision_within_its_tolerance_of_fp32():
    fp32 = (record(10.0), LOSSES)
    close = StandIn(use_amp="bf16", outcomes={"tnews-bf16": [(record(25.0), {s: v + 0.01 for s, v in LOSSES.items()})]})
    close.reference = fp32
    assert re.match(
        r"mean loss difference 0\.0100 from fp32 over 3 steps \(tolerance 0\.05\); 2\.50x", check.row_amp(close)
    )
    assert close.asked[0][2] == ("--to_static", "true", "--use_amp", "bf16")
    far = StandIn(use_amp="fp16", outcomes={"tnews-fp16": [(record(25.0), {s: v + 0.3 for s, v in LOSSES.items()})]})
    far.reference = fp32
    with pytest.raises(check.Failed, match="mean loss difference 0.3000"):
        check.row_amp(far)
    for host, why in ((StandIn(device="cpu", use_amp="fp16"), "needs a GPU"), (StandIn(), "pass --use_amp")):
        with pytest.raises(check.Skipped, match=why):
            check.row_amp(host)


def test_too_few_steps_to_stop_half_way_is_a_flag_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        check.parse_args(["m", "--steps", "3"])
    assert exit_.value.code == 2 and "--steps: at least 4" in capsys.readouterr().err


def test_a_workdir_that_is_a_file_is_a_flag_error(tmp_path, capsys):
    (tmp_path / "f").write_text("someone's file")
    with pytest.raises(SystemExit) as exit_:
        check.parse_args(["m", "--workdir", str(tmp_path / "f")])
    assert exit_.value.code == 2 and "not a directory" in capsys.readouterr().err
    assert (tmp_path / "f").read_text() == "someone's file"


def test_grid_search_check_runs_the_check_with_its_flags(monkeypatch):
    from helpers import load_script

    grid_search = load_script("grid_search_tools/grid_search.py")
    seen = []
    monkeypatch.setattr(check, "main", lambda argv: seen.append(argv) or 0)
    assert (
        grid_search.main(["some-model", "--check", "--device", "cpu", "--data_dir", "/data", "--", "--use_amp", "fp16"])
        == 0
    )
    assert seen == [["some-model", "--device", "cpu", "--use_amp", "fp16", "--data_dir", "/data"]]


def test_card_memory_is_the_jobs_own_by_nvml_or_else_the_cards_rise(monkeypatch):
    import os
    import sys
    import types

    from cluebench.grid import processes

    child = processes.start([sys.executable, "-c", "import time; time.sleep(30)"], {}, ".")
    try:
        listed = [
            types.SimpleNamespace(pid=child.pid, usedGpuMemory=3 * 2**30),
            types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=5 * 2**30),
        ]  # not the job's
        fake = types.SimpleNamespace(
            NVMLError=RuntimeError,
            nvmlDeviceGetComputeRunningProcesses=lambda h: listed,
            nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=9 * 2**30),
        )
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        host = StandIn()
        monkeypatch.setattr(host, "cards", lambda: [types.SimpleNamespace(handle=0)])
        assert host.card_added_gib([child], before=2.0) == 3.0
        listed.clear()  # NVML shows no processes (a container): the card's rise instead
        assert host.card_added_gib([child], before=2.0) == 7.0
    finally:
        child.kill()
        child.wait()
