"""What made a results record (its "made_by"): versions, device, the project's commit, a digest of every
data file read. Here, not in cluebench.results, because it asks Paddle: the record's readers need none."""

import os
import platform
import subprocess
import sys

import paddle
import paddlenlp

from ..fileio import file_sha256


def git_commit():
    """The project's commit (with "+changes" when the tree differs from it), or None outside a checkout."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        status = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+changes" if status.stdout.strip() else "")


def provenance(data_files, world_size=1):
    """What made a record: versions, device, the project's commit and a SHA-256 of every data file read."""
    device = paddle.device.get_device()
    if device.startswith("gpu"):
        name = paddle.device.cuda.get_device_name()
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
        except OSError:
            pass
    return {
        "python": sys.version.split()[0],
        "paddle": paddle.__version__,
        "paddlenlp": paddlenlp.__version__,
        "device": {
            "name": name,
            "kind": device.split(":")[0],
            "count": world_size,
            # the CPU math settings: MKL's code path decides the rounding (README, Speed)
            **{k.lower(): os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_DEBUG_CPU_TYPE") if k in os.environ},
        },
        "git_commit": git_commit(),
        "data_files": {os.path.abspath(p): file_sha256(p) for p in data_files},
    }
