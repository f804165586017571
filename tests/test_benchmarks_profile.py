"""benchmarks/profile_step.py: a step's time split into work and gaps, tried on the CPU."""

import gzip
import json
import os
import subprocess
import sys

import pytest

from ait_testutils import REPO, load_script

SCRIPT = REPO / "benchmarks" / "profile_step.py"


def load_module():
    return load_script(SCRIPT, "benchmarks_profile_step")


def test_busy_time_is_the_union_of_intervals():
    union = load_module().union_us
    assert union([]) == 0
    assert union([(0, 10), (5, 12), (20, 25)]) == 17  # an overlap counts once
    assert union([(0, 10), (2, 3), (4, 5)]) == 10  # nested intervals add nothing


def cuda_event(i, name, start, end, device, annotation=False):
    """A profiler event as torch.profiler reports one from a CUDA run (kernels, runtime calls, spans)."""
    from torch.autograd import DeviceType
    from torch.autograd.profiler_util import FunctionEvent

    kind = DeviceType.CUDA if device else DeviceType.CPU
    return FunctionEvent(
        id=i,
        name=name,
        thread=0,
        start_us=start,
        end_us=end,
        device_type=kind,
        is_user_annotation=annotation,
        use_device="cuda",
        input_shapes=[],
        stack=[],
    )


def test_a_cuda_profile_counts_kernels_not_annotation_spans_and_launches_by_name_or_correlation():
    summarize = load_module().summarize
    events = [
        cuda_event(1, "cudaLaunchKernel", 0, 2, False),
        cuda_event(2, "INVALID", 3, 4, False),  # a CUDA 13 build's __cudaLaunchKernel, unnamed by kineto
        cuda_event(3, "cuLaunchKernelEx_v12000", 5, 6, False),
        cuda_event(9, "cudaStreamSynchronize", 7, 30, False),
        cuda_event(1, "k1", 2, 5, True),
        cuda_event(2, "k2", 6, 8, True),
        cuda_event(3, "Memcpy HtoD (Pageable -> Device)", 20, 21, True),
        cuda_event(7, "Optimizer.step#SGD.step", 2, 21, True, annotation=True),  # a record_function span
    ]
    row = summarize(events, steps=1, wall_s=30e-6, cuda=True)
    assert row["busy_ms_per_step"] == pytest.approx(6e-3)  # 3 + 2 + 1 us; the span's 19 us left out
    assert row["kernels_per_step"] == 3 and row["copies_per_step"] == 1
    assert row["launches_per_step"] == 2 and row["launches_by_correlation_per_step"] == 3
    assert row["top"][0]["name"] == "k1" and "warning" not in row
    assert "CUPTI recorded no GPU activity" in summarize([], steps=2, wall_s=0.01, cuda=True)["warning"]


@pytest.mark.slow
def test_a_cpu_profile_writes_its_summary_and_a_chrome_trace(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--model", "resnet20", "--batch", "16", "--steps", "2"]
    cmd += ["--warmup", "1", "--seeds", "2", "--out", str(tmp_path)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| eager |" in done.stdout
    doc = json.loads((tmp_path / "profile.json").read_text())
    assert doc["meta"]["seeds"] == 2 and [r["mode"] for r in doc["rows"]] == ["eager"]
    row = doc["rows"][0]
    assert 0 < row["busy_ms_per_step"] <= row["wall_ms_per_step"]  # a union of operator intervals inside the span
    assert row["gap_ms_per_step"] == pytest.approx(row["wall_ms_per_step"] - row["busy_ms_per_step"])
    assert row["kernels_per_step"] > 50 and row["launches_per_step"] is None  # no CUDA launches on the CPU
    assert any("conv" in t["name"].lower() for t in row["top"])  # a ResNet's time is in its convolutions
    trace = json.loads(gzip.decompress((tmp_path / row["trace"]).read_bytes()))
    assert trace["traceEvents"]


def test_graph_mode_off_cuda_is_refused_with_status_2():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--modes", "graph"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 2 and "CUDA graphs need --device cuda" in done.stderr
