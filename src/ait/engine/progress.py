"""What a run shows while it trains: a progress bar on a terminal, one line per epoch in logs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch


class Progress:
    """``mode``: "bar" (tqdm, per step), "plain" (one line per epoch), "none", or "auto" (a bar when
    stderr is a terminal, plain otherwise)."""

    def __init__(self, mode: str, total_epochs: int, steps_per_epoch: int, name: str, stream=None):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "plain"
        self.mode = mode
        self.total_epochs = total_epochs
        self.steps_per_epoch = steps_per_epoch
        self.name = name
        self.bar = None
        # Reading a loss value forces a device sync; the bar refreshes its text every few steps only.
        self.refresh_every = 10

    def _print(self, text: str) -> None:
        if self.mode != "none":
            print(text, file=self.stream, flush=True)

    def start(
        self,
        run_dir: Path,
        data_info: dict[str, Any],
        precision: str,
        device: torch.device,
        resumed_at: tuple[int, int] | None = None,
    ) -> None:
        self._print(f"[{self.name}] run directory {run_dir}")
        if resumed_at is not None:
            self._print(f"[{self.name}] resuming at epoch {resumed_at[0] + 1}, step {resumed_at[1] + 1}")
        self._print(
            f"[{self.name}] {data_info.get('train_size')} training / {data_info.get('test_size')} test "
            f"images, {data_info.get('num_classes')} classes; {device}, {precision}; "
            f"{self.total_epochs} epoch{'s' * (self.total_epochs != 1)} x {self.steps_per_epoch} steps"
        )

    def begin_epoch(self, epoch: int, done: int = 0) -> None:
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.steps_per_epoch,
                initial=done,
                desc=f"epoch {epoch + 1}/{self.total_epochs}",
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
                unit="step",
            )

    def step(self, step: int, stats, position) -> None:
        """After each step; ``stats`` is None for a skipped step. ``position`` has the epoch's sums."""
        if self.bar is None:
            return
        self.bar.update(1)
        if stats is not None and step % self.refresh_every == 0:
            seconds = position.epoch_seconds
            self.bar.set_postfix(
                ce=f"{stats.ce.sum().item():.3f}",
                ai=f"{stats.consistency.item():.3f}",
                img_s=f"{sum(position.seen) / seconds if seconds else 0:.0f}",
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def end_epoch(self, record: dict[str, Any]) -> None:
        self.close()
        test = record.get("test")
        acc = ""
        if test:
            acc = " test top1 " + " ".join(f"{k}={v['top1']:.2f}" for k, v in test.items())
        ce = "/".join(f"{v:.3f}" for v in record["train_ce"])
        self._print(
            f"[{self.name}] epoch {record['epoch']}/{self.total_epochs} lr {record['lr']:.4g} ce {ce} "
            f"ai {record['train_consistency']:.4f}{acc} | {record['images_per_s'] or 0:.0f} img/s "
            f"{record['epoch_seconds']:.1f}s"
        )

    def finish(self, summary: dict[str, Any]) -> None:
        finals = ", ".join(f"{n['name']} {n['final_top1']:.2f}%" for n in summary["networks"])
        skipped = summary.get("nonfinite_skips") or 0
        note = f"; {skipped} non-finite step(s) were skipped (summary.json nonfinite_skips)" if skipped else ""
        self._print(
            f"[{self.name}] done in {summary['wall_seconds']:.0f}s: final top-1 {finals}; "
            f"summary {summary['run_dir']}/summary.json{note}"
        )
