"""Shared pieces of the CLUE benchmark suite: data, training plumbing, results record.

Importing this package first matters: it fixes the process environment before
paddle is imported (see the comments below).
"""
import zlib  # noqa: F401  paddle 2.6.2's libpaddle exports its own zlib; CPython's must load first.
import os
import warnings

# Paddle pins itself to one CPU thread unless OMP_NUM_THREADS is set; give each
# process its share of the cores (several ranks under paddle.distributed.launch).
if "OMP_NUM_THREADS" not in os.environ:
    _ranks = max(1, int(os.environ.get("PADDLE_LOCAL_SIZE", os.environ.get("PADDLE_TRAINERS_NUM", "1"))))
    os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // _ranks))
os.environ.setdefault("GLOG_minloglevel", "2")  # paddle's C++ INFO chatter


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
