"""Writing files so that a crash never leaves half of one: a temporary file, then a rename.

Every writer of the project goes through :func:`atomic_write`: the temporary file has a unique
name in the target's directory (two writers never share one), is removed if the write fails, is
flushed to the disk (fsync), and replaces the target only once it is complete; the directory is
synced after the rename, so a file reported written survives a power cut. JSON lines are appended
whole, each in one ``write`` call on a file opened for appending.
No torch here: reports (which stay free of torch) write through this module too.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any], mode: int = 0o644) -> None:
    """Call ``write(f)`` on a new temporary file beside ``path``, then rename it onto ``path``.

    ``mode``: the file's permissions (mkstemp makes 0600; files a team shares should stay readable).
    On any error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def atomic_write_path(path: str | Path, write: Callable[[Path], Any], mode: int = 0o644) -> None:
    """:func:`atomic_write` for writers that take a file name, not a file (safetensors, ONNX,
    torch.export): ``write(tmp)`` fills a temporary file beside ``path`` (its suffix kept, for
    writers that go by it), which is synced and renamed onto ``path``; on any error it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)  # the writer may have made its own (safetensors: 0600)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _sync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable; file systems that cannot sync a directory are left be."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line, in one ``write`` call (O_APPEND), flushed to the disk: a
    crash leaves whole lines (a reader drops a torn last line, see ait.engine.records.read_history)."""
    data = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):  # a short write (disk full): the line is torn, say so
            raise OSError(f"wrote {written} of {len(data)} bytes of a line to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)


def file_in_the_way(folder: str | Path) -> Path | None:
    """``folder`` or the nearest folder above it that exists as something other than a folder (it
    stops ``folder`` from being made); None when nothing is in the way."""
    folder = Path(folder)
    return next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
