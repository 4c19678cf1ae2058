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

# Warnings raised by the pinned dependencies at import time, not by our code.
for _message, _category in [
    ("Setuptools is replacing distutils", UserWarning),
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
