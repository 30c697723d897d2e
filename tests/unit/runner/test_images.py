"""PNG outputs compared with a tolerance where the picture is meant to be stable."""

from __future__ import annotations

import base64
import io

import pytest
from matplotlib.figure import Figure

from kailash_nb.runner.images import compare_images


def png(width: float = 3.0, color: str = "C0", shift: float = 0.0) -> str:
    figure = Figure(figsize=(width, 2))
    figure.add_subplot().plot([1, 2, 3], [1, 3 + shift, 2], color=color)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=50, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def chart(data: str, stable: bool | None) -> list[dict]:
    metadata = {} if stable is None else {"kailash_nb": {"chart": "graph", "stable": stable}}
    return [{"output_type": "display_data", "data": {"image/png": data, "text/plain": "<Chart>"},
             "metadata": metadata}]


def test_a_stable_chart_that_changed_is_a_difference_with_a_difference_image() -> None:
    [difference] = compare_images(chart(png(), True), chart(png(color="red"), True), requested=False)
    assert difference.number == 1
    assert difference.rms is not None and difference.rms > 2
    assert difference.what.startswith("image 1 changed (RMS ")
    assert base64.b64decode(difference.diff or "")[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_picture_is_no_difference() -> None:
    assert compare_images(chart(png(), True), chart(png(), True), requested=False) == []


def test_a_small_difference_within_the_tolerance_passes() -> None:
    stored, new = chart(png(), True), chart(png(shift=0.02), True)
    [difference] = compare_images(stored, new, requested=False, tolerance=0)
    assert compare_images(stored, new, requested=False, tolerance=difference.rms or 0) == []


def test_a_picture_of_another_size_says_both_sizes() -> None:
    [difference] = compare_images(chart(png(3), True), chart(png(4), True), requested=False)
    assert difference.what == "image 1 changed size from 150x100 to 200x100 pixels"


@pytest.mark.parametrize(("stable", "requested", "compared"), [
    (None, False, False),   # a user's figure, not asked for
    (None, True, True),     # a user's figure in a cell (or run) that asks for images
    (False, True, False),   # a chart of durations is never compared
    (True, False, True),    # the workflow graph always is
])
def test_which_images_are_compared(stable: bool | None, requested: bool, compared: bool) -> None:
    differences = compare_images(chart(png(), stable), chart(png(color="red"), stable), requested=requested)
    assert bool(differences) is compared


def test_an_image_that_appears_or_goes_is_a_difference() -> None:
    [appeared] = compare_images([], chart(png(), True), requested=False)
    assert appeared.what == "image 1 appeared" and appeared.stored is None
    [gone] = compare_images(chart(png(), True), [], requested=False)
    assert gone.what == "image 1 is gone" and gone.new is None
