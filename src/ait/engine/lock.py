"""One writer per run directory: an exclusive lock held for the life of a run.

``RUN_DIR/.lock`` is locked with ``flock``: the operating system releases it when its process
ends, however it ends, so no stale lock survives a SIGKILL on a local disk. A second ``ait train``
(or ``--resume``, a sweep worker, or an ``ait sweep --evaluate`` pass) on the same directory is
refused with the holder named (what it does, host, pid, since when). The file holds that
description as JSON; it is emptied, not deleted, on release (deleting it would let a third process
lock a file the second still has open).

On a network file system (NFS, Lustre, GPFS, CIFS, ...) ``flock`` may not reach other hosts, so
the holder also writes a heartbeat into the file every ``HEARTBEAT_S`` seconds (from a thread of
its own, so that a long evaluation or save between steps keeps it fresh), and a
new writer refuses a lock whose heartbeat is younger than ``STALE_S`` seconds, whoever holds the
``flock``. A run killed there leaves its lock for ``STALE_S`` seconds; the message says so.
``AIT_LOCK_HEARTBEAT=1`` turns heartbeats on for any file system (0 turns them off).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

LOCK_NAME = ".lock"
HEARTBEAT_S = 60.0
STALE_S = 300.0
NETWORK_FILESYSTEMS = frozenset(
    "nfs nfs4 cifs smb3 smbfs lustre gpfs beegfs glusterfs fuse.glusterfs ceph fuse.ceph fuse.sshfs 9p afs "
    "panfs orangefs pvfs2 wekafs".split()
)


class RunLocked(RuntimeError):
    """Another process is writing this run directory."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)


def filesystem_type(path: Path) -> str:
    """The type of the file system holding ``path`` (the longest mount point above it), or ""."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    target, best, kind = str(path.resolve()), -1, ""
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3:
            point = parts[1].replace("\\040", " ")
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) > best:
                best, kind = len(point), parts[2]
    return kind


def heartbeats_needed(path: Path) -> bool:
    forced = os.environ.get("AIT_LOCK_HEARTBEAT")
    if forced in ("0", "1"):
        return forced == "1"
    return filesystem_type(path) in NETWORK_FILESYSTEMS


class RunLock:
    """The exclusive lock of one run directory (see the module docstring)."""

    def __init__(self, run_dir: str | Path, purpose: str = "training"):
        self.run_dir = Path(run_dir)
        self.purpose = purpose  # what the holder does, for the message of a refused second writer
        self.path = self.run_dir / LOCK_NAME
        self.fd: int | None = None
        self.heartbeat = heartbeats_needed(self.run_dir)
        self.last_beat = 0.0
        self.started = time.time()
        self._mutex = threading.Lock()  # the beating thread and release() share the file
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    def acquire(self) -> RunLock:
        """Lock the directory (created if absent) or raise RunLocked naming the holder."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _describe(_read_holder(fd))
            os.close(fd)
            elsewhere = " (to train elsewhere: --run-dir)" if self.purpose == "training" else ""
            raise RunLocked(
                f"{self.run_dir} is in use by another process ({holder}); wait for it to end or stop it{elsewhere}"
            ) from None
        held = _read(fd)
        age = time.time() - float(held.get("heartbeat", 0) or 0)
        mine = held.get("host") == socket.gethostname() and held.get("pid") == os.getpid()
        if self.heartbeat and held.get("pid") and not mine and age < STALE_S:
            os.close(fd)
            raise RunLocked(
                f"{self.run_dir} is in use by another process ({_describe(held)}, heartbeat {age:.0f} s ago, on a "
                f"network file system); a lock whose heartbeat is over {STALE_S:.0f} s old is taken over"
            )
        self.fd = fd
        self.beat(force=True)
        self._stop.clear()
        if self.heartbeat:  # beats in the background: evaluations, saves and set-up take no steps
            self._beater = threading.Thread(target=self._beat_until_released, name="ait-lock-heartbeat", daemon=True)
            self._beater.start()
        return self

    def _beat_until_released(self) -> None:
        warned = False
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.beat(force=True)
            except OSError as err:  # a network file system's hiccup (ESTALE, EIO): try again next time
                if not warned:
                    print(f"ait: cannot refresh the heartbeat of {self.path} ({err}); retrying", file=sys.stderr)
                    warned = True

    def beat(self, force: bool = False) -> None:
        """Refresh the holder's record (every HEARTBEAT_S seconds with heartbeats; once otherwise)."""
        with self._mutex:
            now = time.time()
            if self.fd is None or not (force or (self.heartbeat and now - self.last_beat >= HEARTBEAT_S)):
                return
            record = {"host": socket.gethostname(), "pid": os.getpid(), "started": self.started, "heartbeat": now}
            record["purpose"] = self.purpose
            data = json.dumps(record).encode()
            os.pwrite(self.fd, data, 0)  # written, then cut to length: a reader never finds it empty
            os.ftruncate(self.fd, len(data))
            self.last_beat = now

    def release(self, discard: bool = False) -> None:
        """Unlock; ``discard`` also removes the lock file (a directory that turned out not to be a run's)."""
        if self.fd is None:
            return
        self._stop.set()
        if self._beater is not None:
            self._beater.join()
            self._beater = None
        with self._mutex:
            try:
                os.ftruncate(self.fd, 0)  # no heartbeat left behind for the next writer to wait on
                if discard:
                    self.path.unlink(missing_ok=True)
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
                self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        record = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _read_holder(fd: int, wait_s: float = 2.0) -> dict:
    """The holder's record; it may still be on its way (the holder locks, then writes), so wait a little."""
    deadline = time.monotonic() + wait_s
    record = _read(fd)
    while not record.get("pid") and time.monotonic() < deadline:
        time.sleep(0.05)
        record = _read(fd)
    return record


def _describe(record: dict) -> str:
    if not record.get("pid"):
        return "holder unknown"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record.get("started", 0))))
    doing = f"{record['purpose']}, " if record.get("purpose") not in (None, "training") else ""  # the usual holder
    return f"{doing}pid {record['pid']} on {record.get('host', '?')}, since {since}"


def lock_holder(run_dir: str | Path) -> str | None:
    """Who holds the lock of ``run_dir`` ("pid 123 on host, since ..."), or None when nobody does.

    Reads without taking the lock for long: a shared lock that fails means an exclusive holder."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _describe(_read_holder(fd, wait_s=0.5))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
