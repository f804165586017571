"""What every image decoder of ait refuses: pixels wider than 8 bits, which ``convert`` would clip."""

from __future__ import annotations

from ait.data.errors import DataError

# Pillow's modes of 32-bit integer, 16-bit integer (I;16, I;16B, ...) and float pixels.
WIDE_MODE_PREFIXES = ("I", "F")


def check_eight_bit(mode: str, where: str) -> None:
    """DataError naming ``where`` for a Pillow ``mode`` whose pixels do not fit in uint8: converting
    them to 8 bits would clip (99% of a 16-bit photo's pixels become 255); say so rather than guess a scale."""
    if mode.startswith(WIDE_MODE_PREFIXES):
        raise DataError(
            f"{where} has {mode!r} pixels (16-bit or float); ait takes 8-bit images: convert them with a "
            "scale of your choice first"
        )
