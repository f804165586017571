#!/usr/bin/env bash
# Any sweep file on a lent GPU inside a wall-clock limit, resumable across loans. On the GPU machine
# (its own python3; PYTHONPATH=src, nothing installed), carrying the data files the sweep reads
# (a call carries 64 MiB, so large data goes over several calls, `--check` on each):
#
#   bash scripts/gpu_sweep.sh SWEEP.yaml --need data/cifar100/train-20000.npz --check
#   bash scripts/gpu_sweep.sh SWEEP.yaml --need ... --time-s 480 --jobs 8 [--mps] [--runs runs/gpu] [--set K=V ...]
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
# Exit status: 0 when the sweep finished or was stopped at --time-s (its runs checkpointed), the
# sweep's own status when it failed otherwise, 2 for bad arguments or data; the pack is made anyway.
set -uo pipefail
die() { echo "gpu_sweep.sh: $*" >&2; exit 2; }
[ $# -ge 1 ] && [ -f "$1" ] || die "expected a sweep file first, got '${1:-nothing}'"
SWEEP="$(realpath "$1")"; shift  # before the cd below: a path relative to the caller's folder
TIME_S=480 JOBS=8 DEVICE=cuda SMOKE=0 CHECK=0 MPS=0 KEEP=0 OUT_DIR="${OUT:-results}" RUNS=runs/gpu NEED=() SETS=()
PYTHON="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --time-s|--jobs|--device|--out|--runs|--need|--set) [ $# -ge 2 ] || die "$1 needs a value" ;;
  esac
  case "$1" in
    --time-s) TIME_S="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --out) OUT_DIR="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --need) NEED+=("$2"); shift 2 ;;
    --set) SETS+=(--set "$2"); shift 2 ;;  # passed to ait sweep, after the script's own
    --smoke) SMOKE=1; shift ;;
    --check) CHECK=1; shift ;;
    --mps) MPS=1; shift ;;
    --keep-checkpoints) KEEP=1; shift ;;
    *) die "unknown argument $1" ;;
  esac
done
OUT_DIR="$(realpath -m "$OUT_DIR")"  # --out and $OUT are taken from the caller's folder too
[[ "$TIME_S" =~ ^[0-9]+$ ]] || die "--time-s: expected whole seconds, got '$TIME_S'"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "--jobs: expected a positive integer, got '$JOBS'"
cd "$(dirname "$0")/.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT_DIR"

missing=0
for file in ${NEED[@]+"${NEED[@]}"}; do
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
extra+=(${SETS[@]+"${SETS[@]}"})
if [ "$MPS" = 1 ]; then
  if nvidia-cuda-mps-control -d; then
    echo "mps: daemon started"
    trap 'echo quit | nvidia-cuda-mps-control 2>/dev/null' EXIT  # however the script ends
  else
    echo "mps: the daemon did not start; runs time-slice the GPU"
  fi
fi
echo "sweep: $SWEEP, $JOBS workers, $TIME_S s, device $DEVICE, runs in $RUNS"
setsid "$PYTHON" -m ait sweep "$SWEEP" --jobs "$JOBS" --continue-on-error "${extra[@]}" > "$OUT_DIR/sweep.log" 2>&1 &
group=$!
timed_out=0
for _ in $(seq "$TIME_S"); do kill -0 "$group" 2>/dev/null || break; sleep 1; done
if kill -0 "$group" 2>/dev/null; then
  echo "time is up: SIGTERM to the sweep; each run saves a checkpoint and stops"
  timed_out=1
  kill -TERM -- "-$group"
  for _ in $(seq 60); do kill -0 "$group" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$group" 2>/dev/null
fi
wait "$group" 2>/dev/null
rc=$?
if [ "$timed_out" = 1 ] && [ "$rc" = 143 ]; then rc=0; fi  # stopped by the limit, as asked
[ "$rc" = 0 ] || echo "sweep: exited with status $rc (see $OUT_DIR/sweep.log)" >&2

"$PYTHON" -m ait sweep "$SWEEP" --status "${extra[@]}" | tee "$OUT_DIR/status.txt" | tail -1
# Small files of every run; checkpoints of the runs to resume (a finished run's only with --keep-checkpoints).
mkdir -p "$RUNS"  # a sweep that failed before its first run made nothing: an empty pack
find "$RUNS" \( -name config.yaml -o -name env.json -o -name metrics.jsonl -o -name summary.json \) > "$OUT_DIR/files.txt"
for dir in "$RUNS"/*/seed*; do
  [ -f "$dir/checkpoint.pt" ] || continue
  { [ ! -f "$dir/summary.json" ] || [ "$KEEP" = 1 ]; } && echo "$dir/checkpoint.pt" >> "$OUT_DIR/files.txt"
done
# A relative --runs (the default) unpacks in the repository root (tar strips an absolute one's leading /).
if ! tar -czf "$OUT_DIR/sweep.tar.gz" -T "$OUT_DIR/files.txt"; then
  echo "pack: tar failed" >&2
  exit 1
fi
echo "packed $(wc -l < "$OUT_DIR/files.txt") files into $OUT_DIR/sweep.tar.gz ($(du -h "$OUT_DIR/sweep.tar.gz" | cut -f1))"
exit "$rc"
