"""`collect --fill` of the user's own seed 001 sheet from runs of the JH double whose stand-in workload
(tests/fakes/fakepython) writes the real parameters, FLOPs and peak: the sheet's rows take the runs of the model they
name (Latte-S/2 with 4 experts, 75.14M), their cells the figures computed here by hand from the run's own run.json and
metrics.jsonl; a dense Latte-S/2 (32.59M) is not that model and fills nothing.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import harness
import pytest

SEED_001 = Path("/work/shared/seeds/001_1bf78f043d4186b3.txt")
# steady steps/s per (pool, per-GPU batch) of seed 001's six runs
RATE = {("gpu_6000ada", 1): 3.0, ("gpu_6000ada", 2): 2.6, ("gpu_h200", 1): 6.0, ("gpu_h200", 4): 4.1,
        ("gpu_pro6000", 1): 4.0, ("gpu_pro6000", 2): 3.3}
WARMUP = (0.5, 0.8)
JITTER = (1.0, 1.02, 0.98, 1.01, 0.99, 1.0, 1.03, 0.97)
SHEET_BATCH = {"gpu_6000ada": 2, "gpu_h200": 4, "gpu_pro6000": 2}  # the bs the sheet's text names per hardware

pytestmark = pytest.mark.skipif(not SEED_001.exists(), reason="the user's seed notes are not on this machine")


def roomy_site(root: Path) -> harness.FakeSite:
    """The user's JH site with room for every 4-card run at once: this test is about figures, not waves."""
    site = harness.FakeSite(root, "jh")
    cards = {"gpu_6000ada": 16, "gpu_h200": 8, "gpu_pro6000": 9}
    for pool, n in cards.items():
        site.set_pool(pool, cards=n)
    site.configure(queues={**harness.QUEUES, **{p: {**harness.QUEUES[p], "cards": n} for p, n in cards.items()}})
    return site


def run_and_fill(site: harness.FakeSite, matrix: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Every run of ``matrix`` to its end, then seed 001 filled from them: (collect's JSON, run id -> own files)."""
    out = site.cli_json("submit", matrix, "--batch", "first")
    assert out["submitted"] and all(s["starts_now"] for s in out["submitted"])
    harness.wait_for(lambda: all(site.finished(j) for j in site.jobs()), "the runs to end")
    assert {r["state"] for r in site.runs().values()} == {"DONE"}
    sheet = site.ws / "001.md"
    sheet.write_bytes(SEED_001.read_bytes())
    collected = site.cli_json("collect", "--fill", str(sheet))
    files = {}
    for rid in site.runs():
        folder = site.ws / "logs" / rid
        files[rid] = {"info": json.loads((folder / "run.json").read_text()),
                      "rows": [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]}
    return collected, files


def samples_per_s(files: dict[str, Any]) -> float:
    steady = statistics.median(r["steps_per_s"] for r in files["rows"] if not r["warmup"])
    return steady * files["info"]["global_batch"]


@pytest.fixture(scope="module")
def seed_001(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    site = roomy_site(tmp_path_factory.mktemp("seed001"))
    for row in site.cli_json("plan", "jobs/hw-4gpu.yaml")["runs"]:
        steady = [RATE[(row["pool"], row["local_batch"])] * j for j in JITTER]
        (site.state / f"steps_per_s-{row['run_id']}").write_text(" ".join(map(str, (*WARMUP, *steady))))
    return run_and_fill(site, "jobs/hw-4gpu.yaml")


def test_seed_001_rows_take_the_named_model_and_batch(seed_001: tuple[dict[str, Any], dict]) -> None:
    collected, files = seed_001
    fill = collected["fill"]
    used = {files[f["run_id"]]["info"]["pool"]: files[f["run_id"]]["info"] for f in fill["filled"]}
    assert {pool: info["local_batch"] for pool, info in used.items()} == SHEET_BATCH
    assert all(info["params_total"] == 75_140_000 for info in used.values())  # the sheet's 75.14M, to the parameter
    assert not [line for line in fill["skipped"] if "M wanted" in line]


def test_seed_001_cells_are_the_runs_own_figures(seed_001: tuple[dict[str, Any], dict]) -> None:
    collected, files = seed_001
    cells = {(f["line"], f["column"]): f for f in collected["fill"]["filled"]}
    base = next(rid for rid, f in files.items() if (f["info"]["pool"], f["info"]["local_batch"]) == ("gpu_6000ada", 2))
    for (_, column), cell in cells.items():
        own = files[cell["run_id"]]
        info, samples = own["info"], samples_per_s(own)
        if column.startswith("MFU"):
            mfu = samples * info["flops_per_sample"] / info["world_size"] / 1e12 / info["peak_tflops"]
            assert cell["new"] == f"{mfu * 100:.1f}%"
        elif column.startswith("token"):
            tokens = samples * info["tokens_per_sample"]
            assert cell["new"] == f"{samples:.2f} samples/s ({tokens:,.0f} tokens/s)"
        elif column == "加速比":  # against the 6000ada run at the same batch
            assert cell["new"] == f"{samples / samples_per_s(files[base]):.2f}"
    filled_columns = {column for _, column in cells}
    assert {"MFU(浮点利用率)", "token/样本吞吐量", "加速比"} <= filled_columns


def test_a_dense_s2_fills_none_of_seed_001s_rows(tmp_path: Path) -> None:
    site = roomy_site(tmp_path)
    site.write_matrix("dense", {"defaults": {"model": "Latte-S/2", "gpus": 4, "parallel": "ddp", "steps": 100,
                                             "local_batch": 2, "precision": "bf16", "data": "synthetic"},
                                "runs": [{"pool": p} for p in SHEET_BATCH]})
    collected, files = run_and_fill(site, "dense")
    assert {f["info"]["params_total"] for f in files.values()} == {32_585_120}  # dense S/2, as the registry counts
    fill = collected["fill"]
    assert fill["filled"] == []
    wanted = [line for line in fill["skipped"] if "32.59M" in line and "75.14M" in line]
    assert len(wanted) == 3  # one per hardware row, each naming the count it wants
