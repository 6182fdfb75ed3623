"""Issue 8's done-when check: seed 000 table 1-A from runs and from legacy logs, and through the CLI."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.collect.helpers import SEED_1A, FakeLedgerRun, write_legacy_pair, write_run_dir
from xdimo.cli import cli
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records, legacy_context, legacy_records
from xdimo.collect.tables import report
from xdimo.collect.write import formats
from xdimo.config import load_cluster
from xdimo.ledger import Ledger
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState

REPO = Path(__file__).resolve().parents[2]
JH = REPO / "clusters" / "xdimo-jh.yaml"


def seed_rows(text: str) -> dict[str, list[str]]:
    """'N×6000ada' -> the row's cells, from a markdown table 1."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[1].endswith("×6000ada"):
            rows[cells[1]] = cells
    return rows


def check_seed_1a(text: str) -> None:
    rows = seed_rows(text)
    one, two, four = rows["1×6000ada"], rows["2×6000ada"], rows["4×6000ada"]
    assert one[3:5] == ["1.46", "1.46"] and one[6] == "6849" and one[7] == "1.0(基准)" and one[9] == "100%"
    assert two[3:5] == ["1.25", "2.50"] and two[6] == "8000" and two[7:10] == ["1.71", "2", "85.6%"]
    assert four[3:5] == ["1.15", "4.60"] and four[6] == "8696" and four[7:10] == ["3.15", "4", "78.8%"]


def specs() -> list[RunSpec]:
    return [RunSpec(matrix="table1-scaling", pool="gpu_6000ada", model="Latte-L/2", moe="4E2A", gpus=g,
                    parallel="single" if g == 1 else "ddp", local_batch=1) for g, _ in SEED_1A]


def test_runs_give_seed_table_1a(tmp_path: Path) -> None:
    runs = []
    for spec, (g, rate) in zip(specs(), SEED_1A, strict=True):
        write_run_dir(tmp_path / spec.run_id, gpus=g, steps_per_s=rate)
        runs.append(FakeLedgerRun(spec=spec, log_dir=str(tmp_path / spec.run_id)))
    records = ledger_records(runs, tmp_path, Cache(None))
    check_seed_1a(formats.render(report.build_tables(records, "1"), records))


@pytest.mark.parametrize("official", [False, True])
def test_legacy_logs_give_seed_table_1a(tmp_path: Path, official: bool) -> None:
    for n, (g, rate) in enumerate(SEED_1A):
        write_legacy_pair(tmp_path / "output" / "logs", str(10060 + n), gpus=g, steps_per_s=rate, official=official)
    ctx = legacy_context([load_cluster(JH)])
    records = legacy_records([tmp_path / "output"], ctx, Cache(None))
    assert sorted(r.job_id for r in records) == ["10060", "10061", "10062"]
    text = formats.render(report.build_tables(records, "1"), records)
    check_seed_1a(text)
    if not official:  # the XDiMo lines carry the user's MFU: shown beside the corrected one
        assert "(日志 87.5%)" in seed_rows(text)["1×6000ada"][5]


def seed_workspace(tmp_path: Path) -> Path:
    """A workspace whose ledger holds seed 000's table 1-A runs (and an 8-card run without metrics)."""
    ws = tmp_path / "ws"
    (ws / "clusters").mkdir(parents=True)
    shutil.copy(JH, ws / "clusters" / "xdimo-jh.yaml")
    ledger = Ledger(ws / "queue" / "ledger.sqlite")
    for spec, (g, rate) in zip(specs() + [RunSpec(matrix="table1-scaling", pool="gpu_6000ada", model="Latte-L/2",
                                                   moe="4E2A", gpus=8, local_batch=1)],
                               [*SEED_1A, (8, None)], strict=True):
        log_dir = ws / "logs" / spec.run_id
        ledger.record_intent(spec, "xdimo-jh", "#!/bin/bash\n", str(log_dir))
        ledger.record_submitted(spec.run_id, str(100 + g))
        if rate is not None:
            write_run_dir(log_dir, gpus=g, steps_per_s=rate)
            ledger.update(spec.run_id, JobStatus(JobState.DONE, exit_code=0))
    ledger.close()
    return ws


def test_cli_collect_on_the_ledger(tmp_path: Path) -> None:
    ws = seed_workspace(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["--workdir", str(ws), "collect", "--no-refresh", "--plots", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    check_seed_1a(result.output)
    assert "| 8×6000ada | DDP 单机 | 待填 | 待填 | 待填 | 待填 | 待填 | 8 | 待填 |" in result.output
    assert (tmp_path / "p" / "speedup.png").read_bytes()[:4] == b"\x89PNG"
    en = runner.invoke(cli, ["--workdir", str(ws), "collect", "--no-refresh", "--lang", "en", "--format", "csv"])
    assert en.exit_code == 0 and "Speedup (by Samples/s)" in en.output and ",1.71,2,85.6%" in en.output


def test_no_loss_plots_leaves_the_loss_curves_out(tmp_path: Path) -> None:
    ws = seed_workspace(tmp_path)
    runner = CliRunner()
    for flags, folder in (([], "all"), (["--no-loss-plots"], "some")):
        args = ["--workdir", str(ws), "collect", "--no-refresh", "--plots", str(tmp_path / folder), *flags]
        assert runner.invoke(cli, args).exit_code == 0
    assert (tmp_path / "some" / "speedup.png").exists() and (tmp_path / "all" / "speedup.png").exists()
    assert list((tmp_path / "all").rglob("loss*")) and not list((tmp_path / "some").rglob("loss*"))


def test_recollect_uses_the_cache(tmp_path: Path) -> None:
    runs = []
    for spec, (g, rate) in zip(specs(), SEED_1A, strict=True):
        write_run_dir(tmp_path / spec.run_id, gpus=g, steps_per_s=rate)
        runs.append(FakeLedgerRun(spec=spec, log_dir=str(tmp_path / spec.run_id)))
    cache = Cache(tmp_path / "cache")
    first = ledger_records(runs, tmp_path, cache)
    again = Cache(tmp_path / "cache")
    second = ledger_records(runs, tmp_path, again)
    assert again.hits == 3 and again.misses == 0
    assert [r.to_dict() for r in first] == [r.to_dict() for r in second]
    # A run that wrote more intervals is parsed again, and its figure moves.
    time.sleep(0.01)
    write_run_dir(tmp_path / specs()[0].run_id, gpus=1, steps_per_s=2.0)
    third_cache = Cache(tmp_path / "cache")
    third = ledger_records(runs, tmp_path, third_cache)
    assert third_cache.misses == 1 and third[0].steady.steps_per_s == pytest.approx(2.0)
