"""The README's demo command keeps working."""
import json
import os

from cluebench import results
from helpers import log_field, run_python


def test_demo(tmp_path):
    proc = run_python(["-m", "cluebench.demo", "--workdir", str(tmp_path)], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = results.read_record(str(tmp_path / "tnews" / results.FILENAME))
    assert [log_field(line, 7) for line in proc.stderr.splitlines() if " - best_result: " in line] \
        == [record["best"]["value"] + "\x1b[0m"]
    assert f"best dev accuracy {record['best']['value']}" in proc.stdout
    assert float(record["best"]["value"]) >= 90.0  # synthetic TNEWS is learnable; majority class is 6.67
    for name in ("tnews11_predict.json", "tnews10_predict.json"):
        with open(os.path.join(tmp_path, "tnews", name), encoding="utf-8") as f:
            assert [json.loads(line)["id"] for line in f] == list(range(50))
