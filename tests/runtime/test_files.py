"""Atomic writes: the target is whole or untouched, temporary files are unique and never left behind."""

import json
import threading

import pytest

from ait.runtime.files import append_jsonl, atomic_write, atomic_write_path, write_json, write_text_atomic


def test_writes_replace_the_target_whole_and_leave_no_temporary_file(tmp_path):
    target = tmp_path / "summary.json"
    write_json(target, {"a": 1})
    write_json(target, {"a": 2, "b": [1, 2]})
    assert json.loads(target.read_text()) == {"a": 2, "b": [1, 2]}
    write_text_atomic(tmp_path / "notes.md", "é\n")
    assert (tmp_path / "notes.md").read_text(encoding="utf-8") == "é\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md", "summary.json"]
    assert (target.stat().st_mode & 0o777) == 0o644


def test_a_failing_write_keeps_the_previous_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"new, but not all of it")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_writer_by_file_name_gets_a_temporary_of_the_same_suffix_made_readable(tmp_path):
    names = []

    def private_writer(path):  # as safetensors does: its own file, mode 0600
        names.append(path.name)
        path.write_bytes(b"weights")
        path.chmod(0o600)

    atomic_write_path(tmp_path / "model.onnx", private_writer)
    assert names[0].startswith(".model.onnx.") and names[0].endswith(".onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    assert (tmp_path / "model.onnx").read_bytes() == b"weights"
    assert ((tmp_path / "model.onnx").stat().st_mode & 0o777) == 0o644

    def failing_exporter(path):
        path.write_bytes(b"half")
        raise RuntimeError("the exporter gave up")

    with pytest.raises(RuntimeError, match="gave up"):
        atomic_write_path(tmp_path / "other.onnx", failing_exporter)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # nothing left to block a retry


def test_concurrent_writers_use_their_own_temporary_files(tmp_path):
    target = tmp_path / "shared.json"
    names, started = [], threading.Barrier(4)

    def write(k):
        def slow(f):
            names.append(f.name)
            started.wait(timeout=10)  # all four temporary files exist at once
            f.write(json.dumps({"writer": k}).encode())

        atomic_write(target, slow)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(names)) == 4
    assert json.loads(target.read_text())["writer"] in range(4)
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]


def test_append_jsonl_adds_whole_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"epoch": 1})
    append_jsonl(path, {"epoch": 2})
    assert [json.loads(line)["epoch"] for line in path.read_text().splitlines()] == [1, 2]
