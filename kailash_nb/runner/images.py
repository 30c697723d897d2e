"""PNG outputs compared with a tolerance, by matplotlib's own image comparison (RMS of pixel differences).

nbval skips images, so a broken chart would pass. Images are compared where the picture is meant to be
stable: charts that say so in their output metadata (the kit's workflow graph:
``{"kailash_nb": {"chart": "graph", "stable": true}}``), and every other PNG of a cell marked
``# KAILASH_NB_COMPARE_IMAGES`` (tag ``kailash-nb-compare-images``) or of a run asked to compare all images,
except charts that say they vary (a timeline or a bench chart draws durations: ``"stable": false``).
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: RMS difference (0-255 scale, as matplotlib computes it) below which two images are the same picture.
DEFAULT_TOLERANCE = 2.0
METADATA_KEY = "kailash_nb"


@dataclass(slots=True, frozen=True)
class ImageDifference:
    """The ``number``-th PNG of a cell (from 1) differs: both sides and the difference, base64-encoded."""

    number: int
    stored: str | None
    new: str | None
    reason: str
    rms: float | None = None
    diff: str | None = None

    @property
    def what(self) -> str:
        return f"image {self.number} {self.reason}"


@dataclass(slots=True, frozen=True)
class _Png:
    data: str
    stable: bool | None  # what the chart says of itself: True compare, False never, None not said


def pngs(outputs: Iterable[Mapping[str, Any]]) -> list[_Png]:
    """The PNG images of a cell's outputs, in order, with what each says about its stability."""
    found = []
    for output in outputs:
        data = output.get("data") or {}
        png = data.get("image/png")
        if png is None:
            continue
        meta = (output.get("metadata") or {}).get(METADATA_KEY) or {}
        stable = meta.get("stable") if isinstance(meta, Mapping) else None
        found.append(_Png("".join(png) if isinstance(png, list) else str(png), stable))
    return found


def compare_images(stored: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], *, requested: bool,
                   tolerance: float = DEFAULT_TOLERANCE) -> list[ImageDifference]:
    """The differing images among those to compare (see the module docstring); ``requested`` is true when
    the cell or the command asks for every image."""
    before, after = pngs(stored), pngs(new)
    differences = []
    for index in range(max(len(before), len(after))):
        old = before[index] if index < len(before) else None
        now = after[index] if index < len(after) else None
        says = [png.stable for png in (old, now) if png is not None]
        if not (True in says or (requested and False not in says)):
            continue
        difference = _difference(index + 1, old.data if old else None, now.data if now else None, tolerance)
        if difference is not None:
            differences.append(difference)
    return differences


def _difference(number: int, stored: str | None, new: str | None, tolerance: float) -> ImageDifference | None:
    if stored is None or new is None:
        return ImageDifference(number, stored, new, "appeared" if stored is None else "is gone")
    if _clean(stored) == _clean(new):
        return None
    from matplotlib.testing.compare import compare_images as matplotlib_compare
    from matplotlib.testing.exceptions import ImageComparisonFailure

    with tempfile.TemporaryDirectory(prefix="kailash-nb-images-") as folder:
        expected, actual = Path(folder, "stored.png"), Path(folder, "new.png")
        expected.write_bytes(base64.b64decode(_clean(stored)))
        actual.write_bytes(base64.b64decode(_clean(new)))
        try:
            outcome = matplotlib_compare(str(expected), str(actual), tolerance, in_decorator=True)
        except ImageComparisonFailure:  # the sizes differ: there is no pixel-wise difference
            return ImageDifference(number, stored, new,
                                   f"changed size from {_size(expected)} to {_size(actual)} pixels")
        if outcome is None:
            return None
        diff_path = Path(str(outcome["diff"]))
        diff = base64.b64encode(diff_path.read_bytes()).decode("ascii") if diff_path.is_file() else None
        rms = float(outcome["rms"])
    return ImageDifference(number, stored, new, f"changed (RMS {rms:.2f} > tolerance {tolerance:g})", rms, diff)


def _clean(data: str) -> str:
    return "".join(data.split())


def _size(png: Path) -> str:
    """``WIDTHxHEIGHT`` from a PNG's header (its IHDR chunk)."""
    header = png.read_bytes()[16:24]
    return f"{int.from_bytes(header[:4], 'big')}x{int.from_bytes(header[4:], 'big')}"
