"""GPU name matching and peak/MFU arithmetic."""

import pytest

from xdimo.hardware import GPUS, achieved_tflops, match_gpu, mfu, peak_tflops


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA RTX 6000 Ada Generation", "rtx-6000-ada"),
        ("NVIDIA H200", "h200-sxm"),
        ("NVIDIA H200 NVL", "h200-nvl"),
        ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "rtx-pro-6000"),
        ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "rtx-pro-6000"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("RTX 6000 Ada", "rtx-6000-ada"),
        ("H200", "h200-sxm"),
        ("RTX PRO 6000", "rtx-pro-6000"),
        ("6000ada", "rtx-6000-ada"),
        ("pro6000", "rtx-pro-6000"),
        ("h100-sxm", "h100-sxm"),
    ],
)
def test_match_gpu(name, key):
    gpu = match_gpu(name)
    assert gpu is not None and gpu.key == key


@pytest.mark.parametrize("name", ["cpu", "", None, "NVIDIA RTX A6000", "Tesla V100-SXM2-16GB"])
def test_unknown_gpus_are_none(name):
    assert match_gpu(name) is None
    assert peak_tflops(name, "bf16") is None


def test_peaks_by_precision():
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert peak_tflops("NVIDIA H100 80GB HBM3", "tf32") == 494.7
    assert peak_tflops("RTX 6000 Ada", "fp32") == 91.1
    assert peak_tflops("RTX 6000 Ada", "bf16") == 364.2
    assert peak_tflops("RTX 6000 Ada", "fp16") == 364.2
    with pytest.raises(ValueError):
        peak_tflops("H200", "int8")


def test_every_entry_has_a_source_and_ordered_peaks():
    for gpu in GPUS:
        assert gpu.source
        assert gpu.bf16 >= gpu.tf32 >= gpu.fp32 * 0.99 or gpu.key == "rtx-4090"


def test_mfu_is_never_clamped():
    assert mfu(1200.0, 989.4) == pytest.approx(1200.0 / 989.4)
    assert mfu(10.0, None) is None


def test_achieved_tflops_per_gpu():
    # L/2 at 57.7 samples/s on one GPU is ~45% of an H100's bf16 peak.
    achieved = achieved_tflops(7.7106e12, 57.7, gpus=1)
    assert mfu(achieved, 989.4) == pytest.approx(0.4497, abs=1e-3)
    assert achieved_tflops(1e12, 8.0, gpus=4) == pytest.approx(2.0)
