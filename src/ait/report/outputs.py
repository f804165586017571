"""Where ``ait report`` writes: folders it may make, and files it may replace, only its own earlier outputs.

Rewriting a report in place is the common case (docs/results/*/report.md), so each writer says how to
recognise what it wrote (report.md, figures: :mod:`ait.report.build`; results.csv/.json:
:mod:`ait.report.data`); anything else at one of its paths is refused, never overwritten or removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ait.report.records import ReportError
from ait.runtime.files import file_in_the_way

# report.md's first line: an HTML comment, invisible where the Markdown is rendered.
REPORT_MARKER = "<!-- written by ait report; the next `ait report --out` into this folder rewrites it -->"
# A text chunk of every figure's PNG metadata (ait.report.plots).
FIGURE_COMMENT = "written by ait report"


def check_folder(path: str | Path) -> Path:
    """``path``, unless it or a folder above it is something other than a folder: ReportError."""
    path = Path(path)
    blocker = file_in_the_way(path)
    if blocker == path:
        raise ReportError(f"{path}: exists and is not a folder; a folder was expected")
    if blocker is not None:
        raise ReportError(f"{blocker}: exists and is not a folder; a folder was expected (to hold {path})")
    return path


def make_folder(path: str | Path) -> Path:
    """``path``, made (with its parents) when missing; ReportError when it cannot be a folder."""
    path = check_folder(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportError(f"{path}: cannot make the folder ({err.strerror})") from None
    return path


def check_replaceable(path: Path, written_by_ait: Callable[[Path], bool]) -> Path:
    """``path``, when it is absent or ``written_by_ait(path)``; else ReportError, and it is left as it is."""
    if path.is_dir() or (path.exists() and not written_by_ait(path)):
        raise ReportError(f"{path}: exists and was not written by ait report; not overwritten")
    return path


def read_text(path: Path) -> str | None:
    """The UTF-8 text of ``path``; None when it cannot be read as such (then it is no output of ait's)."""
    try:
        return path.read_bytes().decode()
    except (OSError, UnicodeDecodeError):
        return None
