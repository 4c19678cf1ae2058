"""Reading CLUE files with errors that point at the line, writing files atomically, and owning an
output directory for the length of a run."""

import atexit
import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import time

HOST = socket.gethostname()
HOST_TAG = HOST.replace(".", "_")  # the host in temporary names, which are parsed on dots
# Files are created with the permissions the umask allows (mkstemp alone would make them 0600, and a
# shared Slurm directory unreadable to colleagues). Read once: os.umask can only be read by setting it.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
TMP_SUFFIX = ".tmp"
SCRATCH_PREFIX = ".saving-"
STALE_AFTER_S = 24 * 3600  # a temporary file of another host is removed only when this old
NAME_MAX = 255  # bytes in one path component, on every file system a run writes to
# Failures of a write that are the environment's, not a bug: said in one line (WriteError), never a traceback.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.EFBIG, errno.EIO}
)


class DataError(ValueError):
    """Bad input (a file, or a flag); the message names the file, the line (or record) and the field."""

    def __init__(self, path, message, line=None, field=None):
        where = f"{path}:{line}" if line is not None else str(path)
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


class WriteError(DataError):
    """A file could not be written (a full, read-only or over-quota disk, a name too long): what to do next."""

    def __init__(self, path, error):
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "free space and rerun: the run resumes from its checkpoint"
        elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            hint = "make it writable (or write elsewhere) and rerun"
        else:
            hint = "rerun once it can be written"
        super().__init__(path, f"cannot write: {error.strerror} (errno {error.errno}); {hint}")


def environment_write_error(error):
    """The OSError of a write failure that error is, or was raised while handling (zipfile's `seek of closed
    file` after a full disk), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
            return error
        error = error.__cause__ or error.__context__
    return None


def check_name_length(path, what="file"):
    """A DataError unless each component of path fits NAME_MAX bytes (UTF-8), before any work is done."""
    for part in os.fsencode(path).split(b"/"):
        if len(part) > NAME_MAX:
            raise DataError(path, f"{what} name has a component of {len(part)} bytes; file systems allow {NAME_MAX}")


def _undecodable(path, data, error):
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    return DataError(path, f"not valid UTF-8 (byte 0x{data[error.start]:02x} at column {column})", line=line)


def _check_file(path):
    if os.path.isdir(path):
        raise DataError(path, "is a directory, not a file")
    if not os.path.isfile(path):
        raise DataError(path, "file not found")


def printable(text):
    """A user-given name for a line of output: control and other unprintable characters escaped as repr()
    writes them (\\n, \\x1b), so that no name can forge a line or drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


class NotRegular(DataError):
    """open_regular's refusal; .what says what path is instead, for callers that word it their own way."""

    def __init__(self, path, what):
        super().__init__(printable(path), f"is {what}, not a regular file")
        self.what = what


def open_regular(path):
    """A read-only binary file object of path, refused (NotRegular) unless it is a regular file: its last
    component is not followed if a link (a link may point anywhere), and a FIFO or device is never opened for
    reading (a FIFO would block open(), /dev/zero never end); O_NOFOLLOW, O_NONBLOCK and a check of what was
    opened hold if someone replaces the file after lstat. OSError (missing, no permission) passes through."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise NotRegular(path, "a symbolic link")
    if not stat.S_ISREG(info.st_mode):
        raise NotRegular(path, "a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO, socket or device")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
        os.close(fd)
        raise NotRegular(path, "not the file it was a moment ago")
    return os.fdopen(fd, "rb")


def read_regular(path, limit):
    """The bytes of a regular file (open_regular) of at most `limit` bytes; anything else, or a bigger file,
    is a DataError saying which, and never read past the limit."""
    try:
        with open_regular(path) as f:
            data = f.read(limit + 1)
    except NotRegular as e:
        if e.what == "a symbolic link":
            raise DataError(printable(path), "is a link; links are not followed") from None
        raise DataError(printable(path), "is not a regular file (a FIFO, a device or a socket)") from None
    except OSError as e:
        raise DataError(printable(path), f"cannot be read ({e.strerror})") from None
    if len(data) > limit:
        raise DataError(printable(path), f"is over {limit:,} bytes, more than any file of its kind")
    return data


def read_text(path):
    """A whole UTF-8 file; a missing file or an undecodable byte is a DataError naming the line."""
    _check_file(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _undecodable(path, data, e) from None


def read_jsonl(path):
    """Yield (line_number, record) from a JSON-lines file.

    Splits on '\\n' only; str.splitlines() would also split on U+2028, which occurs inside real
    IFLYTEK sentences.
    """
    _check_file(path)
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    path, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1} of the line)", line=number
                ) from None
            if not line.strip():
                continue
            try:
                record = json.loads(line.rstrip("\r\n"))  # so columns point into the line
            except json.JSONDecodeError as e:
                raise DataError(path, f"not valid JSON ({e.msg}, column {e.colno})", line=number) from None
            if not isinstance(record, dict):
                raise DataError(path, f"expected a JSON object, got {type(record).__name__}", line=number)
            yield number, record


def read_json(path):
    """One JSON document; a truncated or malformed file is a DataError naming the line."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        # a string left open runs to the end of the file: the file was cut short
        cut = e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string")
        what = "truncated JSON" if cut else f"not valid JSON ({e.msg})"
        raise DataError(path, f"{what}, column {e.colno}", line=e.lineno) from None


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(paths):
    """Of the files' contents, each hashed apart: bytes moved from one file to the next change it."""
    return hashlib.sha256(json.dumps([file_sha256(p) for p in paths]).encode()).hexdigest()


def require(record, field, path, line):
    """record[field], or a DataError naming where it is missing."""
    if field not in record:
        raise DataError(path, "missing", line=line, field=field)
    return record[field]


def _owner_tag():
    return f"{HOST_TAG}-{os.getpid()}"


def _scratch_name(path):
    """A hidden name beside path that says which process made it: .NAME.HOST-PID.XXXXXXXX.tmp, NAME cut so the
    whole fits NAME_MAX bytes (clean_leftovers reads the owner from the end of the name)."""
    tail = f".{_owner_tag()}."
    room = NAME_MAX - len(os.fsencode("." + tail + TMP_SUFFIX)) - 8  # mkstemp's 8 random characters
    name = os.fsencode(os.path.basename(path))[: max(room, 0)]
    return "." + os.fsdecode(name) + tail


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds."""
    if os.path.isdir(path):
        raise DataError(path, "is a directory, where a file is to be written")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_scratch_name(path), suffix=TMP_SUFFIX, dir=directory)
    except OSError as e:
        raise _as_write_error(path, e)  # noqa: B904  (it may be e itself: no chain to itself)
    try:
        os.fchmod(fd, FILE_MODE)
        # A name that is not UTF-8 (surrogateescape) is written as \udcNN: in JSON, the same string again.
        text = "b" not in mode
        errors = "backslashreplace" if text else None
        with os.fdopen(fd, mode, encoding=encoding if text else None, errors=errors) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # the old file stays; the half-written one goes
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _as_write_error(path, e)  # noqa: B904  (it may be e itself: no chain to itself)


def _as_write_error(path, error):
    """error as a WriteError naming path when the environment caused it, else error itself."""
    cause = environment_write_error(error) if isinstance(error, Exception) else None
    if cause is None or isinstance(error, DataError):
        return error
    wrapped = WriteError(path, cause)
    wrapped.__suppress_context__ = True
    return wrapped


def write_npz(path, arrays):
    """np.savez's format, written atomically, numpy arrays only (read back with allow_pickle=False). Unlike
    np.savez, a failed write (a full disk) closes the archive, so nothing is left to fail again at exit."""
    import zipfile

    import numpy as np

    with atomic_write(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def write_json(path, obj, **dump_options):
    """json.dump obj to path atomically, with a final newline."""
    with atomic_write(path) as f:
        json.dump(obj, f, **dump_options)
        f.write("\n")


def is_local_path(name):
    """A model given as a path (which must exist), not a built-in or community name."""
    return name.startswith(("/", "./", "../", "~"))


def task_folder(data_dir, task):
    """Where a task's files are: DATA_DIR/<task>_public/ when DATA_DIR holds the official folders,
    else DATA_DIR itself (the task folder was given)."""
    folder = os.path.join(data_dir, f"{task}_public")
    return folder if os.path.isdir(folder) else data_dir


def atomic_save_pretrained(output_dir, *objects):
    """save_pretrained each object into a scratch folder, then rename file by file into output_dir.

    Each file appears whole or not at all; files that output_dir already holds
    for other reasons (predictions, the results record) are left alone.
    """
    try:
        os.makedirs(output_dir, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{_owner_tag()}.", dir=output_dir)
    except OSError as e:
        raise _as_write_error(output_dir, e)  # noqa: B904  (it may be e itself: no chain to itself)
    try:
        for obj in objects:
            obj.save_pretrained(scratch)
        for name in os.listdir(scratch):
            os.replace(os.path.join(scratch, name), os.path.join(output_dir, name))
    except Exception as e:  # the files of the previous save stay whole
        raise _as_write_error(output_dir, e)  # noqa: B904  (it may be e itself: no chain to itself)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------- leftovers and ownership
def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


_OWNED = re.compile(r"^\.saving-(?P<host>[^.]+)-(?P<pid>\d+)\.[^.]+$|\.(?P<fhost>[^.]+)-(?P<fpid>\d+)\.[^.]+\.tmp$")


def _owner(name):
    """(host tag, pid) from a name made by _scratch_name or atomic_save_pretrained, or None."""
    m = _OWNED.search(name)
    if m is None:
        return None
    return (m["host"], int(m["pid"])) if m["host"] else (m["fhost"], int(m["fpid"]))


def clean_leftovers(directory):
    """Remove the temporary files and save folders that killed runs left in directory; returns their names.

    Only what no live process can still be writing: on this host, those of dead processes; of
    another host (a shared file system), those untouched for a day."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        path = os.path.join(directory, name)
        is_tmp = name.startswith(".") and name.endswith(TMP_SUFFIX) and os.path.isfile(path)
        is_scratch = name.startswith(SCRATCH_PREFIX) and os.path.isdir(path)
        if not (is_tmp or is_scratch):
            continue
        owner = _owner(name)
        try:
            age = time.time() - os.path.getmtime(path)
        except OSError:
            continue
        if owner is not None and owner[0] == HOST_TAG:
            stale = not _pid_alive(owner[1])
        else:  # another host's, or an older naming: only once nobody has touched it for a day
            stale = age > STALE_AFTER_S
        if stale:
            if is_scratch:
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            removed.append(name)
    return removed


def check_writable(path, what="output directory"):
    """A DataError unless path is (or can be created as) a writable directory; creates nothing."""
    probe = os.path.abspath(path)
    if os.path.exists(probe) and not os.path.isdir(probe):
        raise DataError(path, f"{what} is a file, not a directory")
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise DataError(path, f"{what} is not writable ({probe} does not allow it)")


class Busy(DataError):
    """The output directory is another live run's: try again later (the grid does), not bad input."""

    EXIT = 75  # EX_TEMPFAIL


def _process_start(pid):
    """A process's start time in clock ticks since boot (/proc/PID/stat field 22), or None: with the boot id
    it tells a live owner from another process that got its pid after it died."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat_line = f.read(4096).decode("ascii", "replace")
        return int(stat_line.rsplit(")", 1)[1].split()[19])  # fields after the name start at field 3
    except (OSError, ValueError, IndexError):
        return None


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read(64).strip() or None
    except (OSError, UnicodeDecodeError):
        return None


LOCK_MAX_BYTES = 4096  # a lock holds a few fields; the folder is shared, so no more is read


class OutputDirLock:
    """One run per output directory: .cluebench.lock holds the owner's host, pid, process start time and
    boot id.

    A second run is refused with a line naming the owner; a lock of this host whose process is dead, or
    whose pid now belongs to another process (another start time or boot), is taken over (and said). A lock
    of another host cannot be judged from here: the line says so, and a run given that host's name
    (break_host, the scripts' --break_lock HOST) takes it over, for a host known to be gone.
    release() (also at exit) removes it."""

    NAME = ".cluebench.lock"

    def __init__(self, directory, log=print, break_host=None):
        self.directory, self.path, self.log = directory, os.path.join(directory, self.NAME), log
        self.break_host = break_host if break_host != HOST else None  # this host's locks are judged, never broken
        self.held = False

    def _stale(self, owner):
        """Why owner's lock is stale ("dead", "pid reused"), or None if it may be live (or is another host's)."""
        if owner.get("host") != HOST or not isinstance(owner.get("pid"), int) or isinstance(owner["pid"], bool):
            return None
        if owner["pid"] <= 0 or not _pid_alive(owner["pid"]):
            return "dead"
        boot, start = owner.get("boot_id"), owner.get("proc_start")
        if boot is not None and boot != _boot_id():
            return "from before a reboot"
        if start is not None and start != _process_start(owner["pid"]):
            return "pid reused by another process"
        return None

    def acquire(self):
        os.makedirs(self.directory, exist_ok=True)
        me = {
            "host": HOST,
            "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "proc_start": _process_start(os.getpid()),
            "boot_id": _boot_id(),
        }
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
            except FileExistsError:
                owner = self._read_owner()
                if owner is None and self._age() < 10:  # being written by a run starting right now
                    owner = {"pid": "?", "host": "?", "started": "just now"}
                why = "unreadable" if owner is None else self._stale(owner)
                broken = owner is not None and self.break_host is not None and owner.get("host") == self.break_host
                if why or broken:
                    if broken:
                        what = (
                            f"the lock of pid {printable(owner.get('pid'))} on {printable(self.break_host)} "
                            f"since {printable(owner.get('started'))} (--break_lock)"
                        )
                    else:
                        what = (
                            "an unreadable lock" if owner is None else f"the stale lock of pid {owner['pid']} ({why})"
                        )
                    self.log(f"{self.directory}: taking over {what}")
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path)
                    continue
                host = printable(owner.get("host"))  # read from a shared folder: may hold anything
                other = owner.get("host") not in (HOST, "?")
                raise Busy(
                    self.directory,
                    f"output directory is in use by pid {printable(owner.get('pid'))} on "
                    f"{host} since {printable(owner.get('started'))} "
                    f"(lock {self.path}); use another --output_dir"
                    + (f"; if that host is gone, rerun with --break_lock {host}" if other else ""),
                ) from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            atexit.register(self.release)
            removed = clean_leftovers(self.directory)
            if removed:
                self.log(f"{self.directory}: removed {len(removed)} leftovers of killed runs ({', '.join(removed)})")
            return self
        raise DataError(self.directory, f"could not take the lock {self.path}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def _age(self):
        try:
            return time.time() - os.lstat(self.path).st_mtime  # the lock's own age, not a link's target
        except OSError:
            return 0.0

    def _read_owner(self):
        """The lock's fields, read bounded and without following a link (the folder is shared), or None."""
        if os.path.isdir(self.path) and not os.path.islink(self.path):
            raise DataError(self.path, "is a directory, where the run's lock file goes; remove it")
        try:
            owner = json.loads(read_regular(self.path, LOCK_MAX_BYTES).decode("utf-8"))
        except (DataError, UnicodeDecodeError, ValueError):
            return None
        return owner if isinstance(owner, dict) and "pid" in owner else None

    def release(self):
        if self.held:
            owner = self._read_owner()
            if owner is not None and owner.get("pid") == os.getpid() and owner.get("host") == HOST:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
            self.held = False
