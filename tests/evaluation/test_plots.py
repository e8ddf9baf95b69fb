"""Plots render whatever text the data brings."""

from __future__ import annotations

import pytest

from leptonic.evaluation import plots


@pytest.mark.parametrize("labels", [["$10_$20", "$20+"], ["a$^$b", "$5-$10"]])
def test_class_names_are_text_not_mathtext(labels: list[str]) -> None:
    # Class labels such as price bands hold dollar signs; matplotlib must not
    # parse them as TeX (it fails on these, and mangles "$5-$10" into math italics).
    png = plots.confusion_plot([[3, 1], [2, 4]], labels)
    assert png.startswith(b"\x89PNG")
    per_class = {name: {"f1": 0.5} for name in labels}
    assert plots.class_f1_plot(per_class).startswith(b"\x89PNG")
