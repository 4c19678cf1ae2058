"""Starting a grid job's processes and stopping every one of them, the training ranks included.

A job is its wrapper script's process group plus every process whose environment carries the job's
token (CLUE_JOB_TOKEN, set when the wrapper starts and inherited by all its descendants). The token
matters because paddle.distributed.launch starts each rank in a session of its own (os.setsid): a
signal to the wrapper's process group misses the ranks.

Stopping lets the ranks write their resume checkpoint: they get SIGTERM together, at once, so they
agree (all_reduce) to stop at the same step. A process whose children run in other sessions (the
launcher) is frozen with SIGSTOP meanwhile: on its own, Paddle's launcher kills the other ranks
3 seconds after the first one exits, and 30 seconds after its own SIGTERM, however far their
checkpoint is. It gets SIGTERM and SIGCONT once those children have exited, and exits at once
then. Every other process of the job gets SIGTERM right away. After the grace, SIGKILL.
(A grid itself killed with SIGKILL during a stop leaves a frozen launcher; `kill -CONT` ends it.)

Linux /proc only; no Paddle import (the grid scheduler uses it).
"""

import os
import secrets
import signal
import subprocess
import tempfile
import time

TOKEN = "CLUE_JOB_TOKEN"
ENVIRON_LIMIT = 1 << 20  # bytes of /proc/PID/environ read at most: the token is found well within
TICK_S = 0.1  # between scans of /proc while waiting
KILL_WAIT_S = 5.0  # after SIGKILL: what still runs then is stuck (uninterruptible I/O) and reported
# A frozen supervisor whose children outlive most of the grace is let go before the end anyway, in
# case it is a trainer itself (its checkpoint needs the time); Paddle's launcher waits 30 s after its
# SIGTERM before it kills ranks, past the deadline, where they are killed anyway.
RELEASE_BEFORE_S = 10.0


def start(argv, env, cwd, output=None):
    """The wrapper in a session of its own, with a fresh job token in its environment (process.token).
    env: variables set over this process's environment, a value of None removing one. The token is
    this process's PID and a random part, so what a grid started can be told by its PID. output: a file
    for the process's stdout and stderr; without it, stdout is dropped (the wrapper writes its own log)
    and stderr kept in process.messages."""
    token = f"{os.getpid()}-{secrets.token_hex(8)}"
    environment = {k: v for k, v in {**os.environ, **env, TOKEN: token}.items() if v is not None}
    # the wrapper's own complaints (bad arguments) come before its log exists: keep them in an
    # unnamed file, which no leftover grandchild can make a read of block
    messages = tempfile.TemporaryFile() if output is None else None
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL if output is None else output,
        stderr=messages if output is None else subprocess.STDOUT,
        start_new_session=True,
    )
    process.messages, process.token = messages, token
    return process


# ---------------------------------------------------------------- /proc
def _stat(pid):
    """(state, ppid, pgrp, session) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # after "pid (comm)", where comm may hold anything
        return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3])
    except (OSError, IndexError, ValueError):
        return None


def _environ(pid):
    """The process's environment entries (bytes), or None when it cannot be read (gone, not ours)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read(ENVIRON_LIMIT).split(b"\0")
    except OSError:
        return None


def _pids():
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


def _snapshot():
    """{pid: (state, ppid, pgrp, session, token)} of this user's live processes, token being the
    CLUE_JOB_TOKEN value (bytes) or None. Other users' processes are never looked into (nor touched),
    nor those whose environment cannot be read."""
    me, uid = os.getpid(), os.getuid()
    found = {}
    for pid in _pids():
        try:
            if pid == me or os.stat(f"/proc/{pid}").st_uid != uid:
                continue
        except OSError:
            continue
        stat = _stat(pid)
        if stat is None or stat[0] in ("Z", "X"):  # zombies only wait for their reaper
            continue
        environ = _environ(pid)
        if environ is None:
            continue
        token = next((e[len(TOKEN) + 1 :] for e in environ if e.startswith(TOKEN.encode() + b"=")), None)
        found[pid] = (*stat, token)
    return found


def _members(snapshot, process):
    """The job's processes in a snapshot: its token's, and its group's that carry no other job's token
    (a process that cleared its environment; a wrapper started without a token)."""
    token = getattr(process, "token", None)
    mine = token.encode() if token else None
    return {
        pid: info
        for pid, info in snapshot.items()
        if mine is not None and info[4] == mine or info[2] == process.pid and info[4] is None
    }


def job_processes(process):
    """The live PIDs of the job: its process group and every process carrying its token."""
    return sorted(_members(_snapshot(), process))


def group_running(pgid):
    """Whether a process of group pgid is still running (zombies, waiting for their reaper, are not)."""
    if not os.path.isdir("/proc"):  # ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
    for pid in _pids():
        stat = _stat(pid)
        if stat and stat[0] not in ("Z", "X") and stat[2] == pgid:
            return True
    return False


def _send(pid, sig):
    """Signal one process; through a pidfd where there is one, so a PID reused meanwhile is not hit."""
    try:
        if hasattr(os, "pidfd_open"):
            fd = os.pidfd_open(pid)
            try:
                signal.pidfd_send_signal(fd, sig)
            finally:
                os.close(fd)
        else:
            os.kill(pid, sig)
    except OSError:  # gone meanwhile
        pass


# ---------------------------------------------------------------- stopping
class _Stop:
    """One job being stopped: what has been signalled so far."""

    def __init__(self, process):
        self.process = process
        self.termed, self.frozen = set(), set()
        self.left = {}

    def scan(self, snapshot):
        self.left = _members(snapshot, self.process)
        self.process.poll()  # reaps the wrapper once it has exited
        return self.left

    def supervisors(self):
        """Processes with live children in another session: Paddle's launcher over its ranks."""
        return {info[1] for info in self.left.values() if info[1] in self.left and self.left[info[1]][3] != info[3]}

    def terminate(self, snapshot, release):
        """SIGTERM to what has not had it, but SIGSTOP to supervisors until their children are gone
        (or release is true: the grace is nearly over). Whether anything of the job is left."""
        self.scan(snapshot)
        self.termed &= set(self.left)  # forget the gone: a PID used again is a new process
        self.frozen &= set(self.left)
        supervisors = set() if release else self.supervisors()
        for pid in supervisors - self.frozen - self.termed:  # frozen first: then its children hear
            _send(pid, signal.SIGSTOP)
            self.frozen.add(pid)
        for pid in set(self.left) - supervisors - self.termed:  # together, so ranks stop at one step
            _send(pid, signal.SIGTERM)  # pending while frozen: acted on at the SIGCONT
            self.termed.add(pid)
            if pid in self.frozen:
                _send(pid, signal.SIGCONT)
        return bool(self.left)

    def kill(self, snapshot):
        for pid in self.scan(snapshot):
            _send(pid, signal.SIGKILL)
        return bool(self.left)


def stop_all(processes, grace, kill_wait=KILL_WAIT_S):
    """Stop every job at the same time: all get their signals now and share one deadline, grace
    seconds away, after which what remains gets SIGKILL. Returns, per job in order, the PIDs still
    running kill_wait seconds after that (empty: nothing of the job is left)."""
    stops = [_Stop(p) for p in processes]
    deadline = time.monotonic() + grace
    release_at = deadline - min(RELEASE_BEFORE_S, grace / 4)
    while True:  # one scan of /proc a round, for all the jobs: processes may appear meanwhile
        snapshot, release = _snapshot(), time.monotonic() >= release_at
        pending = [s.terminate(snapshot, release) for s in stops]
        if not any(pending) or time.monotonic() >= deadline:
            break
        time.sleep(TICK_S)
    if any(pending):
        end = time.monotonic() + kill_wait
        while True:
            snapshot = _snapshot()
            if not any([s.kill(snapshot) for s in stops]) or time.monotonic() >= end:
                break
            time.sleep(TICK_S)
    snapshot = _snapshot()
    return [sorted(s.scan(snapshot)) for s in stops]


def stop(process, grace, kill_wait=KILL_WAIT_S):
    """Stop one job (see stop_all); returns the PIDs that survived SIGKILL, normally none."""
    return stop_all([process], grace, kill_wait)[0]
