"""Slurm parsers on output copied from Slurm 22.05 (the cluster scripts/slurm-ci.sh starts).

slurm_sinfo_multinode.txt is the one hand-made fixture: the same `sinfo -O` format with several nodes,
typed GRES, a second GRES (mps), a drained and a non-responding node, as a larger site prints them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdimo.errors import PendingLimitError, SchedulerError, SubmitRefused
from xdimo.schedulers import slurm_parse as sp
from xdimo.states import JobState

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- states and exit codes ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "state"), [
    ("PENDING", JobState.PENDING), ("PD", JobState.PENDING), ("REQUEUED", JobState.PENDING),
    ("RUNNING", JobState.RUNNING), ("R", JobState.RUNNING), ("COMPLETING", JobState.RUNNING),
    ("CONFIGURING", JobState.RUNNING), ("SUSPENDED", JobState.SUSPENDED), ("STOPPED", JobState.SUSPENDED),
    ("COMPLETED", JobState.DONE), ("CD", JobState.DONE),
    ("FAILED", JobState.FAILED), ("TIMEOUT", JobState.FAILED), ("NODE_FAIL", JobState.FAILED),
    ("OUT_OF_MEMORY", JobState.FAILED), ("OOM", JobState.FAILED), ("BOOT_FAIL", JobState.FAILED),
    ("CANCELLED by 0", JobState.KILLED), ("CANCELLED+", JobState.KILLED), ("PREEMPTED", JobState.KILLED),
    ("SOMETHING_NEW", JobState.UNKNOWN), ("", JobState.UNKNOWN),
])
def test_job_state(text: str, state: JobState) -> None:
    assert sp.job_state(text) is state


@pytest.mark.parametrize(("text", "code"), [
    ("0:0", 0), ("3:0", 3), ("0:15", 143), ("0:9", 137), ("1:9", 1), ("", None), ("n/a", None),
])
def test_exit_code(text: str, code: int | None) -> None:
    assert sp.exit_code(text) == code


# --- hostlists and gres ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "hosts"), [
    ("localhost", ["localhost"]),
    ("gpu[01-03,07],cpu5", ["gpu01", "gpu02", "gpu03", "gpu07", "cpu5"]),
    ("n[8-11]", ["n8", "n9", "n10", "n11"]),
    ("a[1-2]b[3-4]", ["a1b3", "a1b4", "a2b3", "a2b4"]),
    ("None assigned", []), ("(null)", []), ("", []),
])
def test_expand_hostlist(text: str, hosts: list[str]) -> None:
    assert sp.expand_hostlist(text) == hosts


@given(prefix=st.sampled_from(["gpu", "node-", "h"]), lo=st.integers(0, 50), n=st.integers(1, 30),
       width=st.integers(1, 4))
def test_expand_hostlist_ranges_are_complete_and_padded(prefix: str, lo: int, n: int, width: int) -> None:
    # Slurm pads every number to the width of the range's low bound ("n[08-11]" -> n08 ... n11).
    hi = lo + n - 1
    a, b = str(lo).zfill(width), str(hi).zfill(width)
    assert sp.expand_hostlist(f"{prefix}[{a}-{b}]") == [prefix + str(k).zfill(len(a)) for k in range(lo, hi + 1)]


@given(names=st.lists(st.from_regex(r"[a-z]{1,6}[0-9]{0,3}", fullmatch=True), min_size=1, max_size=8,
                      unique=True))
def test_expand_hostlist_plain_names_round_trip(names: list[str]) -> None:
    assert sp.expand_hostlist(",".join(names)) == names


@pytest.mark.parametrize(("text", "count"), [
    ("gpu:8", 8), ("gpu:0", 0), ("gpu:4(IDX:0-3)", 4), ("gpu:rtx6000ada:8(S:0-1)", 8),
    ("gpu:a100:4(S:0-1),gpu:v100:2", 6), ("gpu:h200:1(IDX:4),mps:0(IDX:N/A)", 1), ("mps:400", 0),
    ("(null)", 0), ("", 0), ("gpu", 1), ("gpu:3g.20gb", 1), ("gpu:3g.20gb:2", 2),
])
def test_gres_count(text: str, count: int) -> None:
    assert sp.gres_count(text) == count


@given(counts=st.lists(st.integers(0, 64), min_size=1, max_size=5),
       kind=st.sampled_from(["", "a100:", "h200:"]))
def test_gres_count_sums_every_gpu_item(counts: list[int], kind: str) -> None:
    text = ",".join(f"gpu:{kind}{c}(IDX:0-{max(c - 1, 0)})" for c in counts) + ",mps:100"
    assert sp.gres_count(text) == sum(counts)


# --- sbatch ---------------------------------------------------------------------------------------------

def test_sbatch_parsable_id() -> None:
    assert sp.parse_sbatch_id(fixture("slurm_sbatch_parsable.txt")) == "13"
    assert sp.parse_sbatch_id("42;xdimo\n") == "42"
    assert sp.parse_sbatch_id("sbatch: warning: something 7\n1234\n") == "1234"
    assert sp.parse_sbatch_id("Submitted batch job 12\n") is None  # not --parsable: refuse to guess
    assert sp.parse_sbatch_id("") is None


def test_qos_submit_limit_is_a_pending_limit_error() -> None:
    err = sp.submit_error(1, fixture("slurm_sbatch_qos_submit_limit.txt"), "gpu_h200")
    assert isinstance(err, PendingLimitError)
    text = str(err)
    assert "QOSMaxSubmitJobPerUserLimit" in text and "gpu_h200" in text and "submit limit" in text
    assert "\n" not in text


@pytest.mark.parametrize(("name", "words"), [
    ("slurm_sbatch_invalid_partition.txt", "Invalid partition name specified"),
    ("slurm_sbatch_node_config.txt", "Requested node configuration is not available"),
    ("slurm_sbatch_bad_gres.txt", "Invalid generic resource"),
])
def test_other_refusals_are_submit_refused_with_a_hint(name: str, words: str) -> None:
    err = sp.submit_error(1, fixture(name), "gpu_6000ada")
    assert isinstance(err, SubmitRefused) and not isinstance(err, PendingLimitError)
    assert words in str(err) and "(" in str(err) and "\n" not in str(err)


def test_socket_timeout_is_not_a_refusal() -> None:
    # slurmctld may have taken the job before the socket timed out: the ledger must keep it as SUBMITTING.
    out = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"
    err = sp.submit_error(1, out, "gpu_6000ada")
    assert type(err) is SchedulerError
    assert not sp.submit_unreached(out)


def test_unreachable_controller_is_safe_to_retry() -> None:
    out = ("sbatch: error: Batch job submission failed: Unable to contact slurm controller "
           "(connect failure)\n")
    assert sp.submit_unreached(out)
    assert not sp.submit_unreached(fixture("slurm_sbatch_qos_submit_limit.txt"))


# --- squeue / sacct -------------------------------------------------------------------------------------

def test_parse_squeue() -> None:
    jobs = sp.parse_squeue(fixture("slurm_squeue_all.txt"))
    assert set(jobs) == {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}
    assert jobs["10"].state is JobState.RUNNING and jobs["10"].hosts == ("localhost",)
    assert jobs["12"].state is JobState.PENDING and jobs["12"].reason == "Resources" and jobs["12"].hosts == ()
    assert jobs["3"].state is JobState.KILLED
    assert jobs["11"].state is JobState.FAILED and jobs["11"].reason == "BadConstraints"
    assert jobs["8"].reason == ""  # "None" is no reason


def test_squeue_forgotten_job() -> None:
    out = fixture("slurm_squeue_invalid.txt")
    assert sp.squeue_no_such_job(out)
    assert sp.parse_squeue(out) == {}


def test_parse_sacct() -> None:
    jobs = sp.parse_sacct(fixture("slurm_sacct.txt"))
    assert jobs["1"].state is JobState.DONE and jobs["1"].exit_code == 0
    assert jobs["4"].state is JobState.FAILED and jobs["4"].exit_code == 3
    assert jobs["3"].state is JobState.KILLED and jobs["3"].raw_state == "CANCELLED by 0"
    assert jobs["3"].hosts == ()
    assert jobs["10"].state is JobState.RUNNING
    assert "99999" not in jobs


def test_parse_sacct_last_record_wins_and_steps_are_skipped() -> None:
    out = "5|REQUEUED|0:0|None|n1\n5|COMPLETED|0:0|None|n2\n5.batch|COMPLETED|0:0||n2\n"
    jobs = sp.parse_sacct(out)
    assert list(jobs) == ["5"] and jobs["5"].state is JobState.DONE and jobs["5"].hosts == ("n2",)


# --- scancel --------------------------------------------------------------------------------------------

def test_scancel_outcomes() -> None:
    assert sp.scancel_outcome(fixture("slurm_scancel_ok.txt")) == "ok"
    assert sp.scancel_outcome(fixture("slurm_scancel_finished.txt")) == "finished"
    assert sp.scancel_outcome(fixture("slurm_scancel_invalid.txt")) == "unknown"
    assert sp.scancel_outcome("scancel: error: Unable to contact slurm controller") == "error"


# --- sinfo ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "used", "down"), [
    ("slurm_sinfo_idle.txt", 0, 0), ("slurm_sinfo_mixed_4used.txt", 4, 0), ("slurm_sinfo_mixed_6used.txt", 6, 0),
    ("slurm_sinfo_drained.txt", 0, 8),  # a drained node's cards are not free
])
def test_single_node_partitions_share_the_node(name: str, used: int, down: int) -> None:
    parts = sp.partition_gpus(sp.parse_sinfo_nodes(fixture(name)))
    assert set(parts) == {"gpu_6000ada", "gpu_h200"}
    for part in parts.values():
        assert (part.total, part.used, part.down, part.nodes) == (8, used, down, ["localhost"])
        assert part.down_nodes == (["localhost"] if down else [])


def test_multinode_partitions() -> None:
    parts = sp.partition_gpus(sp.parse_sinfo_nodes(fixture("slurm_sinfo_multinode.txt")))
    ada, h200, cpu = parts["gpu_6000ada"], parts["gpu_h200"], parts["cpu"]
    assert (ada.total, ada.used, ada.down, ada.down_nodes) == (24, 8 + 3, 8, ["gpu03"])  # gpu03 drained
    assert (h200.total, h200.used, h200.down, h200.down_nodes) == (10, 1, 5, ["gpu12"])  # down*: not responding
    assert (cpu.total, cpu.used, cpu.down) == (0, 0, 0)


@pytest.mark.parametrize(("state", "ok"), [
    ("idle", True), ("mixed", True), ("allocated", True), ("idle~", True), ("completing", True),
    ("planned", True), ("down*", False), ("idle*", False), ("drained", False), ("draining", False),
    ("drained*", False), ("fail", False), ("inval", False), ("maint", False), ("reserved", False),
])
def test_node_available(state: str, ok: bool) -> None:
    assert sp.node_available(state) is ok


def test_pending_partitions() -> None:
    assert sp.parse_pending_partitions("gpu_6000ada\ngpu_h200\ngpu_6000ada,gpu_h200\n\n") == {
        "gpu_6000ada": 2, "gpu_h200": 2}


# --- start and end times (Slurm's clock) ------------------------------------------------------------------------
# slurm_*_times*.txt: squeue -o "%i|%T|%r|%N|%S|%e" and sacct -o ...,Start,End under SLURM_TIME_FORMAT=standard,
# from Slurm 22.05.8 (scripts/slurm-ci.sh, TZ UTC): a job done in 3 s (1), one failed (2), one cancelled while
# running (3), one pending then running (4), two cancelled while pending (5, 7), one that hit its time limit (6).

def at(text: str) -> float:
    return sp.slurm_time(text)  # type: ignore[return-value]


@pytest.mark.parametrize("text", ["Unknown", "None", "NONE", "N/A", "", "14:24:41", "Tomorr 10:00", "garbage"])
def test_slurm_time_of_an_unset_or_unknown_time_is_none(text: str) -> None:
    assert sp.slurm_time(text) is None


def test_slurm_time_reads_the_standard_format_in_our_zone() -> None:
    import time

    assert sp.slurm_time("2026-11-23T14:24:41") == time.mktime((2026, 11, 23, 14, 24, 41, 0, 0, -1))
    assert at("2026-11-23T14:24:44") - at("2026-11-23T14:24:41") == 3.0


def test_sacct_start_and_end_are_the_jobs_times() -> None:
    early = sp.parse_sacct(fixture("slurm_sacct_times.txt"))
    later = sp.parse_sacct(fixture("slurm_sacct_times_later.txt"))
    assert (later["1"].state, later["1"].wall_s) == (JobState.DONE, 3.0)
    assert (later["2"].state, later["2"].exit_code, later["2"].wall_s) == (JobState.FAILED, 3, 2.0)
    assert (later["3"].state, later["3"].wall_s) == (JobState.KILLED, 19.0)  # scancel of a running job
    assert (later["6"].raw_state, later["6"].wall_s) == ("TIMEOUT", 65.0)  # --time=1 and KillWait
    assert later["6"].started_at == at("2026-11-23T14:25:00") and later["6"].ended_at == at("2026-11-23T14:26:05")
    # running: its start, no end ("Unknown"); pending: neither ("Unknown|Unknown")
    assert (early["3"].started_at, early["3"].ended_at) == (at("2026-11-23T14:24:41"), None)
    assert (early["4"].state, early["4"].started_at, early["4"].ended_at) == (JobState.PENDING, None, None)
    # cancelled while pending: it never ran, though Slurm gives job 7 its cancel time as its start
    for job in ("5", "7"):
        assert (later[job].state, later[job].started_at, later[job].ended_at) == (JobState.KILLED, None, None)


def test_squeue_start_and_end_are_facts_only() -> None:
    early = sp.parse_squeue(fixture("slurm_squeue_times.txt"))
    later = sp.parse_squeue(fixture("slurm_squeue_times_later.txt"))
    assert (early["3"].state, early["3"].started_at, early["3"].ended_at) == (
        JobState.RUNNING, at("2026-11-23T14:24:41"), None)  # end "NONE": no time limit
    assert (later["6"].state, later["6"].wall_s) == (JobState.FAILED, 65.0)
    assert (early["4"].started_at, early["4"].ended_at) == (None, None)  # pending: "N/A"
    assert (early["7"].started_at, later["5"].started_at) == (None, None)  # cancelled while pending: no node
    assert early["1"].wall_s == 3.0 and later["3"].wall_s == 19.0
    assert early["5"].reason.startswith("Nodes required for job are DOWN") and early["5"].hosts == ()


def test_a_running_jobs_time_limit_is_not_its_end() -> None:
    """squeue %e of a running job is when its --time runs out: a forecast, never an end."""
    rows = sp.parse_squeue("6|RUNNING|None|localhost|2026-11-23T14:25:00|2026-11-23T14:26:00\n")
    assert (rows["6"].started_at, rows["6"].ended_at) == (at("2026-11-23T14:25:00"), None)


def test_answers_without_the_time_columns_still_read() -> None:
    """The earlier formats (no %S/%e, no Start,End): the same rows, no times."""
    squeue, sacct = sp.parse_squeue(fixture("slurm_squeue_all.txt")), sp.parse_sacct(fixture("slurm_sacct.txt"))
    assert squeue["10"].state is JobState.RUNNING and squeue["10"].started_at is None
    assert sacct["1"].state is JobState.DONE and sacct["1"].wall_s is None


def test_the_formats_asked_for_end_with_the_times_then_the_name() -> None:
    """The name last: it may hold the `|` the other fields are split on."""
    assert sp.SQUEUE_FORMAT.split("|")[-3:] == ["%S", "%e", "%j"]
    assert sp.SACCT_FIELDS.split(",")[-3:] == ["Start", "End", "JobName"]
    assert sp.TIME_FORMAT_ENV == {"SLURM_TIME_FORMAT": "standard"}
