#!/usr/bin/env bash
# The GPU smoke check: the first thing to run on a GPU machine, since CI never sees a GPU.
#
#   scripts/gpu_check.sh                    # on a GPU machine: python3, PYTHONPATH=src, no venv; about 2-3 minutes
#   make gpu-check                          # the same
#   PYTHON=.venv/bin/python scripts/gpu_check.sh --device cpu --out /tmp/gpu_check   # try it without a GPU
#
# It installs nothing (a GPU machine may have no network): it uses the machine's own python3 and
# torch, with this checkout's src/ on PYTHONPATH, and says which modules are missing. Steps, each
# printed PASS / FAIL / SKIP with its time, its output in DIR/logs/STEP.log:
#
#   env         python, torch, CUDA and the GPU; ait's core dependencies (a missing one fails here)
#   cuda-tests  every test of the suite that is skipped without CUDA (pytest -m cuda; tests/conftest.py)
#   torchrun    a one-process torchrun run of configs/smoke (ait sees a world of one: no process group)
#   ddp         one rank joining the process group itself (NCCL on CUDA, gloo on the CPU): ait's DDP
#               wrapping, with SyncBatchNorm on CUDA, trains as the unwrapped step does (scripts/gpu_check_ddp.py)
#   timm        an AIT run of a timm model (timm:test_resnet, or timm:resnet18 with an older timm)
#   bench       benchmarks/gpu.py --smoke --strict inside --bench-budget-s seconds
#   profile     benchmarks/profile_step.py on three steps of ResNet-20 (eager, and captured on CUDA)
#
# Options: --device auto|cuda|cpu (auto: cuda when torch sees one; on the CPU the CUDA tests are
# selected and skip), --out DIR (default: $OUT when set, as on the device machine, else
# runs/gpu-check), --bench-budget-s S (default 45). Exit status: the number of failed steps (0: all passed).

set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
PY=${PYTHON:-python3}
DEVICE=auto
DEST=${OUT:-runs/gpu-check}
BENCH_BUDGET=45

while [ $# -gt 0 ]; do
    case $1 in
        --device) DEVICE=$2; shift 2 ;;
        --out) DEST=$2; shift 2 ;;
        --bench-budget-s) BENCH_BUDGET=$2; shift 2 ;;
        -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONHASHSEED=0
mkdir -p "$DEST/logs"
DEST=$(cd "$DEST" && pwd)
SUMMARY="$DEST/summary.txt"
: >"$SUMMARY"
FAILED=0
START=$SECONDS

# coreutils' timeout where there is one, so that a hung step cannot eat the machine's time.
if command -v timeout >/dev/null; then
    limit() { local s=$1; shift; timeout --kill-after=10 "$s" "$@"; }
else
    limit() { shift; "$@"; }
fi

record() { printf '%-11s %s\n' "$1" "$2" | tee -a "$SUMMARY"; }

# run_step NAME SECONDS COMMAND...: run it with its output in the step's log; PASS or FAIL with the log's tail.
run_step() {
    local name=$1 seconds=$2 log="$DEST/logs/$1.log" begin=$SECONDS rc why cmd
    shift 2
    cmd="$*"
    printf '%s\n' "${cmd:0:400}" >"$log"
    limit "$seconds" "$@" >>"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        record "$name" "PASS ($((SECONDS - begin)) s)"
    else
        why="exit status $rc"
        [ "$rc" -eq 124 ] && why="timed out after $seconds s"
        record "$name" "FAIL ($((SECONDS - begin)) s, $why; log: $log)"
        tail -n 15 "$log" | sed 's/^/      /'
        FAILED=$((FAILED + 1))
    fi
    return "$rc"
}

skip_step() { record "$1" "SKIP ($2)"; }

has_module() { "$PY" -c "import $1" >/dev/null 2>&1; }

# --- env: what the machine has -------------------------------------------------------------------
ENV_CHECK=$(cat <<'EOF'
import importlib, json, os, platform, sys
required = ["torch", "numpy", "yaml", "tqdm", "safetensors", "PIL"]
optional = ["pytest", "hypothesis", "timm", "torchvision", "tensorboard", "onnxruntime"]
found, missing = {}, []
for name in required + optional:
    try:
        module = importlib.import_module(name)
        found[name] = getattr(module, "__version__", "?")
    except Exception as err:  # ImportError, or a broken install
        found[name] = None
        missing.append(f"{name} ({type(err).__name__}: {err})")
import torch
info = {"python": platform.python_version(), "modules": found, "cuda_available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda, "cpus": os.cpu_count()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=p.name, capability=f"{p.major}.{p.minor}", gpus=torch.cuda.device_count(),
                bf16=torch.cuda.is_bf16_supported(), nccl=torch.distributed.is_nccl_available())
print(json.dumps(info, indent=2))
open(sys.argv[1], "w").write(json.dumps(info, indent=2))
for m in missing:
    print("missing:", m)
bad = [n for n in required if found[n] is None]
if bad:
    sys.exit(f"ait needs {', '.join(bad)}, which this python cannot import; install them (no network: a wheel)")
if sys.argv[2] == "cuda" and not torch.cuda.is_available():
    sys.exit("--device cuda, but torch sees no CUDA device")
EOF
)

echo "gpu check: $PY, device $DEVICE, outputs in $DEST"
if ! "$PY" -c "import torch" 2>/dev/null; then
    record env "FAIL ($PY cannot import torch; set PYTHON=...)"
    exit 1
fi
if [ "$DEVICE" = auto ]; then
    DEVICE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
fi
if ! run_step env 60 "$PY" -c "$ENV_CHECK" "$DEST/env.json" "$DEVICE"; then
    record total "stopped: the other steps need what env checks"
    exit 1
fi
grep -h '^missing:' "$DEST/logs/env.log" | sed 's/^/      /'

# --- the suite's CUDA tests ----------------------------------------------------------------------
if has_module pytest; then
    mapfile -t FILES < <(grep -rliE --include='test_*.py' 'cuda|gpu' tests | sort)
    if [ "$DEVICE" = cuda ]; then
        run_step cuda-tests 240 "$PY" -m pytest -q -rs -m cuda -p no:cacheprovider "${FILES[@]}"  # the captured step's runs too
    else
        run_step cuda-tests 150 "$PY" -m pytest -q -rs -m cuda -p no:cacheprovider "${FILES[@]}" &&
            echo "      (no CUDA here: the selected tests were skipped)"
    fi
else
    skip_step cuda-tests "pytest is not installed for $PY"
fi

# --- training under torchrun, data-parallel, a timm model ------------------------------------------
SMOKE=configs/smoke/synthetic_resnet20_ait.yaml
TRAIN_SET=(--set "train.device=$DEVICE" --set train.epochs=1 --set train.progress=none)
run_step torchrun 150 "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 \
    -m ait train "$SMOKE" --run-dir "$DEST/runs/torchrun" --overwrite "${TRAIN_SET[@]}"

run_step ddp 120 "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 \
    scripts/gpu_check_ddp.py --device "$DEVICE"

if has_module timm; then
    # timm:test_resnet is tiny, but only newer timm versions have it.
    TIMM=$("$PY" -c "import timm; print('test_resnet' if timm.list_models('test_resnet') else 'resnet18')" 2>/dev/null)
    run_step timm 150 "$PY" -m ait train "$SMOKE" --run-dir "$DEST/runs/timm" --overwrite "${TRAIN_SET[@]}" \
        --set "strategy.networks=[timm:${TIMM:-resnet18}]" --set train.max_steps_per_epoch=4
else
    skip_step timm "timm is not installed for $PY"
fi

# --- the benchmark, in its smoke sizes -----------------------------------------------------------
run_step bench $((BENCH_BUDGET + 90)) "$PY" benchmarks/gpu.py --device "$DEVICE" --smoke --strict \
    --budget-s "$BENCH_BUDGET" --out "$DEST/bench"

# --- a profiled step (eager, and captured on CUDA): the profiler runs there ---------------------------
run_step profile 120 "$PY" benchmarks/profile_step.py --device "$DEVICE" --model resnet20 --batch 32 \
    --steps 3 --warmup 4 --out "$DEST/profile"

record total "$((SECONDS - START)) s, $FAILED failed step(s); logs in $DEST/logs"
exit "$FAILED"
