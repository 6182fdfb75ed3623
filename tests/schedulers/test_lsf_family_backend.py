"""JHScheduler / LSFScheduler against the scheduler double in tests/fakes (both flavours, same tests)."""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from xdimo.config import Cluster, Pool
from xdimo.errors import PendingLimitError, SubmitRefused
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf import LSFScheduler
from xdimo.schedulers.lsf_family import settle_from_logs
from xdimo.spec import RunSpec
from xdimo.states import JobState

FAKES = Path(__file__).resolve().parents[1] / "fakes"
KINDS = {"jh": (JHScheduler, "#JSUB", "-gpgpu 4"), "lsf": (LSFScheduler, "#BSUB", '-gpu "num=4"')}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    write_config(state)
    monkeypatch.setenv("XDIMO_FAKE_STATE", str(state))
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    return state


def write_config(state: Path, **extra: object) -> None:
    cfg = {"user": getpass.getuser(), "max_pending": 1,
           "queues": {"gpu_h200": {"cards": 5}, "gpu_6000ada": {"cards": 8}},
           "others": [{"queue": "gpu_6000ada", "user": "alice", "slots": 16, "gpus": 2}]}
    cfg.update(extra)
    (state / "config.json").write_text(json.dumps(cfg))


def cluster(kind: str, **options: object) -> Cluster:
    pools = {"gpu_h200": Pool("gpu_h200", "H200", 5), "gpu_6000ada": Pool("gpu_6000ada", "RTX 6000 Ada", 8),
             "gpu_pro6000": Pool("gpu_pro6000", "RTX PRO 6000", 8, taken=1)}
    return Cluster(name=f"fake-{kind}", scheduler=kind, pools=pools,
                   options={"retries": 0, "timeout_s": 20, **options})


def script(kind: str, log_dir: Path, queue: str = "gpu_h200", body: str = "echo hi", extra: str = "") -> str:
    d, gpu = KINDS[kind][1], KINDS[kind][2]
    return (f"#!/bin/bash\n{d} -J t\n{d} -q {queue}\n{d} -n 32\n{d} {gpu}\n{extra}"
            f"{d} -o {log_dir}/%J.output\n{d} -e {log_dir}/%J.error\n{body}\n")


def spec(**kw: object) -> RunSpec:
    return RunSpec(matrix="t", pool=str(kw.pop("pool", "gpu_h200")), gpus=4, **kw)  # type: ignore[arg-type]


def wait_for(predicate, timeout: float = 15.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "the double did not get there"
        time.sleep(0.05)


def poll_one(backend, job_id: str, log_dir: Path):  # noqa: ANN001, ANN201
    return backend.poll([LedgerJob("t", job_id, str(log_dir))])[job_id]  # the scripts' -J t


@pytest.mark.parametrize("kind", list(KINDS))
def test_submit_run_done_and_settled(kind: str, fake: Path, tmp_path: Path) -> None:
    be = KINDS[kind][0](cluster(kind), tmp_path)
    logs = tmp_path / "logs" / "r1"  # does not exist yet: submit creates the -o folder
    job = be.submit(script(kind, logs, body="echo out; exit 0"), spec())
    assert job == "101"
    wait_for(lambda: poll_one(be, job, logs).state is JobState.DONE)
    st = poll_one(be, job, logs)
    assert st.exit_code == 0 and st.reason.startswith("summary") and st.hosts == ("h200n01",)
    assert "out" in (logs / "101.output").read_text()


@pytest.mark.parametrize("kind", list(KINDS))
def test_failed_job_exit_code(kind: str, fake: Path, tmp_path: Path) -> None:
    be = KINDS[kind][0](cluster(kind), tmp_path)
    job = be.submit(script(kind, tmp_path, body="exit 3"), spec())
    wait_for(lambda: poll_one(be, job, tmp_path).state.terminal)
    st = poll_one(be, job, tmp_path)
    assert (st.state, st.exit_code) == (JobState.FAILED, 3)


@pytest.mark.parametrize("kind", list(KINDS))
def test_one_pending_rule_is_a_pending_limit_error(kind: str, fake: Path, tmp_path: Path) -> None:
    be = KINDS[kind][0](cluster(kind), tmp_path)
    hold = "while [ -e \"$XDIMO_FAKE_STATE/hold\" ]; do sleep 0.05; done"
    (fake / "hold").write_text("")
    first = be.submit(script(kind, tmp_path, body=hold), spec())  # runs: 4 of 5 cards
    second = be.submit(script(kind, tmp_path, body=hold), spec())  # waits for cards
    jobs = [LedgerJob("t", first, str(tmp_path)), LedgerJob("t", second, str(tmp_path))]  # named by -J
    states = be.poll(jobs)
    assert (states[first].state, states[second].state) == (JobState.RUNNING, JobState.PENDING)
    refusal = "待提交任务数达上限" if kind == "jh" else "Pending job threshold reached"
    with pytest.raises(PendingLimitError, match=refusal):  # LSF: one try (LSB_NTRIES=1), not bsub's forever
        be.submit(script(kind, tmp_path, body=hold), spec())
    pools = {p.name: p for p in be.pools()}
    assert (pools["gpu_h200"].used, pools["gpu_h200"].free, pools["gpu_h200"].pending_jobs) == (4, 1, 1)
    assert (pools["gpu_6000ada"].used, pools["gpu_6000ada"].free) == (2, 6)  # alice's 16 slots = 2 GPUs
    assert (pools["gpu_pro6000"].free, pools["gpu_pro6000"].taken) == (7, 1)
    (fake / "hold").unlink()
    wait_for(lambda: all(s.state is JobState.DONE for s in be.poll(jobs).values()))


@pytest.mark.parametrize("kind", list(KINDS))
def test_kill_running_job_is_killed(kind: str, fake: Path, tmp_path: Path) -> None:
    be = KINDS[kind][0](cluster(kind), tmp_path)
    job = be.submit(script(kind, tmp_path, body="sleep 30"), spec())
    wait_for(lambda: (fake / "jobs" / f"{job}.pid").exists())
    be.kill(job)
    wait_for(lambda: poll_one(be, job, tmp_path).state.terminal)
    st = poll_one(be, job, tmp_path)
    # JH: bkill's SIGINT (130); LSF: `bkill -s USR1` first, which ends a job that does not catch it (138)
    assert (st.state, st.exit_code) == (JobState.KILLED, 130 if kind == "jh" else 138)
    be.kill(job)  # killing an ended job is not an error


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("vanish", ["not_found", "header_only"])
def test_vanished_job_settled_from_its_summary(kind: str, vanish: str, fake: Path, tmp_path: Path) -> None:
    be = KINDS[kind][0](cluster(kind), tmp_path)
    job = be.submit(script(kind, tmp_path, body="exit 0"), spec())
    wait_for(lambda: (fake / "jobs" / f"{job}.rc").exists())
    write_config(fake, hidden=[job], vanish=vanish)
    st = poll_one(be, job, tmp_path)
    assert (st.state, st.exit_code) == (JobState.DONE, 0) and st.reason.startswith("summary")


@pytest.mark.parametrize("kind", list(KINDS))
def test_vanished_job_without_logs_is_lost_and_marker_settles(kind: str, fake: Path, tmp_path: Path) -> None:
    be = KINDS[kind][0](cluster(kind, settle_grace_s=0), tmp_path)
    write_config(fake, hidden=["555"])
    assert poll_one(be, "555", tmp_path).state is JobState.LOST
    (tmp_path / "job.exit").write_text("7\n")
    st = poll_one(be, "555", tmp_path)
    assert (st.state, st.exit_code, st.reason) == (JobState.FAILED, 7, "marker: exit 7")


@pytest.mark.parametrize("kind", list(KINDS))
def test_default_format_when_o_is_refused(kind: str, fake: Path, tmp_path: Path, caplog) -> None:  # noqa: ANN001
    write_config(fake, o_format=False)
    be = KINDS[kind][0](cluster(kind), tmp_path)
    job = be.submit(script(kind, tmp_path, body="exit 0"), spec())
    with caplog.at_level(logging.WARNING):
        wait_for(lambda: poll_one(be, job, tmp_path).state is JobState.DONE)
    assert not be.use_o_format and "default format" in caplog.text
    assert {p.name: p.used for p in be.pools()}["gpu_6000ada"] == 2


@pytest.mark.parametrize("kind", list(KINDS))
def test_unknown_queue_is_a_definite_refusal(kind: str, fake: Path, tmp_path: Path) -> None:
    be = KINDS[kind][0](cluster(kind), tmp_path)
    with pytest.raises(SubmitRefused, match="No such queue"):
        be.submit(script(kind, tmp_path, queue="gpu_nope"), spec())


def test_jh_refuses_a_long_script_before_calling_jsub(fake: Path, tmp_path: Path) -> None:
    be = JHScheduler(cluster("jh"), tmp_path)
    long = script("jh", tmp_path, body="# " + "x" * 4100)
    with pytest.raises(SubmitRefused, match=r"is 4\d{3} bytes; jsub refuses scripts over 4096 bytes"):
        be.submit(long, spec())
    assert not list((fake / "jobs").glob("*.json"))


def test_jh_walltime_on_the_command_line_and_repeated_warning(fake: Path, tmp_path: Path, caplog) -> None:  # noqa: ANN001
    be = JHScheduler(cluster("jh"), tmp_path)
    text = script("jh", tmp_path, body="exit 0", extra="#JSUB -W 10\n")
    with caplog.at_level(logging.WARNING):
        job = be.submit(text, spec(walltime_min=30))
    assert json.loads((fake / "jobs" / f"{job}.json").read_text())["walltime"] == "30"
    assert "Repeated argument <-W 10> in script, ignored" in caplog.text


@pytest.mark.parametrize("kind", list(KINDS))
def test_hosts_with_gpu_models(kind: str, fake: Path, tmp_path: Path) -> None:
    rows = KINDS[kind][0](cluster(kind), tmp_path).hosts()
    assert [(r.name, r.status, r.ngpus) for r in rows] == [("h200n01", "ok", 5), ("6000adan01", "ok", 8)]
    assert rows[0].gpu_models[0] == "NVIDIARTX5880AdaGeneration"


def test_poll_nothing_runs_no_command(tmp_path: Path) -> None:
    assert JHScheduler(cluster("jh"), tmp_path).poll([]) == {}


def test_settle_waits_for_a_summary_that_may_still_come(tmp_path: Path) -> None:
    out = tmp_path / "9.output"
    out.write_text("step 10\n")
    assert settle_from_logs(tmp_path, "9", None, gone=True, grace_s=60).state is JobState.UNKNOWN
    old = time.time() - 600
    os.utime(out, (old, old))
    assert settle_from_logs(tmp_path, "9", None, gone=True, grace_s=60).state is JobState.LOST
    assert settle_from_logs(tmp_path, "9", None, gone=False, grace_s=60).state is JobState.UNKNOWN


def test_a_summary_without_its_verdict_does_not_settle(tmp_path: Path) -> None:
    out = tmp_path / "9.output"
    out.write_text("Sender: X <a@b>\nSubject: Job 9: <x> Done\nJob was executed on host(s) <8*h1>, in queue <q>.\n")
    assert settle_from_logs(tmp_path, "9", None, gone=True, grace_s=60).state is JobState.UNKNOWN
    (tmp_path / "job.exit").write_text("0\n")
    assert settle_from_logs(tmp_path, "9", None, gone=True, grace_s=60).state is JobState.DONE  # the marker


def test_final_row_without_summary(tmp_path: Path) -> None:
    from xdimo.schedulers.lsf_parse import JobRow

    assert settle_from_logs(tmp_path, "9", JobRow("9", "DONE"), gone=False).state is JobState.DONE
    st = settle_from_logs(tmp_path, "9", JobRow("9", "EXIT"), gone=False)
    assert (st.state, st.exit_code) == (JobState.FAILED, None)
    (tmp_path / "9.output").write_text("step 10\n")  # written just now: the summary may still be appended
    assert settle_from_logs(tmp_path, "9", JobRow("9", "EXIT"), gone=False).state is JobState.UNKNOWN
    assert settle_from_logs(tmp_path, "9", JobRow("9", "ZOMBI"), gone=False, grace_s=0).state is JobState.KILLED


@pytest.mark.parametrize("kind", list(KINDS))
def test_pools_from_the_cluster_file_off_the_login_node(kind: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no jjobs/bjobs here: a laptop's --dry-run
    pools = {p.name: p for p in KINDS[kind][0](cluster(kind), tmp_path).pools()}
    assert (pools["gpu_pro6000"].free, pools["gpu_h200"].free) == (7, 5)
    assert "not on PATH" in pools["gpu_h200"].source


# -- a pool's hosts: a down host takes its cards out of the pool ------------------------------------------------

MULTI = {"gpu_h200": {"cards": 5}, "gpu_6000ada": {"cards": 8}, "gpu_multi": {"cards": 16, "cards_per_host": 8}}


def multi_cluster(kind: str, hosts: tuple[str, ...] = ("multin*",)) -> Cluster:
    """cluster() plus a 2 x 8-card pool that lists its hosts (the double names them multin01, multin02)."""
    base = cluster(kind)
    return replace(base, pools={**base.pools, "gpu_multi": Pool("gpu_multi", "H200", 16, cards_per_node=8,
                                                                hosts=hosts)})


def multi_pools(kind: str, fake: Path, tmp_path: Path, hosts: tuple[str, ...] = ("multin*",),
                **state: object) -> dict:
    write_config(fake, queues=MULTI, others=[], **state)
    return {p.name: p for p in KINDS[kind][0](multi_cluster(kind, hosts), tmp_path).pools()}


def jobs_source(kind: str) -> str:
    return f"{'jjobs' if kind == 'jh' else 'bjobs'} -u all (slots / 8)"


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_down_host_shrinks_its_pool(kind: str, fake: Path, tmp_path: Path) -> None:
    pools = multi_pools(kind, fake, tmp_path, host_status={"multin02": "unavail"})
    m = pools["gpu_multi"]
    assert (m.total, m.down, m.used, m.free, m.down_hosts) == (16, 8, 0, 8, ("multin02",))
    hosts_call = "jhosts -w" if kind == "jh" else "bhosts -X -w"
    assert m.source == f"{jobs_source(kind)}; {hosts_call}: 1 host down: multin02 (unavail)"
    assert (pools["gpu_h200"].down, pools["gpu_h200"].source) == (0, jobs_source(kind))  # it lists no hosts
    up = multi_pools(kind, fake, tmp_path)["gpu_multi"]
    assert (up.down, up.free) == (0, 16) and up.source.endswith("-w: 2 hosts up")


@pytest.mark.parametrize("kind", list(KINDS))
def test_gpus_held_on_a_down_host_count_once(kind: str, fake: Path, tmp_path: Path) -> None:
    # an unreachable host's job shows UNKWN and holds its 4 GPUs (in `used`); the host's other 4 are down
    stuck = {"queue": "gpu_multi", "user": "alice", "slots": 32, "gpus": 4, "host": "multin02", "stat": "UNKWN"}
    write_config(fake, queues=MULTI, others=[stuck], host_status={"multin02": "unreach"})
    m = {p.name: p for p in KINDS[kind][0](multi_cluster(kind), tmp_path).pools()}["gpu_multi"]
    assert (m.used, m.down, m.free) == (4, 4, 8)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_full_host_is_not_down(kind: str, fake: Path, tmp_path: Path) -> None:
    busy = {"queue": "gpu_multi", "user": "alice", "slots": 64, "gpus": 8, "host": "multin01"}
    write_config(fake, queues=MULTI, others=[busy], host_status={"multin01": "closed_Full"})
    m = {p.name: p for p in KINDS[kind][0](multi_cluster(kind), tmp_path).pools()}["gpu_multi"]
    assert (m.used, m.down, m.free) == (8, 0, 8)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_host_pattern_matching_nothing_is_reported(kind: str, fake: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        m = multi_pools(kind, fake, tmp_path, hosts=("multin01", "gpu-h100-*"),
                        host_status={"multin02": "unavail"})["gpu_multi"]
    assert (m.down, m.free) == (0, 16)  # multin02 is not listed; the unknown glob changes nothing
    assert "pool gpu_multi: no host in" in caplog.text and "gpu-h100-*" in caplog.text
    assert m.source.endswith("1 host up; no host matches gpu-h100-*")


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_bad_host_pattern_is_warned_once_per_scheduler(kind: str, fake: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    write_config(fake, queues=MULTI, others=[])
    sched = KINDS[kind][0](multi_cluster(kind, ("multin01", "gpu-h100-*")), tmp_path)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # `submit --batch all` polls pools() every interval
            sched.pools()
    assert caplog.text.count("no host in") == 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_hosts_after_pools_reuses_their_host_call(kind: str, fake: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(fake, queues=MULTI, others=[], host_status={"multin02": "unavail"})
    sched = KINDS[kind][0](multi_cluster(kind), tmp_path)
    calls: list[list[str]] = []
    real_run = sched.run

    def counting_run(argv: list[str], *args: object, **kw: object):
        calls.append(argv)
        return real_run(argv, *args, **kw)

    monkeypatch.setattr(sched, "run", counting_run)
    sched.pools()
    rows = sched.hosts()  # `hosts --nodes`: the same snapshot, not a second `jhosts -w`
    assert "multin02" in [r.name for r in rows]
    hosts_argv = ["jhosts", "-w"] if kind == "jh" else ["bhosts", "-X", "-w"]
    assert calls.count(hosts_argv) == 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_failed_hosts_query_keeps_the_cluster_files_capacity(kind: str, fake: Path, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        pools = multi_pools(kind, fake, tmp_path, host_status={"multin02": "unavail"}, hosts_fail=True)
    m = pools["gpu_multi"]
    assert (m.down, m.free) == (0, 16)
    assert m.source.startswith(jobs_source(kind) + "; host status unknown (`")
    assert m.source.endswith("capacity from the cluster file") and "failed to get host information" in m.source
    assert pools["gpu_h200"].source == jobs_source(kind) and "no host status" in caplog.text


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_hosts_command_keeps_the_cluster_files_capacity(kind: str, fake: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    only_jobs = tmp_path / "bin"
    only_jobs.mkdir()
    jobs = "jjobs" if kind == "jh" else "bjobs"
    (only_jobs / jobs).symlink_to(FAKES / jobs)
    (only_jobs / "python3").symlink_to(sys.executable)  # the double's shebang
    monkeypatch.setenv("PATH", str(only_jobs))
    m = multi_pools(kind, fake, tmp_path, host_status={"multin02": "unavail"})["gpu_multi"]
    hosts_cmd = "jhosts" if kind == "jh" else "bhosts"
    assert (m.down, m.free) == (0, 16)
    assert m.source == f"{jobs_source(kind)}; host status unknown ({hosts_cmd} not on PATH): capacity from the " \
                       "cluster file"


@pytest.mark.parametrize("kind", list(KINDS))
def test_pools_without_hosts_are_not_touched_by_a_failed_hosts_command(kind: str, fake: Path, tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    write_config(fake, hosts_fail=True)  # asked only to warn of down hosts no pool names: nothing to say
    with caplog.at_level(logging.WARNING):
        pools = KINDS[kind][0](cluster(kind), tmp_path).pools()
    assert {p.source for p in pools} == {jobs_source(kind)} and all(p.down == 0 for p in pools)
    assert caplog.text == ""


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_down_host_no_pool_names_is_warned_of(kind: str, fake: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """The shipped xdimo-jh.yaml lists no hosts: a down H200 host was invisible, its cards counted free."""
    write_config(fake, queues=MULTI, others=[], host_status={"multin02": "unavail"})
    with caplog.at_level(logging.WARNING):
        pools = {p.name: p for p in KINDS[kind][0](cluster(kind), tmp_path).pools()}
    hosts_call = "jhosts -w" if kind == "jh" else "bhosts -X -w"
    assert f"`{hosts_call}`: 1 host down: multin02 (unavail), in no pool's `hosts:`" in caplog.text
    assert "gpu_h200, gpu_6000ada, gpu_pro6000" in caplog.text
    assert all(p.down == 0 for p in pools.values())  # a warning: no pool to take its cards from


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_down_host_a_pool_names_is_not_warned_of_again(kind: str, fake: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        m = multi_pools(kind, fake, tmp_path, host_status={"multin02": "unavail"})["gpu_multi"]
    assert m.down == 8 and "no pool's" not in caplog.text


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_double_starts_nothing_on_a_down_host(kind: str, fake: Path, tmp_path: Path) -> None:
    write_config(fake, queues=MULTI, others=[], host_status={"multin01": "closed_Adm"})
    be = KINDS[kind][0](multi_cluster(kind), tmp_path)
    job = be.submit(script(kind, tmp_path, queue="gpu_multi", body="exit 0"), spec(pool="gpu_multi"))
    wait_for(lambda: poll_one(be, job, tmp_path).state is JobState.DONE)
    assert poll_one(be, job, tmp_path).hosts == ("multin02",)


def test_a_glob_matching_more_hosts_than_the_pool_has_is_reported(fake: Path, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        m = multi_pools("jh", fake, tmp_path, hosts=("*",), host_status={"h200n01": "unavail"})["gpu_multi"]
    assert "its hosts match 4 hosts, more than its 16 cards / 8 per node" in caplog.text
    assert m.down == 8  # what the list says, never more than the pool: check the glob
