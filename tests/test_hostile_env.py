"""Hostile environments: a full or read-only disk, names at the file-system limits, bad thread and CPU
variables, an unusable HOME, names that are not UTF-8. Each ends in one line (exit 2), or is corrected with
one warning line; nothing already written is lost. Add a case for every defect found."""

import contextlib
import errno
import json
import os
import subprocess
import sys
import tempfile

from cluebench import fileio
from cluebench.fileio import DataError, WriteError
from cluebench.train import setup as cli
from helpers import ROOT, load_script

import numpy as np
import pytest

CLASSIFIER = load_script("classification/run_clue_classifier.py")


@contextlib.contextmanager
def _tmpfs(size, options=""):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = tempfile.mkdtemp(prefix="full-")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", path], capture_output=True, timeout=30
    )
    if mounted.returncode != 0:
        os.rmdir(path)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)
        os.rmdir(path)


@pytest.fixture
def small_disk():
    """A 256 KiB tmpfs, to fill (a full disk, honestly: ENOSPC from the kernel)."""
    with _tmpfs("256k") as path:
        yield path


def fill(folder):
    """Take the disk's last free byte."""
    with open(os.path.join(folder, "ballast"), "wb", buffering=0) as f:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * size)


def read_only(folder):
    subprocess.run(["mount", "-o", "remount,ro", folder], check=True, timeout=30)


def only_named(folder, *names):
    assert sorted(os.listdir(folder)) == sorted(names)  # no temporary file left


# ---------------------------------------------------------------- full and read-only disks
def test_atomic_write_on_a_full_disk_keeps_the_old_file(small_disk):
    path = os.path.join(small_disk, "record.json")
    fileio.write_json(path, {"old": True})
    fill(small_disk)
    with pytest.raises(WriteError, match=rf"^{path}: cannot write: No space left on device \(errno 28\); free space"):
        fileio.write_json(path, {"new": "x" * 100000})
    assert json.load(open(path)) == {"old": True}
    only_named(small_disk, "record.json", "ballast")


def test_an_npz_on_a_full_disk_is_a_write_error_and_leaves_nothing(small_disk):
    path = os.path.join(small_disk, "features.npz")
    fill(small_disk)
    with pytest.raises(WriteError, match="errno 28"):
        fileio.write_npz(path, {"ids": np.arange(100000)})
    only_named(small_disk, "ballast")


def test_atomic_write_on_a_read_only_disk(small_disk):
    path = os.path.join(small_disk, "pred.json")
    fileio.write_json(path, [1])
    read_only(small_disk)
    with pytest.raises(WriteError, match=rf"^{path}: cannot write: Read-only file system \(errno 30\); make it"):
        fileio.write_json(path, [2])
    assert json.load(open(path)) == [1]


def test_save_pretrained_on_a_full_disk_keeps_the_best_model(small_disk):
    class Saver:
        def __init__(self, size):
            self.size = size

        def save_pretrained(self, folder):
            with open(os.path.join(folder, "model_state.pdparams"), "wb") as f:
                f.write(b"w" * self.size)

    fileio.atomic_save_pretrained(small_disk, Saver(10))
    fill(small_disk)
    with pytest.raises(WriteError, match=rf"^{small_disk}: cannot write: No space left"):
        fileio.atomic_save_pretrained(small_disk, Saver(1 << 20))
    assert os.path.getsize(os.path.join(small_disk, "model_state.pdparams")) == 10
    only_named(small_disk, "model_state.pdparams", "ballast")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT])
def test_a_write_failure_anywhere_is_one_line(code, capsys):
    def main():  # Paddle's own writer, or the lock: an OSError no DataError was made of
        try:
            raise OSError(code, os.strerror(code), "/out/lock")
        except OSError:
            raise ValueError("seek of closed file") from None

    with pytest.raises(SystemExit) as exit_:
        cli.exit_cleanly(main)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"error: /out/lock: cannot write: {os.strerror(code)} (errno {code}); " + (
        "free space and rerun: the run resumes from its checkpoint\n"
        if code != errno.EROFS
        else "make it writable (or write elsewhere) and rerun\n"
    )


@pytest.mark.slow  # a real training run, twice
def test_a_real_run_on_a_full_disk_then_a_rerun(tiny_models, synthetic_data, capsys):
    """End to end: training writes into a disk with no room; one line, exit 2; with room again it completes."""
    with _tmpfs("4m") as disk:
        out = os.path.join(disk, "out")
        argv = [
            "--task_name",
            "csl",
            "--model_name_or_path",
            tiny_models["ernie"],
            "--data_dir",
            synthetic_data,
            "--device",
            "cpu",
            "--output_dir",
            out,
            "--max_seq_length",
            "32",
            "--do_train",
            "--do_predict",
            "--max_steps",
            "2",
            "--save_best_model",
            "false",
        ]
        os.makedirs(out)
        fill(disk)
        with pytest.raises(SystemExit) as exit_:
            cli.exit_cleanly(lambda: CLASSIFIER.main(argv))
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert "cannot write: No space left on device (errno 28)" in err[-1] and err[-1].startswith(f"error: {out}")
        os.remove(os.path.join(disk, "ballast"))
        CLASSIFIER.main(argv)
        assert not [n for n in os.listdir(out) if n.endswith(fileio.TMP_SUFFIX)]


# ---------------------------------------------------------------- names at the limits
def test_a_250_byte_name_gets_a_temporary_name_that_fits(tmp_path):
    name = "r" * 200 + "é" * 25  # 250 bytes of UTF-8
    path = tmp_path / name
    fileio.write_json(str(path), {"ok": 1})
    assert json.load(open(path)) == {"ok": 1}
    scratch = fileio._scratch_name(str(path)) + "XXXXXXXX" + fileio.TMP_SUFFIX
    assert len(os.fsencode(scratch)) <= fileio.NAME_MAX
    assert fileio._owner(scratch) == (fileio.HOST_TAG, os.getpid())  # clean_leftovers still knows whose it is


def test_a_name_over_255_bytes_is_refused_early():
    with pytest.raises(DataError, match="has a component of 256 bytes; file systems allow 255"):
        fileio.check_name_length("/out/" + "é" * 128, "results file")
    fileio.check_name_length("/out/" + "é" * 127)


# ---------------------------------------------------------------- thread and CPU variables
@pytest.mark.parametrize("value", ["lots", "0", "-2", "100000", "4,2", ""])
def test_a_bad_omp_num_threads_is_one_line(value):
    with pytest.raises(DataError, match=rf"^OMP_NUM_THREADS={value!r}: must be a whole number of threads"):
        cli.check_environment(omp=value, mkl="0")


@pytest.mark.parametrize(
    "value, flags, message",
    [
        ("99", set(), "is not a CPU type MKL knows"),
        ("7", {"avx2", "fma"}, "asks for avx512f, which this CPU lacks"),
    ],
)
def test_a_bad_mkl_debug_cpu_type_is_one_line(value, flags, message):
    with pytest.raises(DataError, match=f"^MKL_DEBUG_CPU_TYPE='{value}': {message}"):
        cli.check_environment(omp="1", mkl=value, cpu_flags=flags)
    cli.check_environment(omp="2", mkl="5", cpu_flags={"avx2", "fma"})


@pytest.mark.slow  # a subprocess importing Paddle
def test_quiet_start_and_an_unusable_home():
    """Importing the suite and Paddle prints nothing (no OMP_NUM_THREADS warning); a HOME that is a file is
    one warning line, and the caches go to the temporary directory."""
    env = dict(os.environ, HOME="/etc/passwd", OMP_NUM_THREADS="2", PYTHONPATH=ROOT)
    env.pop("PPNLP_HOME", None)
    proc = subprocess.run(
        [sys.executable, "-c", "import cluebench.train.setup, paddle; print(paddle.__version__ != '')"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (proc.returncode, proc.stdout) == (0, "True\n"), proc.stderr
    home = os.path.join(tempfile.gettempdir(), f"cluebench-home-{os.getuid()}")
    assert proc.stderr.splitlines() == [
        f"cluebench: warning: HOME /etc/passwd: /etc/passwd is not a folder; "
        f"Paddle's and PaddleNLP's caches go to {home} for this run"
    ]


# ---------------------------------------------------------------- names that are not UTF-8
def test_a_name_that_is_not_utf8_is_written_into_json(tmp_path):
    name = os.fsdecode(b"model-\xff")
    path = str(tmp_path / "record.json")
    fileio.write_json(path, {"model": name}, ensure_ascii=False)
    assert json.load(open(path, encoding="utf-8")) == {"model": name}  # \udcff: the same string again


def test_a_name_that_is_not_utf8_is_printed(capsys):
    name = os.fsdecode(b"/out/\xff")
    with pytest.raises(SystemExit):
        cli.exit_cleanly(lambda: (_ for _ in ()).throw(DataError(name, "model directory not found")))
    assert capsys.readouterr().err == "error: /out/\\udcff: model directory not found\n"


# ---------------------------------------------------------------- token ids past the embedding table
def test_a_token_id_past_the_embedding_table_is_refused_before_step_one():
    from cluebench.train import runner

    class Ragged:  # MRC features: one flat column
        columns = {"input_ids.values": np.array([1, 7, 3], np.int32)}

    runner.check_token_ids({"dev": (None, Ragged())}, 8, "/m")
    with pytest.raises(
        DataError,
        match=r"^/m: the test features hold token id 8, but the model's embedding table "
        r"has 8 rows",
    ):
        runner.check_token_ids(
            {"dev": (None, Ragged()), "test": (None, [{"input_ids": [1, 8]}, {"input_ids": []}])}, 8, "/m"
        )


def test_an_output_name_over_255_bytes_is_refused_before_work(tmp_path):
    with pytest.raises(DataError, match="component of 300 bytes; file systems allow 255"):
        cli.claim_output_dir(str(tmp_path / "out"), str(tmp_path / ("r" * 300)))
    assert os.listdir(tmp_path) == []
