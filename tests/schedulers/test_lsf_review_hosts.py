"""Review of the JH/LSF backend's host view: a pool cycle asks `jhosts -w` ONCE (never `jhosts attrib` per host:
scheduler-formats.md, "ONE command per cycle"), and a host closed by its own work (closed_Full, or a bare
`closed` with every slot in use) is busy, not down."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from xdimo.config import Cluster, Pool
from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import HostRow
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf import LSFScheduler
from xdimo.schedulers.runner import CommandResult

FIX = Path(__file__).parent / "fixtures"
O_HEADER = "JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME"
N_HOSTS = 64


def wide(statuses: dict[str, tuple[str, int]]) -> str:
    """A `jhosts -w` table: host -> (STATUS, NJOBS), 64 slots each."""
    head = "HOST_NAME          STATUS       JL/U    MAX  NJOBS    RUN  SSUSP  USUSP    RSV\n"
    return head + "".join(f"{h:<18} {st:<12} -      64 {n:>6} {n:>6}      0      0      0\n"
                          for h, (st, n) in statuses.items())


HOSTS = {f"gpu{i:02d}": ("ok", 0) for i in range(N_HOSTS)}


def counted(kind: type, tmp_path: Path, jobs: str, hosts: str, monkeypatch: pytest.MonkeyPatch,
            pools: dict[str, Pool] | None = None) -> tuple[JHScheduler | LSFScheduler, list[list[str]]]:
    """A backend whose commands answer by their name (jobs table, `-w` hosts table, GPU tables), every argv
    recorded."""
    pools = pools or {"gpu_6000ada": Pool("gpu_6000ada", "RTX 6000 Ada", 8 * N_HOSTS, cards_per_node=8,
                                          hosts=("gpu*",))}
    cluster = Cluster(name="c", scheduler=kind.kind, pools=pools, options={"retries": 0})
    be = kind(cluster, tmp_path)
    calls: list[list[str]] = []

    def run(argv: list[str], stdin: str | None = None, retries: int | None = None,
            env: dict[str, str] | None = None) -> CommandResult:
        calls.append(argv)
        if argv[0] in ("jjobs", "bjobs"):
            return CommandResult(tuple(argv), 0, jobs, "")
        if argv[1:] in (["-w"], ["-X", "-w"]):  # jhosts -w / bhosts -X -w
            return CommandResult(tuple(argv), 0, hosts, "")
        if argv[1:3] == ["attrib", "-w"]:
            return CommandResult(tuple(argv), 0, (FIX / "jh_attrib_w.txt").read_text(), "")
        if argv[1:3] == ["attrib", "-l"]:
            return CommandResult(tuple(argv), 0, (FIX / "jh_attrib_l.txt").read_text(), "")
        return CommandResult(tuple(argv), 0, (FIX / "lsf_bhosts_gpu.txt").read_text(), "")

    be.run = run  # type: ignore[method-assign]
    be.jobs_command_found = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("xdimo.schedulers.lsf_family.shutil.which", lambda name: f"/usr/bin/{name}")
    return be, calls


# -- 2. one hosts call per cycle ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [JHScheduler, LSFScheduler])
def test_a_pools_cycle_with_listed_hosts_asks_the_hosts_command_once(kind: type, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = f"{O_HEADER}\n1|bob|RUN|gpu_6000ada|32*gpu01|r\n"
    be, calls = counted(kind, tmp_path, jobs, wide(HOSTS), monkeypatch)
    # watcher cycles are 20 s to 3 min apart: none reuses the rows of the one before
    monkeypatch.setattr("xdimo.schedulers.lsf_family.HOST_ROWS_REUSE_S", 0.0)
    for _ in range(3):
        (pool,) = be.pools()
        assert (pool.used, pool.down) == (4, 0) and pool.source.endswith(f"-w: {N_HOSTS} hosts up")
    hosts_cmd = "jhosts" if kind is JHScheduler else "bhosts"
    assert [c[0] for c in calls] == [be.commands.jobs[0], hosts_cmd] * 3
    assert all(c[1:] == list(be.hosts_args) for c in calls if c[0] == hosts_cmd)  # no `attrib`, no `-gpu`


def test_a_header_only_jobs_answer_and_the_pool_health_share_one_hosts_call(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    be, calls = counted(JHScheduler, tmp_path, f"{O_HEADER}\n", wide(HOSTS), monkeypatch)
    (pool,) = be.pools()
    assert pool.used == 0 and "no job: jhosts -w shows none" in pool.source
    assert calls[1:] == [["jhosts", "-w"]]


def test_hosts_nodes_still_reads_gpu_models_from_the_rows_pools_fetched(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    be, calls = counted(JHScheduler, tmp_path, f"{O_HEADER}\n1|bob|RUN|gpu_6000ada|32*gpu01|r\n",
                        wide({"gpu13": ("ok", 0)}), monkeypatch,
                        pools={"gpu_6000ada": Pool("gpu_6000ada", "RTX 6000 Ada", 8, hosts=("gpu13",))})
    be.pools()
    rows = be.hosts()  # `hosts --nodes`: the `-w` rows again (not asked twice) plus the GPU tables
    assert [c[1:] for c in calls if c[0] == "jhosts"] == [["-w"], ["attrib", "-w"], ["attrib", "-l", "gpu13"]]
    assert rows[0].name == "gpu13" and rows[0].gpu_models


# -- 5. busy is not down ----------------------------------------------------------------------------------------

ROWS = P.parse_hosts((FIX / "jh_jhosts_w_closed.txt").read_text())


@pytest.mark.parametrize(("host", "busy", "down"), [
    ("gpu6k01", True, False),  # bare `closed`, NJOBS = MAX: every slot in use
    ("gpu6k02", False, True),  # bare `closed` with free slots: no reason given
    ("gpu6k03", False, False),
    ("gpu6k04", True, False),  # closed_Full
])
def test_a_bare_closed_host_with_every_slot_used_is_busy(host: str, busy: bool, down: bool) -> None:
    (row,) = [r for r in ROWS if r.name == host]
    assert (P.host_busy(row), P.host_down(row)) == (busy, down)


def test_the_named_statuses_keep_their_meaning() -> None:
    rows = P.parse_hosts((FIX / "lsf_bhosts_w_down.txt").read_text())
    named_up = {"ok", "closed_full", "closed_excl", "closed_busy"}  # LSF's bhosts manual
    assert all(P.host_down(r) is (r.status.lower() not in named_up) for r in rows)
    assert {r.status for r in rows if P.host_busy(r)} == {"closed_Full", "closed_Excl", "closed_Busy"}
    assert P.host_down(HostRow("h", "closed"))  # a bare `closed` with no slot counts: reason unknown, down


def test_a_full_host_is_described_as_busy_not_down() -> None:
    health = P.pool_health(["gpu6k01"], 8, 8, ROWS, {"gpu6k01": 8})
    assert (health.down_cards, health.down_hosts) == (0, ())
    assert health.describe() == "1 host up, busy: gpu6k01 (closed, every slot in use)"
    health = P.pool_health(["gpu6k0[134]"], 8, 24, ROWS)
    assert health.describe() == "3 hosts up, 2 busy: gpu6k01 (closed, every slot in use), gpu6k04 (closed_Full)"


def test_a_closed_host_with_free_slots_is_still_down() -> None:
    health = P.pool_health(["gpu6k0*"], 8, 32, ROWS)
    assert (health.down_hosts, health.down_cards) == (("gpu6k02",), 8)
    assert health.describe() == "1 host down: gpu6k02 (closed)"


def test_plan_live_source_for_a_full_host_says_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = f"{O_HEADER}\n1001|root|RUN|gpu_6000ada|64*gpu6k01|r\n"
    be, _ = counted(JHScheduler, tmp_path, jobs, (FIX / "jh_jhosts_w_closed.txt").read_text(), monkeypatch,
                    pools={"gpu_6000ada": Pool("gpu_6000ada", "RTX 6000 Ada", 8, hosts=("gpu6k01",))})
    be.cluster = replace(be.cluster, cpu_per_gpu=8)
    (pool,) = be.pools()
    assert (pool.used, pool.down, pool.down_hosts, pool.free) == (8, 0, (), 0)
    assert pool.source.endswith("jhosts -w: 1 host up, busy: gpu6k01 (closed, every slot in use)")
    assert "down" not in pool.source
