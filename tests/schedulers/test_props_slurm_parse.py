"""Properties of the Slurm parsers that the example tests leave open: states survive Slurm's decorations, exit
codes and times round-trip, sbatch ids survive warnings, a failed sbatch is always one classified error, scancel's
outcome follows its words, and squeue/sinfo tallies agree with a plain count. No parser raises on noise."""

from __future__ import annotations

import time

from hypothesis import example, given, settings
from hypothesis import strategies as st

from xdimo.errors import PendingLimitError, SchedulerError, SubmitRefused
from xdimo.schedulers import slurm_parse as sp
from xdimo.states import JobState

FAST = settings(max_examples=150, deadline=None)
NOISE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)
KNOWN = sorted(sp._STATES)
PARTITION = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
NODE = st.from_regex(r"[a-z]{1,4}[0-9]{1,2}", fullmatch=True)
# Words a failed sbatch may print around the part that decides its meaning; none of them decides it.
FILLER = st.lists(st.sampled_from(["sbatch:", "error:", "Batch", "job", "submission", "failed:", "on", "the",
                                   "partition", "retrying", "7", "(", ")", ":", "node", "gpu"]), max_size=8)


# --- job_state, exit_code, slurm_time -------------------------------------------------------------------

@FAST
@given(st.sampled_from(KNOWN), st.sampled_from(["", "+", "*", " by 0", " by 1234", "+ by 7"]),
       st.sampled_from([str.upper, str.lower, str.title]), st.sampled_from(["", " ", "  "]))
def test_a_known_state_reads_the_same_under_slurms_decorations(name: str, tail: str, case, pad: str) -> None:
    assert sp.job_state(pad + case(name) + tail + pad) is sp._STATES[name]


@FAST
@given(NOISE)
def test_job_state_of_noise_is_unknown_unless_it_names_a_state(text: str) -> None:
    state = sp.job_state(text)
    assert isinstance(state, JobState)
    if state is not JobState.UNKNOWN:  # a state only from a name Slurm uses, never from noise alone
        assert any(name in text.upper() for name in sp._STATES if sp._STATES[name] is state)


@FAST
@given(st.integers(0, 255), st.integers(0, 64), st.sampled_from(["", " ", "\t"]))
def test_exit_code_follows_the_shell_convention(code: int, signal: int, pad: str) -> None:
    got = sp.exit_code(f"{pad}{code}:{signal}{pad}")
    assert got == (code if code else 128 + signal if signal else 0)
    assert got == 0 or code or signal  # 0 only for a clean exit


@FAST
@given(NOISE)
def test_exit_code_of_noise_is_none_or_an_int(text: str) -> None:
    got = sp.exit_code(text)
    assert got is None or (isinstance(got, int) and got >= 0)
    if ":" not in text:
        assert got is None


@FAST
@given(st.integers(0, 4_000_000_000))
def test_slurm_time_reads_back_what_slurm_prints(epoch: int) -> None:
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))
    got = sp.slurm_time(text)
    assert got is not None and time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(got)) == text


@FAST
@given(st.one_of(NOISE, st.sampled_from(["Unknown", "None", "NONE", "N/A", "", "2026-02-30T00:00:00"])))
def test_slurm_time_of_anything_else_is_none_or_a_float(text: str) -> None:
    got = sp.slurm_time(text)
    assert got is None or isinstance(got, float)
    if text in ("Unknown", "None", "NONE", "N/A", "", "2026-02-30T00:00:00"):
        assert got is None


# --- sbatch ---------------------------------------------------------------------------------------------

WARNING = st.from_regex(r"sbatch: (warning|error): [A-Za-z ,.:=()-]{0,40}", fullmatch=True)


@FAST
@given(st.lists(WARNING, max_size=4), st.integers(1, 10**9), st.one_of(st.none(), PARTITION))
def test_sbatch_id_survives_the_warnings_before_it(warnings: list[str], job: int, cluster: str | None) -> None:
    line = f"{job};{cluster}" if cluster else str(job)
    assert sp.parse_sbatch_id("\n".join([*warnings, line]) + "\n") == str(job)


@FAST
@given(st.lists(WARNING, max_size=4))
def test_sbatch_without_an_id_line_has_no_id(warnings: list[str]) -> None:
    assert sp.parse_sbatch_id("\n".join(warnings)) is None


@FAST
@given(NOISE)
def test_sbatch_id_of_noise_is_none_or_digits(text: str) -> None:
    got = sp.parse_sbatch_id(text)
    assert got is None or (got.isdigit() and got in text)


LIMITS = ["QOSMaxSubmitJobPerUserLimit", "QOSMaxSubmitJobPerAccountLimit", "AssocMaxSubmitJobLimit",
          "AssocGrpSubmitJobsLimit", "QOSGrpSubmitJobsLimit", "MaxSubmitJobsPerUser"]


@FAST
@given(FILLER, st.sampled_from(LIMITS), FILLER, st.integers(1, 255), PARTITION)
def test_a_submit_limit_anywhere_is_the_pending_limit(before: list[str], limit: str, after: list[str], rc: int,
                                                      partition: str) -> None:
    text = "\n".join([" ".join(before), f"sbatch: error: {limit}", " ".join(after)])
    err = sp.submit_error(rc, text, partition)
    assert isinstance(err, PendingLimitError) and limit in str(err) and partition in str(err)


@FAST
@given(FILLER, st.sampled_from(["Socket timed out on send/recv operation", "slurm_receive_msg: Timeout"]),
       st.booleans(), st.integers(1, 255))
def test_a_timeout_is_never_called_a_refusal(before: list[str], timeout: str, unreached: bool, rc: int) -> None:
    # a timeout may come after slurmctld took the job: resubmitting could duplicate it
    words = [" ".join(before), f"sbatch: error: {timeout}"]
    if unreached:
        words.append("sbatch: error: Unable to contact slurm controller (connect failure)")
    err = sp.submit_error(rc, "\n".join(words), "p")
    assert type(err) is SchedulerError and "may or may not exist" in str(err)


@FAST
@given(st.integers(0, 255), NOISE, st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")),
                                            max_size=20))
def test_submit_error_is_always_one_line_of_a_scheduler_error(rc: int, output: str, partition: str) -> None:
    err = sp.submit_error(rc, output, partition)
    assert isinstance(err, SchedulerError)
    assert isinstance(err, (PendingLimitError, SubmitRefused)) or type(err) is SchedulerError
    assert "\n" not in str(err)


# --- scancel --------------------------------------------------------------------------------------------

OK_WORDS = st.text(st.sampled_from("abcdfghijklmnpqstuvwxyz 0123456789:."), max_size=60)  # never spells "error"


@FAST
@given(OK_WORDS)
def test_scancel_without_error_is_ok(text: str) -> None:
    assert sp.scancel_outcome(text) == "ok"


@FAST
@given(st.integers(1, 10**7), st.sampled_from([str.upper, str.lower, lambda s: s]))
def test_scancel_outcome_follows_its_words(job: int, case) -> None:
    head = f"scancel: error: Kill job error on job id {job}: "
    assert sp.scancel_outcome(case(head + "Job/step already completing or completed")) == "finished"
    assert sp.scancel_outcome(case(f"scancel: error: Invalid job id {job}")) == "unknown"
    assert sp.scancel_outcome(case(head + "Access/permission denied")) == "error"


@FAST
@given(NOISE)
def test_scancel_outcome_of_noise_is_one_of_four(text: str) -> None:
    assert sp.scancel_outcome(text) in ("ok", "finished", "unknown", "error")


# --- squeue PENDING tallies -----------------------------------------------------------------------------

@st.composite
def pending_jobs(draw: st.DrawFn) -> tuple[list[str], int, int, str]:
    parts = draw(st.lists(PARTITION, min_size=1, max_size=3, unique=True))
    per_node = draw(st.integers(0, 8))
    nodes = draw(st.integers(1, 4))
    tres = draw(st.sampled_from(["gres:gpu:{n}", "gres/gpu:{n}", "gres:gpu:h200:{n}", "gpu:{n}"])).format(n=per_node)
    return parts, per_node, nodes, "N/A" if per_node == 0 else tres


@FAST
@given(st.lists(pending_jobs(), max_size=8))
def test_parse_pending_agrees_with_a_plain_count(jobs: list[tuple[list[str], int, int, str]]) -> None:
    lines = [f"{','.join(parts)}|{tres}|{nodes}" for parts, _, nodes, tres in jobs]
    counts, gpus = sp.parse_pending("\n".join(lines) + "\n")
    want_counts: dict[str, int] = {}
    want_gpus: dict[str, int] = {}
    for parts, per_node, nodes, _ in jobs:
        for p in parts:
            want_counts[p] = want_counts.get(p, 0) + 1
            want_gpus[p] = want_gpus.get(p, 0) + per_node * nodes
    assert counts == want_counts and gpus == want_gpus
    assert sp.parse_pending_partitions("\n".join(lines)) == want_counts


@FAST
@given(NOISE)
@example("gpu_a|gres:gpu:1|²")
def test_parse_pending_never_raises_on_noise(text: str) -> None:
    counts, gpus = sp.parse_pending(text)
    assert set(counts) == set(gpus) and all(n >= 1 for n in counts.values())


# --- sinfo: partition_gpus, node_hosts ------------------------------------------------------------------

STATE = st.sampled_from(["idle", "mixed", "allocated", "down*", "drained", "draining", "idle~", "maint", "idle*"])


@st.composite
def node_rows(draw: st.DrawFn) -> list[sp.NodeRow]:
    rows = []
    for _ in range(draw(st.integers(0, 10))):
        gpus = draw(st.integers(0, 8))
        rows.append(sp.NodeRow(draw(st.sampled_from(["a", "b", "c"])), draw(NODE), gpus,
                               draw(st.integers(0, 10)), draw(STATE), f"gpu:h200:{gpus}(S:0-1)" if gpus else ""))
    return rows


@FAST
@given(node_rows())
def test_partition_gpus_counts_each_node_once_and_no_card_twice(rows: list[sp.NodeRow]) -> None:
    parts = sp.partition_gpus(rows)
    assert set(parts) == {r.partition for r in rows}
    for name, part in parts.items():
        first: dict[str, sp.NodeRow] = {}
        for r in rows:
            if r.partition == name:
                first.setdefault(r.node, r)
        assert part.nodes == list(first)  # each node once, in order of first appearance
        assert part.total == sum(r.gpus for r in first.values())
        assert part.down == sum(r.gpus for r in first.values() if not r.available)
        assert part.used == sum(min(r.gpus, r.gpus_used) for r in first.values() if r.available)
        assert 0 <= part.used <= part.total - part.down  # free = total - used - down is never negative
        assert part.down_nodes == [n for n, r in first.items() if not r.available]
        assert set(part.node_states) == set(part.down_nodes)
        assert all(w in ("down", "drained", "draining") for w in part.node_states.values())


@FAST
@given(node_rows())
def test_node_hosts_is_one_host_per_node_from_its_first_row(rows: list[sp.NodeRow]) -> None:
    hosts = sp.node_hosts(rows)
    first: dict[str, sp.NodeRow] = {}
    for r in rows:
        first.setdefault(r.node, r)
    assert [h.name for h in hosts] == list(first)
    for h in hosts:
        r = first[h.name]
        assert (h.status, h.ngpus) == (r.state, r.gpus)
        assert h.gpu_models == (("h200",) if r.gpus else ())
