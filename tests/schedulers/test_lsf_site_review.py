"""Review on an IBM LSF site: LSF down fails fast in LSF's words (LSB_NTRIES on every command, not bsub alone);
-W comes with a job warning action (USR1, -wt minutes before the limit) the workload checkpoints on; a kill
bkill answers `No matching job found` for is said to be none; `bhosts -X -w` sees the hosts of a CONDENSE=Y
host group; a ZOMBI job's cards stay in use. Scripted answers and small scripted commands, not tests/fakes."""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

import pytest

from xdimo.config import Cluster, Pool
from xdimo.errors import SchedulerError, SubmitRefused
from xdimo.render import render_script
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf import LSFScheduler
from xdimo.schedulers.runner import CommandResult
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
O_HEADER = "JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME"


def lsf_cluster(hosts: tuple[str, ...] = (), **options: object) -> Cluster:
    pools = {"gpu": Pool("gpu", "A100 80GB", 16, cards_per_node=4, hosts=hosts)}
    return Cluster(name="hpc", scheduler="lsf", pools=pools, options={"retries": 0, **options})


def scripted(kind: type, cluster: Cluster, tmp_path: Path, answer) -> tuple[LSFScheduler | JHScheduler, list]:  # noqa: ANN001
    """A backend whose commands answer ``answer(argv) -> (exit, text)``; every argv recorded."""
    be = kind(cluster, tmp_path)
    calls: list[list[str]] = []

    def run(argv: list[str], stdin: str | None = None, retries: int | None = None,
            env: dict[str, str] | None = None) -> CommandResult:
        calls.append(list(argv))
        code, text = answer(argv)
        return CommandResult(tuple(argv), code, text, "")

    be.run = run  # type: ignore[method-assign]
    be.jobs_command_found = lambda: True  # type: ignore[method-assign]
    return be, calls


# -- 1. LSF down: every command fails fast, in LSF's words -------------------------------------------------------

# What a batch command does while mbatchd is down (lsf.conf LSB_NTRIES; LSB_MBD_DOWN_MSG's default text): it says
# "LSF is down. Please wait..." and tries again, for ever unless LSB_NTRIES is set.
LSF_DOWN = """#!/bin/bash
n=0
while :; do
  echo "LSF is down. Please wait..." >&2
  n=$((n + 1))
  if [ -n "$LSB_NTRIES" ] && [ "$n" -ge "$LSB_NTRIES" ]; then exit 255; fi
  sleep 0.2
done
"""


@pytest.fixture
def lsf_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bsub", "bjobs", "bhosts", "bkill"):
        (bin_dir / tool).write_text(LSF_DOWN)
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("LSB_NTRIES", raising=False)
    return bin_dir


@pytest.mark.parametrize("call", ["poll", "hosts", "kill", "pools"])
def test_lsf_down_fails_fast_with_lsfs_own_words(call: str, lsf_down: Path, tmp_path: Path) -> None:
    """Before: bjobs/bhosts/bkill ran without LSB_NTRIES, retried for ever, and `status` reported a timeout after
    timeout_s x (retries + 1) (60 s x 3 at the shipped defaults) instead of what LSF said."""
    be = LSFScheduler(lsf_cluster(hosts=("gpu-a100-*",), timeout_s=4), tmp_path)
    start = time.monotonic()
    with pytest.raises(SchedulerError) as err:
        if call == "poll":
            be.poll([LedgerJob("r1", "141", str(tmp_path / "logs" / "r1"))])
        elif call == "hosts":
            be.hosts()
        elif call == "kill":
            be.kill("141")
        else:
            be.confirm_no_jobs()  # the bhosts call pools() makes to confirm an empty listing
    assert "LSF is down. Please wait..." in str(err.value) and "timed out" not in str(err.value)
    assert time.monotonic() - start < 3


def test_the_users_own_lsb_ntries_wins_and_jh_is_left_alone(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    be = LSFScheduler(lsf_cluster(), tmp_path)
    monkeypatch.delenv("LSB_NTRIES", raising=False)
    assert be.command_env()["LSB_NTRIES"] == "1" and be.submit_env()["LSB_NTRIES"] == "1"
    monkeypatch.setenv("LSB_NTRIES", "5")
    assert be.command_env()["LSB_NTRIES"] == "5"
    # scheduler-formats.md documents no such variable for JH (its jobs have no LSB_* at all): inherit the env
    jh = JHScheduler(Cluster(name="c", scheduler="jh", pools={"gpu_h200": Pool("gpu_h200", "H200", 5)}), tmp_path)
    assert jh.command_env() is None and jh.submit_env() is None


# -- 2. -W: a warning (USR1) the workload checkpoints on, before LSF's USR2 -------------------------------------


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    shutil.copytree(REPO / "jobs" / "templates", tmp_path / "jobs" / "templates")
    (tmp_path / "clusters").mkdir()
    return Workspace(root=tmp_path, ledger_path=tmp_path / "queue" / "ledger.sqlite")


def directives(script: str, tag: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(rf"^{tag} (\S+)\s*(.*)$", script, re.MULTILINE)}


@pytest.mark.parametrize(("walltime", "warn"), [(240, "10"), (100, "10"), (90, "9"), (30, "3"), (2, "1"),
                                                (1, None), (None, None)])
def test_walltime_comes_with_a_usr1_warning_before_the_limit(walltime: int | None, warn: str | None,
                                                             ws: Workspace) -> None:
    cluster = Cluster(name="hpc", scheduler="lsf", pools={"gpu": Pool("gpu", "A100 80GB", 16, cards_per_node=4)})
    text = render_script(RunSpec(matrix="m", pool="gpu", gpus=2, walltime_min=walltime), cluster, ws)
    head = directives(text, "#BSUB")
    assert head.get("-W") == (str(walltime) if walltime else None)
    assert head.get("-wt") == warn
    assert head.get("-wa") == ("USR1" if warn else None)
    if warn:
        # the signal LSF sends is one the script remembers as a stop (138: KILLED, the checkpoint written)
        assert "trap 'stop=138' USR1" in text


def test_multi_node_runs_pass_the_warning_on(ws: Workspace) -> None:
    pools = {"multi": Pool("multi", "A100 80GB", 32, cards_per_node=8, queue="gpu")}
    cluster = Cluster(name="hpc", scheduler="lsf", pools=pools, launcher="blaunch")
    text = render_script(RunSpec(matrix="m", pool="multi", gpus=16, nodes=2, walltime_min=600), cluster, ws)
    assert (directives(text, "#BSUB")["-wa"], directives(text, "#BSUB")["-wt"]) == ("USR1", "10")
    assert """trap 'stop=138; kill -USR1 "${pids[@]}" 2>/dev/null' USR1""" in text


def test_jh_gets_no_warning_lines(ws: Workspace) -> None:
    """scheduler-formats.md documents no -wa/-wt for jsub (nor as #JSUB lines): JH's script is unchanged."""
    cluster = Cluster(name="c", scheduler="jh", pools={"gpu_h200": Pool("gpu_h200", "H200", 5)})
    text = render_script(RunSpec(matrix="m", pool="gpu_h200", gpus=1, walltime_min=90), cluster, ws)
    assert "-wa" not in text and "-wt" not in text and len(text.encode()) < 4096


# -- 3. bkill: "No matching job found" is no kill ---------------------------------------------------------------


@pytest.mark.parametrize("now", [False, True])
@pytest.mark.parametrize("answer", ["Job <141>: No matching job found", "Job <141>: Job has already finished"])
def test_a_kill_of_a_job_the_scheduler_no_longer_knows_says_so(answer: str, now: bool, tmp_path: Path) -> None:
    be, calls = scripted(LSFScheduler, lsf_cluster(), tmp_path, lambda argv: (255, answer))
    assert be.kill("141", now=now) is False  # no error (nothing is left to kill), and no kill: `kill` says so
    # the first command of a kill (USR1 for its checkpoint; --now: the plain bkill) finds it gone: nothing follows
    assert calls == [["bkill", "141"] if now else ["bkill", "-s", "USR1", "141"]]


def test_a_kill_sent_says_nothing_more(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    be, _ = scripted(LSFScheduler, lsf_cluster(), tmp_path, lambda argv: (0, "Job <141> is being terminated"))
    with caplog.at_level(logging.WARNING):
        be.kill("141", now=True)  # the plain bkill's answer (the USR1 grace has tests of its own)
    assert caplog.text == ""


# -- 4. CONDENSE=Y host groups: `bhosts -X -w` --------------------------------------------------------------------

HEAD = "HOST_NAME          STATUS          JL/U    MAX  NJOBS    RUN  SSUSP  USUSP    RSV\n"
CONDENSED = HEAD + "a100_grp           ok                 -    256      0      0      0      0      0\n"
UNCONDENSED = HEAD + "".join(f"{h:<18} {st:<15}    -     64      0      0      0      0      0\n" for h, st in
                             [("gpu-a100-01", "ok"), ("gpu-a100-02", "ok"), ("gpu-a100-03", "unavail"),
                              ("gpu-a100-04", "ok")])
GPUS = ("HOST_NAME            GPU_ID                MODEL     MUSED      MRSV  NJOBS    RUN   SUSP    RSV\n"
        + "".join(f"{h if i == 0 else '':<20} {i:>6} {'NVIDIAA100_SXM4_80GB':>20}        0M        0M      0      0"
                  "      0      0\n" for h in ("gpu-a100-01", "gpu-a100-02", "gpu-a100-03", "gpu-a100-04")
                  for i in range(4)))


def condensed_site(argv: list[str]) -> tuple[int, str]:
    """A site whose four A100 hosts form a CONDENSE=Y host group: `bhosts` shows the group unless -X (or -l)."""
    if argv[0] == "bjobs":
        return 0, "No unfinished job found"
    if "-gpu" in argv:
        return 0, GPUS
    return 0, UNCONDENSED if "-X" in argv else CONDENSED


def test_a_down_host_of_a_condensed_group_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xdimo.schedulers.lsf_family.shutil.which", lambda name: f"/usr/bin/{name}")
    be, calls = scripted(LSFScheduler, lsf_cluster(hosts=("gpu-a100-*",)), tmp_path, condensed_site)
    (pool,) = be.pools()
    assert (pool.down, pool.free, pool.down_hosts) == (4, 12, ("gpu-a100-03",))
    assert pool.source.endswith("bhosts -X -w: 1 host down: gpu-a100-03 (unavail)")
    assert [c for c in calls if c[0] == "bhosts"] == [["bhosts", "-X", "-w"]]
    rows = be.hosts()  # `hosts --nodes`: each host, its GPUs found by name
    assert [(r.name, r.ngpus) for r in rows] == [(f"gpu-a100-0{i}", 4) for i in range(1, 5)]


def test_jhosts_keeps_its_documented_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xdimo.schedulers.lsf_family.shutil.which", lambda name: f"/usr/bin/{name}")
    cluster = Cluster(name="c", scheduler="jh", options={"retries": 0},
                      pools={"gpu_h200": Pool("gpu_h200", "H200", 5, hosts=("gpu-a100-01",))})
    be, calls = scripted(JHScheduler, cluster, tmp_path, lambda argv: (0, UNCONDENSED if argv[0] == "jhosts"
                                                                       else "No unfinished job found"))
    be.pools()
    assert [c for c in calls if c[0] == "jhosts"] == [["jhosts", "-w"]]


# -- 5. ZOMBI: killed while its host was unreachable, it may still run on its cards -------------------------------


def zombie_site(argv: list[str]) -> tuple[int, str]:
    if argv[0] in ("bjobs", "jjobs"):
        return 0, f"{O_HEADER}\n141|bob|ZOMBI|gpu|32*gpu-a100-03|r1\n142|bob|RUN|gpu|16*gpu-a100-01|r2\n"
    return 0, UNCONDENSED.replace("unavail", "unreach")


def test_a_zombi_jobs_cards_stay_in_use_on_lsf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xdimo.schedulers.lsf_family.shutil.which", lambda name: f"/usr/bin/{name}")
    be, _ = scripted(LSFScheduler, lsf_cluster(host_gpu_models=False), tmp_path, zombie_site)
    (pool,) = be.pools()
    assert (pool.used, pool.free) == (6, 10)  # 4 (ZOMBI) + 2 (RUN); before: 2 used, 14 free
    # with the pool's hosts listed, the unreachable host's cards are counted once (4 in use by the ZOMBI job)
    be, _ = scripted(LSFScheduler, lsf_cluster(hosts=("gpu-a100-*",), host_gpu_models=False), tmp_path,
                     zombie_site)
    (pool,) = be.pools()
    assert (pool.used, pool.down, pool.free) == (6, 0, 10)
    # its run is still settled as our side sees it: killed (no summary, no marker)
    status = be.poll([LedgerJob("r1", "141", str(tmp_path / "logs" / "r1"))])["141"]
    assert status.state is JobState.KILLED


def test_jh_keeps_zombi_final(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """scheduler-formats.md lists ZOMBI among JH's final states: JH counts its cards free as before."""
    monkeypatch.setattr("xdimo.schedulers.lsf_family.shutil.which", lambda name: f"/usr/bin/{name}")
    cluster = Cluster(name="c", scheduler="jh", options={"retries": 0}, pools={"gpu": Pool("gpu", "H200", 16)})
    be, _ = scripted(JHScheduler, cluster, tmp_path, zombie_site)
    (pool,) = be.pools()
    assert pool.used == 2


def test_a_busy_mbatchd_is_asked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With LSB_NTRIES=1, bjobs gives up on a busy mbatchd at once (LSB_MBD_BUSY_MSG): asked again with back-off,
    not read as a site without `bjobs -o`, nor reported as a failed poll."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "bjobs").write_text(f"""#!/bin/bash
if [ ! -e {tmp_path}/asked ]; then
  touch {tmp_path}/asked; echo "LSF is processing your request. Please wait..." >&2; exit 255
fi
echo "{O_HEADER}"; echo "141|me|RUN|gpu|8*gpu-a100-01|r1"
""")
    (bin_dir / "bjobs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    be = LSFScheduler(lsf_cluster(retries=1, timeout_s=10), tmp_path)
    status = be.poll([LedgerJob("r1", "141", str(tmp_path / "logs" / "r1"))])["141"]
    assert status.state is JobState.RUNNING and be.use_o_format


@pytest.mark.parametrize("said", ["LSF is processing your request. Please wait...",
                                  "Cannot connect to LSF. Please wait...", "LSF is down. Please wait..."])
def test_bsub_giving_up_on_mbatchd_is_no_refusal(tmp_path: Path, said: str) -> None:
    """bsub (LSB_NTRIES=1) gave up waiting for mbatchd's answer: a busy mbatchd may have queued the job all the
    same, so the run's fate is unknown (SchedulerError: the ledger keeps it SUBMITTING and finds its job by
    name), never SubmitRefused (the intent undone, the run free to be sent again: a second job)."""
    be, calls = scripted(LSFScheduler, lsf_cluster(), tmp_path, lambda argv: (255, said))
    run = RunSpec(matrix="m", pool="gpu", gpus=1)
    with pytest.raises(SchedulerError) as err:
        be.submit(f"#!/bin/bash\n#BSUB -J {run.run_id}\n#BSUB -o {tmp_path}/o/%J.out\n", run)
    assert not isinstance(err.value, SubmitRefused) and calls[0][0] == "bsub"
    assert "gave no job id" in str(err.value) and said in str(err.value)
