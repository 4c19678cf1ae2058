"""What every training script does before and around its real work."""

import atexit
import contextlib
import ctypes
import os
import random
import sys

import numpy as np
import paddle
from paddlenlp.utils.log import logger

from ..fileio import (
    Busy,
    DataError,
    OutputDirLock,
    WriteError,
    check_name_length,
    check_writable,
    environment_write_error,
    is_local_path,
)
from . import speedups
from .flags import flag_error

# Files that make a local directory loadable by PaddleNLP's Auto classes.
WEIGHT_FILES = (
    "model_state.pdparams",
    "model_state.pdparams.index.json",
    "model.safetensors",
    "model.safetensors.index.json",
)
VOCAB_FILES = ("vocab.txt", "sentencepiece.bpe.model", "spm.model", "tokenizer.json", "vocab.json")


def print_arguments(args):
    print("-----------  Configuration Arguments -----------")
    for name, value in sorted(vars(args).items()):
        print(f"{name}: {value}")
    print("------------------------------------------------", flush=True)


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def set_device(device):
    """paddle.set_device, with a clear error where the GPU build would kill the process outright."""
    if device.startswith("gpu") and (not paddle.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0):
        raise flag_error("device", device, "asked for, but no GPU is visible; use --device cpu")
    try:
        paddle.set_device(device)
    except ValueError:  # an unknown name, or a device this Paddle build lacks
        raise flag_error("device", device, "is not a device this Paddle build can use; use cpu, gpu or gpu:N") from None
    if device == "cpu":
        # A static program's operators run in this thread: the executor's own worker threads only
        # compete with the math library's for the cores (1.15-1.3x more steps/s on 2 cores), and
        # reusing buffers in place saves a few percent more. Same kernels, same numbers.
        paddle.set_flags({"FLAGS_new_executor_serial_run": True, "FLAGS_new_executor_use_inplace": True})
        keep_freed_memory()


def keep_freed_memory():
    """Let glibc keep freed blocks up to 32 MiB (its largest setting) in the heap for the next use, and never
    trim the heap. Paddle's CPU allocator hands every tensor back to malloc when it dies, and glibc gave the
    larger ones back to the kernel (a fresh mapping each, or a trimmed heap), so each training step faulted
    its memory in again a page at a time. Same numbers; left alone where the user set glibc's own
    MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_, or the C library has no mallopt."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no C library to load, or no mallopt in it
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 2**31 - 1)


def init_distributed():
    """(rank, world_size); sets up the collective environment when launched on several cards."""
    world_size = paddle.distributed.get_world_size()
    if world_size > 1:
        paddle.distributed.init_parallel_env()
    return paddle.distributed.get_rank(), world_size


def check_model_path(path):
    """A local model directory must hold weights and a vocabulary; built-in names pass through."""
    if not os.path.isdir(path):
        if is_local_path(path):
            raise DataError(path, "model directory not found")
        return
    present = set(os.listdir(path))
    if "config.json" not in present and "model_config.json" not in present:
        raise DataError(path, "model directory has no config.json")
    if not present.intersection(WEIGHT_FILES):
        raise DataError(path, f"model directory has no weights (expected one of {', '.join(WEIGHT_FILES)})")
    if not present.intersection(VOCAB_FILES):
        raise DataError(path, f"model directory has no vocabulary (expected one of {', '.join(VOCAB_FILES)})")


def load_pretrained(model_class, path, max_seq_length, min_seq_length=1, **model_kwargs):
    """(tokenizer, model) from a built-in name or a local directory, checked against the run's flags:
    max_seq_length between what the task needs and the model's positions, a vocabulary that fits the
    embedding table, weights that load. Every failure is a DataError naming the model."""
    from paddlenlp.transformers import AutoTokenizer

    check_model_path(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = model_class.from_pretrained(path, **model_kwargs)
    except DataError:
        raise
    except Exception as e:  # unreadable or truncated weights, a download that failed, a bad config
        reason = " ".join(line.strip() for line in str(e).splitlines() if line.strip())  # the detail follows a colon
        raise DataError(path, f"cannot load the model ({type(e).__name__}: {reason[:300]})") from None
    config = model.config
    positions = getattr(config, "max_position_embeddings", None)
    if max_seq_length < min_seq_length:
        raise flag_error("max_seq_length", max_seq_length, f"is too short for this task (at least {min_seq_length})")
    if positions and max_seq_length > positions:
        raise flag_error(
            "max_seq_length", max_seq_length, f"exceeds the {positions} positions of {path} (max_position_embeddings)"
        )
    vocab_size = getattr(config, "vocab_size", None)
    vocab, added = tokenizer.get_vocab(), getattr(tokenizer, "added_tokens_encoder", {})
    for name in ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token"):
        token = getattr(tokenizer, name, None)
        if token is not None and (token not in vocab or token in added):  # PaddleNLP adds it, untrained
            raise DataError(path, f"the vocabulary has no {token} ({name})")
    largest = max(vocab.values(), default=-1)
    if vocab_size and largest >= vocab_size:
        raise DataError(
            path,
            f"the vocabulary has ids up to {largest}, but the model's embedding table has "
            f"{vocab_size} rows (vocab_size in its config)",
        )
    return tokenizer, speedups.speed_up(model)


def claim_output_dir(path, *other_outputs, rank=0, break_lock=None):
    """Check that the output directory (and the folders of other_outputs, e.g. the results file) can be
    written, then lock and tidy it, as a context manager: after validation, before anything is written.
    Rank 0 alone owns it; the other ranks get a context that does nothing. break_lock: a host (known to be
    gone) whose lock on the directory is taken over."""
    if rank != 0:
        return contextlib.nullcontext()
    check_name_length(path, "output directory")
    check_writable(path)
    for other in other_outputs:
        check_name_length(other)
        if os.path.isdir(other):
            raise DataError(other, "is a directory; a file is to be written there")
        check_writable(os.path.dirname(os.path.abspath(other)), f"folder of {other}")
    lock = OutputDirLock(path, log=logger.info, break_host=break_lock)
    try:
        return lock.acquire()
    except OSError as e:  # a full or read-only disk under the lock file: its write names no file
        if environment_write_error(e) is None:
            raise
        with contextlib.suppress(OSError):  # the empty lock file this run made, so that a rerun is not Busy
            if os.path.getsize(lock.path) == 0:
                os.remove(lock.path)
        raise WriteError(lock.path, environment_write_error(e)) from None


# MKL_DEBUG_CPU_TYPE values MKL knows, with the CPU flags each needs: a type the CPU lacks dies of SIGILL
# in the first matrix multiply, an unknown one ends the run with MKL's own message.
_MKL_TYPES = {
    "0": (),
    "1": (),
    "2": ("sse4_2",),
    "3": ("sse4_2",),
    "4": ("avx",),
    "5": ("avx2", "fma"),
    "6": ("avx512f",),
    "7": ("avx512f",),
}
MAX_THREADS_PER_CORE = 4  # OMP_NUM_THREADS above this many per usable core is a typo, not a setting


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read(1 << 16)
    except OSError:
        return None
    return set(text.split("\nflags", 1)[1].split("\n", 1)[0].split()) if "\nflags" in text else None


def check_environment(omp=None, mkl=None, cpu_flags=None):
    """A DataError naming the variable when OMP_NUM_THREADS or MKL_DEBUG_CPU_TYPE (as the user gave them,
    before this package or Paddle set them) cannot be used; checked before step one."""
    import cluebench

    omp = cluebench.OMP_GIVEN if omp is None else omp
    mkl = cluebench.MKL_GIVEN if mkl is None else mkl
    if omp is not None:
        cores = len(os.sched_getaffinity(0))
        text = omp.strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_THREADS_PER_CORE * cores:
            raise DataError(
                f"OMP_NUM_THREADS={omp!r}",
                f"must be a whole number of threads from 1 to "
                f"{MAX_THREADS_PER_CORE * cores} ({cores} usable cores); "
                "unset it to let the suite choose",
            )
    if mkl is not None:
        if mkl.strip() not in _MKL_TYPES:
            raise DataError(
                f"MKL_DEBUG_CPU_TYPE={mkl!r}",
                "is not a CPU type MKL knows (0 to 7; 0 keeps MKL's own choice); unset it to let the suite choose",
            )
        flags = _cpu_flags() if cpu_flags is None else cpu_flags
        missing = [f for f in _MKL_TYPES[mkl.strip()] if flags is not None and f not in flags]
        if missing:
            raise DataError(
                f"MKL_DEBUG_CPU_TYPE={mkl!r}",
                f"asks for {', '.join(missing)}, which this CPU lacks (MKL would die of SIGILL); unset it",
            )


def exit_cleanly(main):
    """Run a script's main() as `python script.py` does: bad input (a DataError, a write the disk refused)
    ends it with one clear line and exit status 2 (Busy: its own), not a traceback; with several ranks,
    all leave together."""
    # A path that is not UTF-8 (surrogateescape) is printed as \udcNN escapes, not a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        check_environment()
        main()
    except DataError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(Busy.EXIT if isinstance(e, Busy) else 2)
    except Exception as e:  # a write that the disk refused where no DataError was made (Paddle's, a lock)
        cause = environment_write_error(e)
        if cause is None:
            raise
        print(f"error: {WriteError(cause.filename or 'a file', cause)}", file=sys.stderr, flush=True)
        sys.exit(2)
    if paddle.distributed.get_world_size() > 1:  # ranks leave together: one exiting while rank 0 still
        paddle.distributed.barrier()  # predicts and writes can abort the other's gloo teardown
        # Even together, Paddle's native teardown after Python's own sometimes aborts a rank (SIGABRT,
        # no message; 3 runs in 10 on a busy 2-core machine) once everything is written: run Python's
        # exit handlers (locks, log handlers), then leave without the native teardown.
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
