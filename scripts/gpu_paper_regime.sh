#!/usr/bin/env bash
# The paper's regime (sweeps/paper_regime_cifar100.yaml) on a lent GPU, resumable across loans:
# scripts/gpu_sweep.sh with that sweep, its data and runs/gpu160. On the GPU machine:
#
#   call 1, carrying data/cifar100/train-20000.npz (56 MB; a call carries 64 MiB): bash scripts/gpu_paper_regime.sh --check
#   call 2, carrying data/cifar100/test.npz and, from an earlier loan, runs/gpu160/:
#       bash scripts/gpu_paper_regime.sh --time-s 480 --jobs 8
#
# $OUT gets sweep.log, status.txt and sweep.tar.gz (unpack it in the repo root). Tried on the CPU
# with: --device cpu --smoke.
exec bash "$(dirname "$0")/gpu_sweep.sh" sweeps/paper_regime_cifar100.yaml --runs runs/gpu160 \
  --need data/cifar100/train-20000.npz --need data/cifar100/test.npz "$@"
