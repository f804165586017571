#!/usr/bin/env bash
# The paper's regime on a lent GPU (sweeps/paper_regime_cifar100.yaml) inside a wall-clock limit,
# resumable across loans. On the GPU machine (its own python3; PYTHONPATH=src, nothing installed):
#
#   call 1, carrying data/cifar100/train-20000.npz (56 MB; a call carries 64 MiB): bash scripts/gpu_paper_regime.sh --check
#   call 2, carrying data/cifar100/test.npz and, from an earlier loan, runs/gpu160/:
#       bash scripts/gpu_paper_regime.sh --time-s 480 --jobs 8
#
# The sweep runs with --jobs workers on the GPU (several runs share it); at --time-s the whole process
# group gets SIGTERM, every run saves a checkpoint at its next step and stops, and the script packs
# into $OUT (or --out) paper_regime.tar.gz: each run's config.yaml, env.json, metrics.jsonl,
# summary.json, and the checkpoint of every run that has not finished, so that the next loan
# (carrying runs/gpu160/ back, unpacked in the repo root) resumes them exactly: `ait sweep` skips
# finished runs and continues interrupted ones. Tried on the CPU with: --device cpu --smoke.
set -uo pipefail
cd "$(dirname "$0")/.."

TIME_S=480 JOBS=8 DEVICE=cuda SMOKE=0 CHECK=0 OUT_DIR="${OUT:-results}" RUNS=runs/gpu160
PYTHON="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --time-s) TIME_S="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --out) OUT_DIR="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --check) CHECK=1; shift ;;
    *) echo "gpu_paper_regime.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT_DIR"

# The files' checksums (../shared/data/SHA256SUMS): a truncated transfer must not train.
declare -A SUMS=(
  [data/cifar100/train-20000.npz]=b495545dc4071d5042fe89787d4bfa22edf4e8daa8698088723cd8dac4d49247
  [data/cifar100/test.npz]=59868e600bf881ca45a34601496743ac386f9124996972c86815c6dfdc37c237
)
missing=0
for file in "${!SUMS[@]}"; do
  path="${AIT_DATA:-.}/$file"
  if [ ! -f "$path" ]; then echo "data: $path not here yet"; missing=1; continue; fi
  if [ "$(sha256sum "$path" | cut -d' ' -f1)" != "${SUMS[$file]}" ]; then
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
echo "sweep: $JOBS workers, $TIME_S s, device $DEVICE, runs in $RUNS"
setsid "$PYTHON" -m ait sweep sweeps/paper_regime_cifar100.yaml --jobs "$JOBS" --continue-on-error "${extra[@]}" \
  > "$OUT_DIR/sweep.log" 2>&1 &
group=$!
for _ in $(seq "$TIME_S"); do kill -0 "$group" 2>/dev/null || break; sleep 1; done
if kill -0 "$group" 2>/dev/null; then
  echo "time is up: SIGTERM to the sweep; each run saves a checkpoint and stops"
  kill -TERM -- "-$group"
  for _ in $(seq 60); do kill -0 "$group" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$group" 2>/dev/null
fi
wait "$group" 2>/dev/null

"$PYTHON" -m ait sweep sweeps/paper_regime_cifar100.yaml --status "${extra[@]}" \
  | tee "$OUT_DIR/status.txt" | tail -1
# Small files of every run; checkpoints only of the runs to resume (a finished run's is not needed back).
find "$RUNS" \( -name config.yaml -o -name env.json -o -name metrics.jsonl -o -name summary.json \) > "$OUT_DIR/files.txt"
for dir in "$RUNS"/*/seed*; do
  [ -f "$dir/checkpoint.pt" ] && [ ! -f "$dir/summary.json" ] && echo "$dir/checkpoint.pt" >> "$OUT_DIR/files.txt"
done
tar -czf "$OUT_DIR/paper_regime.tar.gz" -T "$OUT_DIR/files.txt"
echo "packed $(wc -l < "$OUT_DIR/files.txt") files into $OUT_DIR/paper_regime.tar.gz ($(du -h "$OUT_DIR/paper_regime.tar.gz" | cut -f1))"
