"""GPU name matching and peak/MFU arithmetic."""

import pytest

from xdimo.hardware import GPUS, PRECISIONS, achieved_tflops, lacks_precision, match_gpu, mfu, peak_tflops


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
        ("Tesla V100-SXM2-32GB", "v100-sxm"),
        ("Tesla V100-SXM2-16GB", "v100-sxm-16gb"),
        ("Tesla V100-PCIE-16GB", "v100-pcie"),
        ("Tesla V100-PCIE-32GB", "v100-pcie"),
        ("Tesla V100S-PCIE-32GB", "v100s-pcie"),
        ("TeslaV100_SXM2_32GB", "v100-sxm"),  # bhosts -w -gpu's MODEL column
        ("V100", "v100-sxm"),  # clusters/lsf-example.yaml's gpu_v100 pool
        ("gpu_v100", "v100-sxm"),
        ("gpu_v100_16gb", "v100-sxm-16gb"),
    ],
)
def test_match_gpu(name, key):
    gpu = match_gpu(name)
    assert gpu is not None and gpu.key == key


@pytest.mark.parametrize("name", ["cpu", "", None, "NVIDIA RTX A6000", "Tesla P100-PCIE-16GB", "gpu_v1000"])
def test_unknown_gpus_are_none(name):
    assert match_gpu(name) is None
    assert peak_tflops(name, "bf16") is None
    assert not lacks_precision(name, "bf16")  # unknown, not known to lack it


def test_peaks_by_precision():
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert peak_tflops("NVIDIA H100 80GB HBM3", "tf32") == 494.7
    assert peak_tflops("RTX 6000 Ada", "fp32") == 91.1
    assert peak_tflops("RTX 6000 Ada", "bf16") == 364.2
    assert peak_tflops("RTX 6000 Ada", "fp16") == 364.2
    with pytest.raises(ValueError):
        peak_tflops("H200", "int8")


@pytest.mark.parametrize(("name", "fp16", "fp32"), [
    ("Tesla V100-SXM2-32GB", 125.0, 15.7), ("Tesla V100-SXM2-16GB", 125.0, 15.7),
    ("Tesla V100-PCIE-16GB", 112.0, 14.0), ("Tesla V100S-PCIE-32GB", 130.0, 16.4)])
def test_volta_has_fp16_tensor_cores_no_bf16_peak_and_runs_tf32_in_fp32(name, fp16, fp32):
    """The V100 datasheet's figures; Volta has no BF16 tensor cores: no peak, never a made-up one. Nor TF32 units:
    a tf32 run's matmuls run in FP32 there, so its peak is the FP32 one (the precision actually run)."""
    assert (peak_tflops(name, "fp16"), peak_tflops(name, "fp32"), peak_tflops(name, "tf32")) == (fp16, fp32, fp32)
    assert peak_tflops(name, "bf16") is None and lacks_precision(name, "bf16")
    assert not any(lacks_precision(name, p) for p in ("fp16", "tf32", "fp32"))
    assert mfu(10.0, peak_tflops(name, "bf16")) is None


def test_later_gpus_lack_no_precision():
    for gpu in GPUS:
        if not gpu.key.startswith("v100"):
            assert all(gpu.peak(p) for p in PRECISIONS) and not lacks_precision(gpu, "bf16")
    assert peak_tflops("A100", "fp16") == peak_tflops("A100", "bf16") == 312.0  # FP16 is the bf16 figure


def test_every_entry_has_a_source_and_ordered_peaks():
    for gpu in GPUS:
        assert gpu.source
        tensor = [x for x in (gpu.peak("fp16"), gpu.peak("tf32")) if x is not None]
        assert tensor == sorted(tensor, reverse=True) and min(tensor) >= gpu.fp32 * 0.99 or gpu.key == "rtx-4090"


@pytest.mark.parametrize(("precision", "has_estimate"), [("fp32", True), ("bf16", False), ("tf32", True)])
def test_a_v100_pool_estimates_only_what_it_has_a_peak_for(precision, has_estimate):
    """plan's time estimate on clusters/lsf-example.yaml's gpu_v100 pool (gpu: V100)."""
    from tests.conftest import REPO
    from xdimo.config import load_cluster
    from xdimo.plan import estimate_hours
    from xdimo.spec import RunSpec

    gpu = load_cluster(REPO / "clusters" / "lsf-example.yaml").pools["gpu_v100"].gpu_model
    spec = RunSpec(matrix="m", pool="gpu_v100", model="Latte-S/2", gpus=1, precision=precision)
    assert (estimate_hours(spec, gpu) is not None) is has_estimate


def test_mfu_is_never_clamped():
    assert mfu(1200.0, 989.4) == pytest.approx(1200.0 / 989.4)
    assert mfu(10.0, None) is None


def test_achieved_tflops_per_gpu():
    # L/2 at 57.7 samples/s on one GPU is ~45% of an H100's bf16 peak.
    achieved = achieved_tflops(7.7106e12, 57.7, gpus=1)
    assert mfu(achieved, 989.4) == pytest.approx(0.4497, abs=1e-3)
    assert achieved_tflops(1e12, 8.0, gpus=4) == pytest.approx(2.0)
