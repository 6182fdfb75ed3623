"""A GPU name is matched to its own part or to none (audit 4, finding 3): a word that names another part ("RTX
4090 D", "Max-Q", "Laptop", a MIG slice) makes the name unknown instead of giving a near-match's peak, and the
PCIe word picks the PCIe part wherever it stands in the name."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.hardware import match_gpu, peak_tflops
from xdimo.plan import estimate_note
from xdimo.spec import RunSpec

FAST = settings(max_examples=300, deadline=None)

# Names as nvidia-smi / torch.cuda.get_device_name() print them, and as pools are written, with their parts.
KNOWN = {
    "NVIDIA H100 80GB HBM3": "h100-sxm", "NVIDIA H100 PCIe": "h100-pcie", "NVIDIA H100 NVL": "h100-nvl",
    "NVIDIA H200": "h200-sxm", "NVIDIA H200 NVL": "h200-nvl", "NVIDIA A100-SXM4-80GB": "a100",
    "NVIDIA A100 80GB PCIe": "a100", "NVIDIA GeForce RTX 4090": "rtx-4090",
    "NVIDIA RTX 6000 Ada Generation": "rtx-6000-ada", "NVIDIA RTX PRO 6000 Blackwell Workstation Edition":
    "rtx-pro-6000", "Tesla V100-SXM2-32GB": "v100-sxm", "Tesla V100-SXM2-16GB": "v100-sxm-16gb",
    "Tesla V100-PCIE-16GB": "v100-pcie", "Tesla V100S-PCIE-32GB": "v100s-pcie", "gpu_6000ada": "rtx-6000-ada",
    "gpu_h200": "h200-sxm", "gpu_pro6000": "rtx-pro-6000", "gpu_v100_16gb": "v100-sxm-16gb", "A100 80GB": "a100",
}
# Words that name another part of a known model: the China-market 4090 D, the Max-Q (lower-clocked) RTX PRO
# 6000, laptop and Ti/Super parts, a MIG slice, the "S" and "X" variants.
OTHER_PART = ["D", "Ti", "Super", "Max-Q", "MaxQ", "Laptop", "Mobile", "MIG 1g.10gb", "S", "X", "Lite", "CNX"]
# Words that together name a model stay together when a word is put between the name's words.
MODELS = ("RTX PRO 6000", "RTX 6000 Ada", "RTX 4090")


def words_of(name: str) -> list[str]:
    for model in MODELS:
        name = name.replace(model, model.replace(" ", "-"))
    return name.split(" ")


@pytest.mark.parametrize("name", [
    "NVIDIA GeForce RTX 4090 D", "RTX 4090 D", "gpu_4090_d", "RTX 4090D",
    "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "RTX PRO 6000 Max-Q",
    "NVIDIA GeForce RTX 4090 Laptop GPU", "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
    "H200 PCIe",  # the H200's PCIe card is the H200 NVL: a name that says neither is not guessed
    "H100/H200", "gpu_h100_h200",  # two models: no one peak
])
def test_a_name_that_says_another_part_is_unknown(name: str) -> None:
    assert match_gpu(name) is None
    assert peak_tflops(name, "bf16") is None


def test_plan_says_a_4090_d_pool_has_no_known_peak_instead_of_the_4090s() -> None:
    spec = RunSpec(matrix="m", pool="gpu_4090d", model="Latte-S/2", gpus=1, precision="bf16")
    assert estimate_note(spec, "RTX 4090 D") == "no known peak for GPU 'RTX 4090 D'"
    assert estimate_note(spec, "RTX 4090") is None


@pytest.mark.parametrize("name", [
    "H100 80GB PCIe", "NVIDIA H100 80GB PCIe", "NVIDIA H100 PCIe", "PCIe H100", "gpu_h100_pcie", "h100pcie",
    "H100 PCI-E 80GB", "H100 80GB PCI Express",
])
def test_pcie_anywhere_in_an_h100_name_is_the_pcie_part(name: str) -> None:
    assert match_gpu(name).key == "h100-pcie"
    assert peak_tflops(name, "bf16") == 756.0  # not the SXM's 989.4


@FAST
@given(st.sampled_from(sorted(KNOWN)), st.sampled_from(OTHER_PART) | st.from_regex(r"q[a-z]{0,5}", fullmatch=True),
       st.integers(0, 8), st.sampled_from([" ", "-", "_"]))
def test_a_known_name_with_a_word_of_another_part_anywhere_is_unknown(name: str, word: str, at: int,
                                                                       sep: str) -> None:
    words = words_of(name)
    words.insert(at % (len(words) + 1), word)
    assert match_gpu(sep.join(words)) is None


@FAST
@given(st.sampled_from(sorted(KNOWN)), st.integers(0, 8), st.sampled_from(["PCIe", "PCIE", "pci-e"]))
def test_the_pcie_word_anywhere_picks_the_pcie_part_or_none(name: str, at: int, pcie: str) -> None:
    """H100 and V100 names with PCIe anywhere are their PCIe parts; PCIe cards (and the A100, whose PCIe part has
    the SXM's peaks) keep theirs; a name with a part that has no PCIe form (H200, H100 NVL) is unknown."""
    words = words_of(name)
    words.insert(at % (len(words) + 1), pcie)
    key = KNOWN[name]
    expected = {"h100-sxm": "h100-pcie", "v100-sxm": "v100-pcie", "v100-sxm-16gb": "v100-pcie",
                "h200-sxm": None, "h200-nvl": None, "h100-nvl": None}.get(key, key)
    got = match_gpu(" ".join(words))
    assert (got.key if got else None) == expected


@pytest.mark.parametrize(("name", "key"), sorted(KNOWN.items()))
def test_the_names_the_tools_print_keep_their_parts(name: str, key: str) -> None:
    assert match_gpu(name).key == key
