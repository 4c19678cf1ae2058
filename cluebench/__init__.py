"""Shared pieces of the CLUE benchmark suite: data, training plumbing, results record.

Importing this package first matters: it fixes the process environment before
paddle is imported (see the comments below).
"""

import importlib.abc
import os
import sys
import tempfile
import warnings
import zlib  # noqa: F401  paddle 2.6.2's libpaddle exports its own zlib; CPython's must load first.

# What the user gave, before this package sets it and Paddle rewrites garbage to 1 (cli.check_environment).
OMP_GIVEN = os.environ.get("OMP_NUM_THREADS")
MKL_GIVEN = os.environ.get("MKL_DEBUG_CPU_TYPE")

# Paddle pins itself to one CPU thread unless OMP_NUM_THREADS is set; give each
# process its share of the cores (several ranks under paddle.distributed.launch).
if "OMP_NUM_THREADS" not in os.environ:
    _ranks = max(1, int(os.environ.get("PADDLE_LOCAL_SIZE", os.environ.get("PADDLE_TRAINERS_NUM", "1"))))
    os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // _ranks))
os.environ.setdefault("GLOG_minloglevel", "2")  # paddle's C++ INFO chatter


def _home_problem(home):
    """Why HOME cannot hold the caches Paddle and PaddleNLP make there at import (~/.cache, ~/.paddlenlp), or None."""
    probe = home
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


# An unwritable or missing HOME would be a traceback inside Paddle's import: the caches go to a folder of
# the temporary directory for this run instead, said in one line (set HOME or PPNLP_HOME to keep them).
_home = os.path.expanduser("~")
_reason = _home_problem(_home) if _home.startswith("/") else "not an absolute path"
if _reason:
    FALLBACK_HOME = os.path.join(tempfile.gettempdir(), f"cluebench-home-{os.getuid()}")
    print(
        f"cluebench: warning: HOME {_home}: {_reason}; Paddle's and PaddleNLP's caches go to {FALLBACK_HOME} "
        "for this run",
        file=sys.stderr,
    )
    os.makedirs(FALLBACK_HOME, mode=0o700, exist_ok=True)
    os.environ["HOME"] = FALLBACK_HOME


class _QuietPaddleStart(importlib.abc.MetaPathFinder):
    """Drops the two lines paddle.base prints at import whenever OMP_NUM_THREADS > 1 (`WARNING: OMP_NUM_THREADS
    set to N, not 1 ...`): the suite sets it on purpose, and its Paddle uses MKL, not OpenBlas. Nothing else
    of the import is touched; the finder leaves sys.meta_path once paddle.base has loaded."""

    LINES = ("WARNING: OMP_NUM_THREADS set to", "PLEASE USE OMP_NUM_THREADS WISELY.")

    def find_spec(self, name, path=None, target=None):
        if name != "paddle.base":
            return None
        sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        real, sys.stderr = sys.stderr, _Filtered(sys.stderr)
        try:
            self.loader.exec_module(module)
        finally:
            sys.stderr = real


class _Filtered:
    """sys.stderr less the lines starting with _QuietPaddleStart.LINES (Paddle prints each in one write)."""

    def __init__(self, stream):
        self.stream, self.dropping = stream, False

    def write(self, text):  # print() writes the line, then its end
        dropped = text.startswith(_QuietPaddleStart.LINES) or self.dropping and text == "\n"
        self.dropping = dropped and text != "\n"
        return len(text) if dropped else self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


if "paddle.base" not in sys.modules:
    sys.meta_path.insert(0, _QuietPaddleStart())


def mkl_cpu_type(cpuinfo):
    """The MKL_DEBUG_CPU_TYPE for an AMD CPU from /proc/cpuinfo's text: 7 (AVX-512), 5 (AVX2), else None."""
    if "AuthenticAMD" not in cpuinfo or "\nflags" not in cpuinfo:
        return None
    flags = set(cpuinfo.split("\nflags", 1)[1].split("\n", 1)[0].split())
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "7"
    return "5" if {"avx2", "fma"} <= flags else None


# The MKL that paddle bundles (mklml) takes its slowest (SSE) code path on AMD CPUs unless told
# which vector unit the CPU has: matrix multiplies run 2.5x (AVX2) to 4.4x (AVX-512) faster on an
# AMD EPYC. It changes rounding, not the training (README, Speed); MKL_DEBUG_CPU_TYPE=0 keeps
# MKL's own choice. Intel CPUs are left alone: MKL already picks their best path.
try:
    with open("/proc/cpuinfo") as _f:
        _cpu_type = mkl_cpu_type(_f.read(1 << 16))
except OSError:
    _cpu_type = None
if _cpu_type:
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", _cpu_type)

# Warnings raised by the pinned dependencies at import time, not by our code.
for _message, _category in [
    ("Setuptools is replacing distutils", UserWarning),
    ("pkg_resources is deprecated as an API", UserWarning),  # jieba, with Python 3.12's setuptools
    ("The pynvml package is deprecated", FutureWarning),
    ("amp_guard can only be enabled on CUDAPlace", UserWarning),
    ("AmpScaler can only be enabled on CUDAPlace", UserWarning),
    (".*pydantic.config.Extra.*", DeprecationWarning),
    ("Be aware, overflowing tokens are not returned", UserWarning),  # we never ask for them
    ("Field visualdl.Record.HParam", DeprecationWarning),  # VisualDL logs booleans as ints (protobuf 6)
    ("No ccache found", UserWarning),  # paddle 3.x, at import: about building C++ extensions, which we never do
    ("Tensor do not have 'place' interface for pir graph mode", UserWarning),  # paddle 3.x's own to_static backward
]:
    warnings.filterwarnings("ignore", _message, _category)
