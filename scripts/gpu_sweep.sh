#!/usr/bin/env bash
# Any sweep file on a lent GPU inside a wall-clock limit, resumable across loans. On the GPU machine
# (its own python3; PYTHONPATH=src, nothing installed), carrying the data files the sweep reads
# (a call carries 64 MiB, so large data goes over several calls, `--check` on each):
#
#   bash scripts/gpu_sweep.sh SWEEP.yaml --need data/cifar100/train-20000.npz --check
#   bash scripts/gpu_sweep.sh SWEEP.yaml --need ... --time-s 480 --jobs 8 [--mps] [--runs runs/gpu]
#
# Each --need file is checked against scripts/data.sha256 (the checksums of ../shared/data), so a
# truncated transfer never trains. The sweep runs with --jobs workers on the GPU (several runs share
# it; --mps starts NVIDIA's MPS daemon so their kernels run side by side); at --time-s the whole
# process group gets SIGTERM, every run saves a checkpoint at its next step and stops, and the
# script packs into $OUT (or --out) sweep.tar.gz: each run's config.yaml, env.json, metrics.jsonl,
# summary.json, and the checkpoint of every run that has not finished (--keep-checkpoints: of every
# run, for evaluations later), so that the next loan, carrying the runs folder back, resumes them
# exactly: `ait sweep` skips finished runs and continues interrupted ones.
# Tried on the CPU with: --device cpu --smoke (2 steps an epoch, 200 test images).
set -uo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 1 ] && [ -f "$1" ] || { echo "gpu_sweep.sh: expected a sweep file first, got '${1:-nothing}'" >&2; exit 2; }
SWEEP="$1"; shift
TIME_S=480 JOBS=8 DEVICE=cuda SMOKE=0 CHECK=0 MPS=0 KEEP=0 OUT_DIR="${OUT:-results}" RUNS=runs/gpu NEED=()
PYTHON="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --time-s) TIME_S="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --out) OUT_DIR="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --need) NEED+=("$2"); shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --check) CHECK=1; shift ;;
    --mps) MPS=1; shift ;;
    --keep-checkpoints) KEEP=1; shift ;;
    *) echo "gpu_sweep.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT_DIR"

missing=0
for file in "${NEED[@]}"; do
  want=$(awk -v f="$file" '$2 == f {print $1}' scripts/data.sha256)
  [ -n "$want" ] || { echo "data: $file has no checksum in scripts/data.sha256" >&2; exit 2; }
  path="${AIT_DATA:-.}/$file"
  if [ ! -f "$path" ]; then echo "data: $path not here yet"; missing=1; continue; fi
  if [ "$(sha256sum "$path" | cut -d' ' -f1)" != "$want" ]; then
    echo "data: $path is damaged (checksum differs); send it again" >&2; exit 2
  fi
  echo "data: $path ok"
done
[ "$CHECK" = 1 ] && exit 0
[ "$missing" = 1 ] && { echo "data: missing files; nothing trained" >&2; exit 2; }

extra=(--set "train.device=$DEVICE" --set "out_dir=$RUNS" --set train.progress=plain)
if [ "$SMOKE" = 1 ]; then  # seconds per run on a CPU: the mechanics, not the numbers
  extra+=(--set train.max_steps_per_epoch=2 --set data.test_limit=200 --set train.checkpoint_every_steps=1)
fi
if [ "$MPS" = 1 ]; then
  nvidia-cuda-mps-control -d && echo "mps: daemon started" || echo "mps: the daemon did not start; runs time-slice the GPU"
fi
echo "sweep: $SWEEP, $JOBS workers, $TIME_S s, device $DEVICE, runs in $RUNS"
setsid "$PYTHON" -m ait sweep "$SWEEP" --jobs "$JOBS" --continue-on-error "${extra[@]}" > "$OUT_DIR/sweep.log" 2>&1 &
group=$!
for _ in $(seq "$TIME_S"); do kill -0 "$group" 2>/dev/null || break; sleep 1; done
if kill -0 "$group" 2>/dev/null; then
  echo "time is up: SIGTERM to the sweep; each run saves a checkpoint and stops"
  kill -TERM -- "-$group"
  for _ in $(seq 60); do kill -0 "$group" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$group" 2>/dev/null
fi
wait "$group" 2>/dev/null
[ "$MPS" = 1 ] && echo quit | nvidia-cuda-mps-control 2>/dev/null

"$PYTHON" -m ait sweep "$SWEEP" --status "${extra[@]}" | tee "$OUT_DIR/status.txt" | tail -1
# Small files of every run; checkpoints of the runs to resume (a finished run's only with --keep-checkpoints).
find "$RUNS" \( -name config.yaml -o -name env.json -o -name metrics.jsonl -o -name summary.json \) > "$OUT_DIR/files.txt"
for dir in "$RUNS"/*/seed*; do
  [ -f "$dir/checkpoint.pt" ] || continue
  { [ ! -f "$dir/summary.json" ] || [ "$KEEP" = 1 ]; } && echo "$dir/checkpoint.pt" >> "$OUT_DIR/files.txt"
done
tar -czf "$OUT_DIR/sweep.tar.gz" -T "$OUT_DIR/files.txt"
echo "packed $(wc -l < "$OUT_DIR/files.txt") files into $OUT_DIR/sweep.tar.gz ($(du -h "$OUT_DIR/sweep.tar.gz" | cut -f1))"
