"""collect's figures over runs of the JH double whose stand-in workload (tests/fakes/fakepython) writes what the real
one writes: the real peak of its pool's GPU, the real parameters and FLOPs of its model, its batch over its cards.

A small study, two models (a 4-expert MoE Latte-S/2, a dense Latte-L/2) on 1, 2 and 4 RTX 6000 Ada cards and on 4
H200s, each run logging its own steps/s (warm-up intervals slow, the steady ones jittered). Every figure collect
gives is checked against one computed here by hand from the run's own run.json and metrics.jsonl, and the fake's
files against the vendors' and the registry's published figures.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import harness
import pytest

MODELS = (("Latte-S/2", "4E2A"), ("Latte-L/2", None))
CARDS = (1, 2, 4)
LOCAL_BATCH = 2
STEPS = 100  # 10 log intervals of 10 steps, the first 2 warm-up
# steady steps/s per (model, pool, cards): per-GPU work is fixed, so more cards run slower steps
RATE = {("Latte-S/2", "gpu_6000ada", 1): 5.0, ("Latte-S/2", "gpu_6000ada", 2): 4.8,
        ("Latte-S/2", "gpu_6000ada", 4): 4.4, ("Latte-S/2", "gpu_h200", 4): 9.5,
        ("Latte-L/2", "gpu_6000ada", 1): 1.2, ("Latte-L/2", "gpu_6000ada", 2): 1.1,
        ("Latte-L/2", "gpu_6000ada", 4): 0.95, ("Latte-L/2", "gpu_h200", 4): 2.6}
WARMUP = (0.6, 0.9)
JITTER = (1.0, 1.02, 0.98, 1.01, 0.99, 1.0, 1.03, 0.97)  # 6% spread: steady, not flagged

# Published figures the fake must reproduce (not computed by the code under test).
PEAK_BF16 = {"gpu_6000ada": 364.2, "gpu_h200": 989.0}  # Ada whitepaper; H200 datasheet (dense, FP32 accumulate)
DEVICE = {"gpu_6000ada": "NVIDIA RTX 6000 Ada Generation", "gpu_h200": "NVIDIA H200"}
S2_4E2A_PARAMS = 75_140_000  # seed 001's "Latte-S/2 (75.14M)" (jobs/hw-4gpu.yaml)
L2_TRAIN_FLOPS = 7.711e12  # per sample, 16 frames at 256² (xdimo/train/flops.py's docstring)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The study run to its end through the JH double: the collected JSON and each run's own files."""
    site = harness.FakeSite(tmp_path_factory.mktemp("figures"), "jh")
    # room for every run at once (14 cards of 6000ada, 8 of H200): this test is about figures, not waves
    site.set_pool("gpu_6000ada", cards=16)
    site.set_pool("gpu_h200", cards=8)
    site.configure(queues={**harness.QUEUES, "gpu_6000ada": {"cards": 16}, "gpu_h200": {"cards": 8}})
    runs = [{"model": m, "moe": e, "pool": "gpu_6000ada", "gpus": n} for m, e in MODELS for n in CARDS]
    runs += [{"model": m, "moe": e, "pool": "gpu_h200", "gpus": 4} for m, e in MODELS]
    site.write_matrix("figs", {"defaults": {"parallel": "ddp", "local_batch": LOCAL_BATCH, "steps": STEPS,
                                            "precision": "bf16", "data": "synthetic"}, "runs": runs})
    for row in site.cli_json("plan", "figs")["runs"]:
        model = next(m for m, _ in MODELS if row["model"].startswith(m))  # plan names Latte-S/2-4E2A
        steady = [RATE[(model, row["pool"], row["gpus"])] * j for j in JITTER]
        (site.state / f"steps_per_s-{row['run_id']}").write_text(" ".join(map(str, (*WARMUP, *steady))))
    out = site.cli_json("submit", "figs", "--batch", "first")
    assert len(out["submitted"]) == 8 and all(s["starts_now"] for s in out["submitted"])
    harness.wait_for(lambda: all(site.finished(j) for j in site.jobs()), "the runs to end")
    assert {r["state"] for r in site.runs().values()} == {"DONE"}
    collected = site.cli_json("collect", "--table", "all", "--lang", "en")
    files = {rid: run_files(site.ws / "logs" / rid) for rid in site.runs()}
    return {"collected": collected, "files": files, "runs": {r["run_id"]: r for r in collected["runs"]}}


def run_files(folder: Path) -> dict[str, Any]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return {"info": json.loads((folder / "run.json").read_text()), "rows": rows}


# -- the figures, by hand, from a run's own files -------------------------------------------------------------


def samples_per_s(files: dict[str, Any]) -> float:
    """Steady samples/s: the median steps/s past the intervals the run marked warm-up, times its global batch."""
    steady = statistics.median(r["steps_per_s"] for r in files["rows"] if not r["warmup"])
    return steady * files["info"]["global_batch"]


def mfu(files: dict[str, Any]) -> float:
    info = files["info"]
    return samples_per_s(files) * info["flops_per_sample"] / info["world_size"] / 1e12 / info["peak_tflops"]


def one_card_run(study: dict[str, Any], rid: str) -> str:
    """The 1-card run of ``rid``'s model on its pool (table 1's baseline)."""
    mine = study["files"][rid]["info"]
    (base,) = [r for r, f in study["files"].items() if f["info"]["world_size"] == 1
               and (f["info"]["model"], f["info"]["moe"], f["info"]["pool"]) == (mine["model"], mine["moe"],
                                                                                  mine["pool"])]
    return base


def table_cells(study: dict[str, Any], kind: str) -> dict[str, list[list[str]]]:
    """run id -> the rows (cells) that show it, over every table of ``kind``."""
    out: dict[str, list[list[str]]] = {}
    for tb in study["collected"]["tables"]:
        if tb["kind"] == kind:
            for key, row in zip(tb["keys"], tb["rows"], strict=True):
                if key.get("run_id"):
                    out.setdefault(key["run_id"], []).append(row)
    return out


def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def millions(n: int) -> str:
    return f"{n / 1e6:.2f}M"


# -- the fake writes what the workload writes ---------------------------------------------------------------


def test_the_fake_writes_the_real_peak_params_and_flops(study: dict[str, Any]) -> None:
    assert len(study["files"]) == 8
    for files in study["files"].values():
        info = files["info"]
        assert info["peak_tflops"] == PEAK_BF16[info["pool"]] and info["gpu_name"] == DEVICE[info["pool"]]
        assert info["global_batch"] == LOCAL_BATCH * info["world_size"] * info["grad_accum"]
        if info["model"] == "Latte-S/2":
            assert info["params_total"] == S2_4E2A_PARAMS and info["params_active"] < S2_4E2A_PARAMS
        else:
            assert info["params_total"] == info["params_active"]  # dense
            assert info["flops_per_sample"] == pytest.approx(L2_TRAIN_FLOPS, rel=1e-3)
        assert [r["step"] for r in files["rows"]] == list(range(10, STEPS + 1, 10))
        assert [r["warmup"] for r in files["rows"]] == [True, True] + [False] * 8
        for r in files["rows"]:  # each row's throughput is its steps/s over the run's batch, FLOPs, cards, peak
            assert r["samples_per_s"] == pytest.approx(r["steps_per_s"] * info["global_batch"])
            per_gpu = r["samples_per_s"] * info["flops_per_sample"] / info["world_size"] / 1e12
            assert r["tflops_per_gpu"] == pytest.approx(per_gpu)
            assert r["mfu"] == pytest.approx(per_gpu / info["peak_tflops"])
            assert r["tokens_per_s"] == pytest.approx(r["samples_per_s"] * info["tokens_per_sample"])


# -- collect's figures -----------------------------------------------------------------------------------------


def test_collect_mfu_is_the_runs_own(study: dict[str, Any]) -> None:
    t1, t2, hw = (table_cells(study, k) for k in ("1", "2", "hw"))
    for rid, files in study["files"].items():
        run, want = study["runs"][rid], mfu(files)
        info = files["info"]
        assert run["samples_per_s"] == pytest.approx(samples_per_s(files))
        assert run["tokens_per_s"] == pytest.approx(samples_per_s(files) * info["tokens_per_sample"])
        per_gpu = samples_per_s(files) * info["flops_per_sample"] / info["world_size"] / 1e12
        assert run["achieved_tflops_per_gpu"] == pytest.approx(per_gpu)
        assert run["mfu"] == pytest.approx(want)
        assert (run["peak_tflops"], run["flops_per_sample"]) == (info["peak_tflops"], info["flops_per_sample"])
        assert not [n for n in run["notes"] if "peak" in n]  # run.json's own peak: no note that the table's stood in
        assert [row[5] for row in t1[rid]] == [pct(want)]
        assert {row[3] for row in t2[rid]} == {pct(want)}
    for rid, rows in hw.items():
        assert {row[5] for row in rows} == {pct(mfu(study["files"][rid]))}


def test_collect_speedup_and_efficiency_against_the_one_card_run(study: dict[str, Any]) -> None:
    t1 = table_cells(study, "1")
    for rid, files in study["files"].items():
        run, info = study["runs"][rid], files["info"]
        if info["pool"] == "gpu_h200":  # 4 cards only: no 1-card run to compare with
            assert run["speedup"] is None and run["efficiency"] is None
            continue
        base = one_card_run(study, rid)
        speedup = samples_per_s(files) / samples_per_s(study["files"][base])
        efficiency = speedup / info["world_size"]
        assert run["baseline_run_id"] == base
        assert (run["speedup"], run["efficiency"]) == (pytest.approx(speedup), pytest.approx(efficiency))
        (row,) = t1[rid]
        if rid != base:
            assert (row[7], row[8], row[9]) == (f"{speedup:.2f}", str(info["world_size"]), pct(efficiency))
    efficiencies = [study["runs"][r]["efficiency"] for r, f in study["files"].items()
                    if f["info"]["world_size"] > 1 and f["info"]["pool"] == "gpu_6000ada"]
    assert all(0.5 < e < 1.0 for e in efficiencies)  # not the constant 100% of a double that logs one rate


def test_collect_hardware_speedup_and_params(study: dict[str, Any]) -> None:
    hw = table_cells(study, "hw")
    for rid, rows in hw.items():
        info = study["files"][rid]["info"]
        (row,) = rows
        assert row[1] == millions(info["params_total"]) and row[3].startswith(f"{info['peak_tflops']:g} ")
        if info["pool"] == "gpu_h200":  # against the 4-card 6000ada run of its model and batch
            (base,) = [r for r, f in study["files"].items() if f["info"]["pool"] == "gpu_6000ada"
                       and f["info"]["world_size"] == 4 and f["info"]["model"] == info["model"]]
            want = samples_per_s(study["files"][rid]) / samples_per_s(study["files"][base])
            assert row[6] == f"{want:.2f}"
    assert len(hw) == 4  # two models, each on both hardware


def test_collect_params_are_the_runs_own(study: dict[str, Any]) -> None:
    t2 = table_cells(study, "2")
    for rid, files in study["files"].items():
        info, run = files["info"], study["runs"][rid]
        assert (run["params_total"], run["params_active"]) == (info["params_total"], info["params_active"])
        cells = {row[2] for row in t2[rid]}
        assert len(cells) == 1 and cells.pop().startswith(millions(info["params_total"]))
    s2 = next(f["info"] for f in study["files"].values() if f["info"]["moe"])
    moe_cell = next(row[2] for rid, rows in t2.items() for row in rows if study["files"][rid]["info"]["moe"])
    assert f"(active {millions(s2['params_active'])})" in moe_cell
