"""benchmarks/gpu.py on the CPU at its smoke sizes: the JSON's schema, a failing row recorded
instead of ending the run, rows skipped by the budget and by --only / --skip. No time is asserted."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from ait_testutils import REPO, load_script, one_torch_thread

SCRIPT = REPO / "benchmarks" / "gpu.py"
FIELDS = {
    "model",
    "strategy",
    "batch",
    "mode",
    "seeds",
    "images_per_s",
    "ms_per_step",
    "peak_mem_mb",
    "error",
    "status",
}


def load_gpu_module():
    return load_script(SCRIPT, "benchmarks_gpu")


def test_a_failing_row_is_recorded_and_the_others_are_measured(tmp_path):
    gpu = load_gpu_module()
    args = gpu.parse_args(["--device", "cpu", "--smoke", "--out", str(tmp_path)])
    ctx = gpu.Context(args, gpu.make_sizes(True, "cpu"))
    rows = [
        gpu.Row("t", "no_such_model", "ait", 16, "eager"),
        gpu.Row("t", "resnet20", "baseline", 16, "eager"),
        gpu.Row("t", "resnet20", "ait", 16, "eager", est_s=1e6),  # never fits the budget
    ]
    budget = gpu.Budget(120)
    with one_torch_thread():
        gpu.run_steps_group(ctx, rows, budget)
    failed, measured, skipped = rows
    assert failed.status == "error" and "no_such_model" in failed.error
    assert measured.status == "ok" and measured.error is None
    assert measured.images_per_s > 0 and measured.ms_per_step > 0 and measured.steps == 2 and measured.repeats == 2
    assert measured.flops_per_step > 0  # FlopCounterMode counted the step
    assert measured.peak_mem_mb is None  # the CPU has no per-row peak (the meta has the process's)
    assert skipped.status == "skipped" and "budget" in skipped.note

    text = gpu.write(tmp_path, gpu.machine(args), {"n": 8, "dtype": "bfloat16", "flop_per_s": 1e9}, rows, budget)
    doc = json.loads((tmp_path / gpu.RESULTS_JSON).read_text())
    assert [r["status"] for r in doc["rows"]] == ["error", "ok", "skipped"]
    assert doc["rows"][1]["matmul_fraction"] > 0
    assert "| resnet20 | baseline | 16 | eager |" in text and "no_such_model" in text
    assert set(f.name for f in dataclasses.fields(gpu.Row)) >= FIELDS


@pytest.mark.slow
def test_smoke_run_of_the_selected_rows(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--smoke", "--budget-s", "60", "--strict"]
    cmd += ["--only", "resnet20", "--skip", "procs", "--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| model | strategy | batch | mode |" in done.stdout
    doc = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert doc["matmul"]["flop_per_s"] > 0 and doc["meta"]["device"] == "cpu"
    for row in doc["rows"]:
        assert FIELDS <= set(row)
        chosen = row["model"] == "resnet20" and row["processes"] == 1 and row["mode"] == "eager"
        assert row["status"] == ("ok" if chosen else "skipped"), row
        if row["mode"] == "graph" and row["model"] == "resnet20":  # captured steps: measured on a GPU only
            assert row["note"] == "CUDA graphs: CUDA only"
    # ResNet-20, AIT and baseline, two batch sizes; AIT with 2 seeds stacked; each also captured
    assert sum(r["status"] == "ok" for r in doc["rows"]) == 5
    assert sum(r["mode"] == "graph" and r["model"] == "resnet20" for r in doc["rows"]) == 5
    stacked = next(r for r in doc["rows"] if r["seeds"] == 2 and r["status"] == "ok")
    per_step = stacked["images_per_s"] * stacked["ms_per_step"] / 1000  # every seed's images count
    assert per_step == pytest.approx(stacked["batch"] * 2) and "2 seeds stacked" in done.stdout
    alone = next(
        r
        for r in doc["rows"]
        if r["group"] == "cifar" and r["batch"] == stacked["batch"] and r["strategy"] == "ait" and r["mode"] == "eager"
    )
    assert stacked["flops_per_step"] == pytest.approx(2 * alone["flops_per_step"])  # two networks' work


def test_the_full_plan_measures_each_cifar_step_eager_and_captured_and_processes_with_and_without_mps():
    gpu = load_gpu_module()
    rows = [row for _, _, group in gpu.plan(gpu.make_sizes(False, "cuda")) for row in group]
    steps = {(r.model, r.strategy, r.batch) for r in rows if r.group in ("resnet32-128", "cifar")}
    for model, strategy, batch in steps:
        modes = {r.mode for r in rows if (r.model, r.strategy, r.batch) == (model, strategy, batch)}
        assert {"eager", "graph"} <= modes, (model, strategy, batch, modes)
    procs = {(r.processes, r.mps) for r in rows if r.group.startswith("procs")}
    assert procs == {(k, mps) for k in (2, 4, 8) for mps in (False, True)}
    stacked = {(r.seeds, r.mode) for r in rows if r.group == "stacked"}
    assert stacked == {(k, mode) for k in (4, 16) for mode in ("eager", "graph")}
    smoke = [row for _, _, group in gpu.plan(gpu.make_sizes(True, "cuda")) for row in group]
    assert not any(r.mps for r in smoke)  # a smoke check does not depend on the MPS daemon
