"""Properties of GPU matching and peaks (xdimo/hardware.py): a table entry is found again however its name is
spelt (case, separators, vendor words around it), unknown names and every non-GPU string give None rather than a
made-up peak, and the peaks order as the hardware does (bf16 >= tf32 >= fp32 where they exist)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.hardware import GPUS, PRECISIONS, GpuSpec, lacks_precision, match_gpu, peak_tflops

FAST = settings(max_examples=200, deadline=None)
SEPARATOR = st.sampled_from([" ", "-", "_", "  ", " - "])
CASE = st.sampled_from([str.upper, str.lower, lambda s: s])


def spelt(name: str, sep: str, case) -> str:
    return case(sep.join(name.split()))


@FAST
@given(st.sampled_from(GPUS), SEPARATOR, CASE, st.sampled_from(["", "NVIDIA ", "nvidia_"]),
       st.sampled_from(["", " 80GB", " Generation", "-SXM"]))
def test_a_table_name_is_found_however_it_is_spelt(gpu: GpuSpec, sep: str, case, vendor: str, tail: str) -> None:
    # "V100 SXM2 16GB" + " 80GB" would name two memory sizes: the tail only where the name has none
    tail = tail if not re.search(r"\d+GB", gpu.name) else ""
    assert match_gpu(vendor + spelt(gpu.name, sep, case) + tail) == gpu
    assert match_gpu(gpu.key) == gpu


@FAST
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_text_matches_a_table_entry_or_none(text: str) -> None:
    got = match_gpu(text)
    assert got is None or got in GPUS
    for p in PRECISIONS:
        peak = peak_tflops(text, p)
        assert peak == (got.peak(p) if got else None)


@FAST
@given(st.from_regex(r"[a-z]{0,6}( ?[0-9]{0,3})?", fullmatch=True).filter(
    lambda s: not re.search(r"h[12]00|a100|v100|4090|6000", s.replace(" ", ""))))
def test_a_name_without_a_known_model_number_has_no_peak(text: str) -> None:
    assert match_gpu(text) is None
    assert all(peak_tflops(text, p) is None and not lacks_precision(text, p) for p in PRECISIONS)


@pytest.mark.parametrize("gpu", GPUS, ids=lambda g: g.key)
def test_peaks_are_positive_and_ordered_as_the_units_are(gpu: GpuSpec) -> None:
    peaks = {p: peak_tflops(gpu, p) for p in PRECISIONS}
    assert peak_tflops(gpu.name, "fp32") == peaks["fp32"]
    assert all(v is None or v > 0 for v in peaks.values())
    assert peaks["tf32"] >= peaks["fp32"]
    if peaks["bf16"] is not None:
        assert peaks["bf16"] >= peaks["tf32"]
        assert peaks["fp16"] is not None and peaks["fp16"] >= peaks["bf16"]  # fp16 runs at least at bf16's rate
    assert peaks["bf16"] is None or not lacks_precision(gpu, "bf16")
    assert (peaks["bf16"] is None) == lacks_precision(gpu, "bf16")


@FAST
@given(st.sampled_from(GPUS), st.text(max_size=8).filter(lambda p: p not in PRECISIONS))
def test_an_unknown_precision_is_a_value_error_not_a_peak(gpu: GpuSpec, precision: str) -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        peak_tflops(gpu, precision)
    assert peak_tflops("no such gpu", precision) is None  # unknown GPU: None before the precision is looked at
