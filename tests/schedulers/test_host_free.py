"""PoolStatus.host_free: the free cards on each up host of a pool, from what pools() already asks (JH/LSF: the
jobs listing's EXEC_HOST and the `-w` hosts table; Slurm: `sinfo -N`'s Gres and GresUsed). None where the
pool's hosts are unknown, so the planner plans on the pool's total as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from xdimo.config import Cluster, Pool
from xdimo.schedulers import slurm
from xdimo.schedulers.base import PoolStatus
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf import LSFScheduler
from xdimo.schedulers.runner import CommandResult

FIX = Path(__file__).parent / "fixtures"
O_HEADER = "JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME"
HOSTS_HEAD = "HOST_NAME          STATUS       JL/U    MAX  NJOBS    RUN  SSUSP  USUSP    RSV\n"


def hosts_table(statuses: dict[str, tuple[str, int]]) -> str:
    """A `jhosts -w` / `bhosts -X -w` table: host -> (STATUS, NJOBS), 64 slots each."""
    return HOSTS_HEAD + "".join(f"{h:<18} {st:<12} -      64 {n:>6} {n:>6}      0      0      0\n"
                                for h, (st, n) in statuses.items())


A100 = Pool("gpu_a100", "A100", 40, taken=1, cards_per_node=8, queue="a100", hosts=("gpu-a1-*",))
BARE = Pool("gpu_bare", "A100", 16, cards_per_node=8)  # no `hosts:`: unknown


def backend(kind: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str, hosts: str | None,
            ) -> JHScheduler | LSFScheduler:
    """A backend whose jobs and hosts commands answer the given tables (hosts None: the hosts command fails)."""
    cluster = Cluster(name="c", scheduler=kind.kind, pools={"gpu_a100": A100, "gpu_bare": BARE},
                      options={"retries": 0})
    be = kind(cluster, tmp_path)

    def run(argv: list[str], stdin: str | None = None, retries: int | None = None,
            env: dict[str, str] | None = None) -> CommandResult:
        if argv[0] in ("jjobs", "bjobs"):
            return CommandResult(tuple(argv), 0, jobs, "")
        if hosts is None:
            return CommandResult(tuple(argv), 255, "", f"{argv[0]}: failed to get host information")
        return CommandResult(tuple(argv), 0, hosts, "")

    be.run = run  # type: ignore[method-assign]
    be.jobs_command_found = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("xdimo.schedulers.lsf_family.shutil.which", lambda name: f"/usr/bin/{name}")
    return be


# 6 GPUs (48 slots) on -01; another queue's 2 GPUs on -02 (named in upper case by the listing); -03 full and
# closed by its work; -04 down; -05 idle
JOBS = (f"{O_HEADER}\n101|bob|RUN|a100|48*gpu-a1-01|r1\n102|ann|RUN|other|16*GPU-A1-02|r2\n"
        "103|bob|RUN|a100|64*gpu-a1-03|r3\n104|me|PEND|a100|-|r4\n")
HOSTS = hosts_table({"gpu-a1-01": ("ok", 1), "gpu-a1-02": ("ok", 1), "gpu-a1-03": ("closed_Full", 1),
                     "gpu-a1-04": ("unavail", 0), "gpu-a1-05": ("ok", 0), "gpu-b-01": ("ok", 0)})


@pytest.mark.parametrize("kind", [JHScheduler, LSFScheduler])
def test_free_cards_per_host_from_exec_host_and_the_hosts_table(kind: type, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pools = {p.name: p for p in backend(kind, tmp_path, monkeypatch, JOBS, HOSTS).pools()}
    a100 = pools["gpu_a100"]
    assert (a100.used, a100.down, a100.free) == (14, 8, 17)  # 40 - 1 taken - 14 used - 8 down
    # -05: 8, -02: 8 - 2 (any queue's jobs hold a host's cards), -01: 8 - 6, -03 closed_Full: 0, -04 down: left out;
    # the 1 taken card comes off the host with the most free
    assert a100.host_free == (7, 6, 2, 0) and a100.host_cards == (8, 8, 8, 7)
    assert a100.largest_on_one_host == 7
    bare = pools["gpu_bare"]
    assert (bare.host_free, bare.host_cards, bare.largest_on_one_host) == (None, None, None)
    assert a100.to_dict()["host_free"] == [7, 6, 2, 0] and bare.to_dict()["host_free"] is None


@pytest.mark.parametrize("kind", [JHScheduler, LSFScheduler])
def test_the_issue_two_free_on_each_of_four_hosts(kind: type, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = O_HEADER + "\n" + "".join(f"{i}|bob|RUN|a100|48*gpu-a1-0{i}|r{i}\n" for i in range(1, 5))
    hosts = hosts_table({f"gpu-a1-0{i}": ("ok", 1) for i in range(1, 5)})
    pool = next(p for p in backend(kind, tmp_path, monkeypatch, jobs, hosts).pools() if p.name == "gpu_a100")
    # the pool's total counts a fifth host the hosts table does not list (40 - 1 taken - 24 used = 15 free); the
    # hosts it lists have 2 free each, one of them less the taken card: no 4-GPU single-node run starts here now
    assert (pool.free, pool.host_free, pool.largest_on_one_host) == (15, (2, 2, 2, 1), 2)


@pytest.mark.parametrize("kind", [JHScheduler, LSFScheduler])
def test_no_host_status_leaves_the_hosts_unknown(kind: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    pools = backend(kind, tmp_path, monkeypatch, JOBS, None).pools()
    assert all(p.host_free is None and p.host_cards is None for p in pools)
    assert "host status unknown" in next(p for p in pools if p.name == "gpu_a100").source


# -- Slurm: the per-node rows sinfo -N already gives -------------------------------------------------------------

def test_slurm_free_gpus_per_node_from_the_same_sinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sinfo = ((FIX / "slurm_sinfo_multinode.txt").read_text()
             + "gpu_h200|gpu13|gpu:h200:5(S:0-1)|gpu:h200:2(IDX:0-1)|allocated|\n")
    calls: list[str] = []

    def fake(argv: list[str], **kwargs: object) -> CommandResult:
        calls.append(argv[0])
        return CommandResult(tuple(argv), 0, sinfo if argv[0] == "sinfo" else "", "")

    monkeypatch.setattr(slurm, "run_command", fake)
    cluster = Cluster(name="s", scheduler="slurm", pools={
        "gpu_6000ada": Pool("gpu_6000ada", "RTX 6000 Ada", 24, cards_per_node=8),
        "gpu_h200": Pool("gpu_h200", "H200", 15, taken=1, cards_per_node=5)})
    pools = {p.name: p for p in slurm.SlurmScheduler(cluster, tmp_path).pools()}
    assert calls == ["sinfo", "squeue"]  # nothing asked beyond what pools() asked before
    ada, h200 = pools["gpu_6000ada"], pools["gpu_h200"]
    # gpu01 allocated (every CPU given out): 0; gpu02 mixed, 3 of 8 used: 5; gpu03 drained: left out
    assert (ada.host_free, ada.host_cards) == ((5, 0), (8, 8))
    # gpu11 4 free less the 1 taken; gpu12 down* left out; gpu13 allocated: 0 though 3 GPUs are idle
    assert (h200.host_free, h200.host_cards) == ((3, 0), (5, 4))


def test_level_down_is_plain_data() -> None:
    assert PoolStatus.level_down([], 3) == ()
    assert PoolStatus.level_down([2, 9, 4], 6) == (4, 3, 2)
