"""`xdimo-jobs plan MATRIX`: the runs, the rule checks, the waves of submission and an estimate of GPU-hours."""

from __future__ import annotations

from typing import Any

import click

from xdimo.cli.common import App, job_folder, read_only_line, table, verb, workload
from xdimo.config import Cluster
from xdimo.ledger import LedgerRun
from xdimo.matrix import Matrix, load_matrix
from xdimo.plan import (
    ASSUMED_MFU,
    WavePlan,
    check_matrix,
    estimate_hours,
    estimate_note,
    file_hosts,
    live_waves,
    queued_gpus,
    waves,
)
from xdimo.poll import refresh, still_queued
from xdimo.reconcile import with_listed_jobs
from xdimo.rules import cpu_slots
from xdimo.schedulers import get_scheduler
from xdimo.schedulers.base import PoolStatus, Scheduler
from xdimo.spec import RunSpec
from xdimo.states import ACTIVE_STATES, JobState
from xdimo.submit import never_taken, never_taken_line, refuse_a_collision
from xdimo.workspace import Workspace

HEADERS = ["run", "model", "pool", "gpus", "cpus", "nodes", "parallel", "global batch", "steps", "wave", "est GPU-h"]


@click.command()
@click.argument("matrix")
@click.option("--live", is_flag=True, help="Plan what `submit` would do now: wave 1 is what starts on the free "
              "cards (less those your queued jobs take first), a down host's cards are left out of every wave, "
              "and runs already in the ledger are skipped (shown with their state, polled first as `status` "
              "does), except those `submit` sends again (their last attempt never reached the scheduler), "
              "planned and marked `again`.")
@verb
def plan(app: App, matrix: str, live: bool) -> None:
    """Expand MATRIX (jobs/NAME.yaml or a path) into runs, check the site rules, show the waves.

    Nothing is submitted. A wave is one `submit --batch` of runs that start together; the waves assume each
    one ends before the next starts, longest-estimated runs first. Without --live they also assume every
    usable card of the cluster file is free (an offline plan, no scheduler call); where a pool gives
    cards_per_node, a run is placed on its cards // cards_per_node hosts (one host for a single-node run),
    the pool's taken cards assumed off the hosts with the most free.

    \b
    Examples:
      xdimo-jobs plan demo
      xdimo-jobs --cluster xdimo-jh plan jobs/table1-scaling.yaml
      xdimo-jobs --cluster xdimo-jh plan jobs/hw-4gpu.yaml --live   # from the cards free now, down hosts out
      xdimo-jobs plan jobs/hw-4gpu.yaml --cluster xdimo-jh --json
    """
    cluster = app.cluster
    m = load_matrix(app.ws.matrix_path(matrix), workdir=job_folder(cluster, app.ws.root))
    check_matrix(m, cluster)
    scheduler = get_scheduler(cluster, app.ws.root) if live else None
    pools = scheduler.pools() if scheduler else []
    warnings: list[str] = list(m.warnings)
    polled = False
    if live and in_ledger_file(app.ws):  # the states shown (and the queued cards) are this moment's, as submit's
        polled, failures = poll_first(app.ws, cluster.name, scheduler)
        warnings += failures
    # live: what `submit` would do now, so the runs the ledger already has are not planned again, except those it
    # sends again without --again (never_taken: their last attempt never reached the scheduler)
    rows = submitted(app.ws, m, warnings) if live else {}
    in_ledger = {run_id: r.state.value for run_id, r in rows.items()}
    again = {run_id: never_taken_line(r) for run_id, r in rows.items() if never_taken(r)}
    already = {run_id: state for run_id, state in in_ledger.items() if run_id not in again}
    refuse_collisions(app.ws, m, in_ledger)
    for line in warnings:
        click.echo(f"warning: {line}", err=True)
    queued = queued_here(app.ws, scheduler, cluster.name, polled) if scheduler and in_ledger_file(app.ws) else {}
    queued = {p.name: n for p in pools if (n := max(queued.get(p.name, 0), p.pending_gpus))}  # as submit counts
    todo = [s for s in m.runs if s.run_id not in already]
    wp = live_waves(todo, cluster, pools, queued) if live else waves(todo, cluster)
    wave_of = wp.wave_of()
    data = [planned_run(s, cluster, wave_of.get(s.run_id), in_ledger.get(s.run_id), s.run_id in again)
            for s in m.runs]
    # JSON keys stay as scripts know them: a run's "batch" and the top-level "batches" are its wave and the waves
    out: dict[str, Any] = {"matrix": m.name, "cluster": cluster.name, "runs": data,
                           "batches": [[s.run_id for s in w] for w in wp.waves],
                           "blocked": [s.run_id for s in wp.blocked], "already": already,
                           "sent_again": again,  # run id -> why, as `submit --json` names them
                           "assumed_mfu": ASSUMED_MFU, "warnings": warnings}
    if live:
        out["live"] = [p.to_dict() for p in pools]  # the same shape as `hosts --json`
        out["queued_gpus"] = queued  # pool -> cards wave 1 leaves to your queued jobs
    else:  # pool -> the free cards of each host the cluster file implies (cards_per_node), as planned on
        out["file_hosts"] = {pool: list(h) for pool, h in file_hosts(cluster).items()}
    out["short_on_hosts"] = wp.short_on_hosts  # run id -> why it is not in wave 1 though its pool has the cards
    app.emit(out, lambda: plan_text(m, cluster, data, wp, pools, already, live, queued, again))


def poll_first(ws: Workspace, cluster: str, scheduler: Scheduler | None) -> tuple[bool, list[str]]:
    """Poll the cluster's active runs, as `status` does, through ``scheduler`` (the backend that read the pools:
    what it learnt, a `-o` field the site refuses, holds): whether it polled, and the warnings to show: the poll's
    failures, or that a ledger that cannot be written here is shown as last polled (nothing is polled: no answer
    could be kept)."""
    ws.read_only_ok = True
    if why := ws.ledger_unwritable():
        return False, [read_only_line(str(ws.ledger_path), why)]
    ledger = ws.ledger
    backends = {cluster: scheduler} if scheduler is not None else {}
    return True, refresh(ws, ledger, ledger.runs(cluster=cluster, states=(*ACTIVE_STATES, JobState.LOST)),
                         backends).failures


def submitted(ws: Workspace, m: Matrix, warnings: list[str]) -> dict[str, LedgerRun]:
    """The matrix's runs in the ledger, by run id: those of the file as it is now (a run an earlier version of it
    had is not one this plan would submit, so it is not "already" here). A ledger the user named (--ledger,
    XDIMO_LEDGER) that has no file is planned as empty and said in ``warnings``; it is not created: a typo must
    not leave a new ledger behind, and only `submit` starts one."""
    if not in_ledger_file(ws):
        if ws.ledger_named:
            warnings.append(f"{ws.ledger_named}: no ledger file at {ws.ledger_path} (a typo?): planned as if no "
                            "run was submitted")
        return {}
    ids = {s.run_id for s in m.runs}
    return {r.run_id: r for r in ws.ledger.runs(matrix=m.name) if r.run_id in ids}


def refuse_collisions(ws: Workspace, m: Matrix, in_ledger: dict[str, str]) -> None:
    """A run id the ledger has for another spec is the error `submit` gives (RunIdCollision), not "already in
    the ledger": 8 hex digits of a hash can collide."""
    for spec in m.runs:
        if spec.run_id in in_ledger:
            refuse_a_collision(ws.ledger.get(spec.run_id), spec)


def in_ledger_file(ws: Workspace) -> bool:
    """Whether there is a ledger to read: False for a ledger the user named, or the one of a folder outside any
    workspace, that has no file (plan never creates one)."""
    return ws.ledger_path.exists() if ws.ledger_named or not ws.located else True


def queued_here(ws: Workspace, scheduler: Scheduler, cluster: str, polled: bool) -> dict[str, int]:
    """Pool -> GPUs of this cluster's queued runs (PENDING, SUBMITTING) the scheduler still queues (asked now,
    nothing written): `submit` leaves their cards to them (plan.free_for_new_jobs), so wave 1 does too. Not
    ``polled`` (a ledger that cannot be written), a dead submitter's run is asked about by its job listed under
    its name, as the poll would have adopted it: a job running already holds cards the listing counts in use."""
    runs = ws.ledger.runs(cluster=cluster, states=(JobState.PENDING, JobState.SUBMITTING))
    if not polled:
        runs = with_listed_jobs(ws.ledger, scheduler, runs)
    return queued_gpus((r.pool, r.gpus) for r in still_queued(scheduler, runs))


def plan_text(m: Matrix, cluster: Cluster, data: list[dict[str, Any]], wp: WavePlan, pools: list[PoolStatus],
              already: dict[str, str], live: bool, queued: dict[str, int], again: dict[str, str]) -> str:
    """``already``: the runs in the ledger not planned, by state; ``again``: those planned again, and why."""
    rows = [(d["run_id"], d["workload"], d["pool"], d["gpus"], d["cpus"], d["nodes"], d["parallel"], d["global_batch"],
             d["steps"], wave_cell(d), fmt_hours(d["est_gpu_hours"])) for d in data]
    lines = [f"matrix {m.name}: {len(m.runs)} runs on cluster {cluster.name}; every rule holds "
             f"(CPU slots = {cluster.cpu_per_gpu} x GPUs, GPUs fit their pool, max {cluster.max_pending} pending)",
             table(HEADERS, rows)]
    lines += [f"live: {p.name} {p.free} of {p.total} cards free"
              + (f", {p.down} down ({', '.join(p.down_hosts)})" if p.down else "")
              + (f", {queued[p.name]} go to your queued jobs first" if queued.get(p.name) else "")
              + (f", at most {p.largest_on_one_host} on one host" if p.host_free is not None else "")
              + f" [{p.source}]" for p in pools]
    lines += [] if live else file_hosts_lines(cluster, {s.pool for s in m.runs})
    for i, w in enumerate(wp.waves):
        when = " (starts now)" if live and i == 0 else ""
        runs = ", ".join(f"{s.run_id} ({s.gpus}x {s.pool})" for s in w) or "nothing: no run fits the free cards"
        lines.append(f"wave {i + 1}{when}: {runs}")
    by_id = {s.run_id: s for s in m.runs}
    short = "not now, no host has the cards" if live else "not in wave 1, no host has the cards left"
    lines += [f"{short}: {rid} ({shape(by_id[rid])}): {why}" for rid, why in wp.short_on_hosts.items() if rid in by_id]
    if again:
        lines += [f"{len(again)} run(s) `submit` would send again without --again, as new runs are (wave column "
                  "`again`):", *(f"  {run_id}: {why}" for run_id, why in again.items())]
    if already:
        lines.append(f"already in the ledger: {len(already)} run(s), not planned again (`status` shows them; "
                     "`submit --again` resubmits the ended ones)")
    if wp.blocked:
        # offline no host is down: the rules let only the taken cards, on hosts unknown, block a run
        why = ("waiting for a down host (more GPUs than its pool has up)" if live else
               "never planned: the pool's taken cards may leave no host(s) with its cards (see hosts: above)")
        lines.append(f"{why}: " + ", ".join(f"{s.run_id} ({shape(s)})" for s in wp.blocked))
    total = total_line([d for d in data if d["ledger_state"] is None or d["again"]], bool(already))
    return "\n".join(lines + ([total] if total else []))


def wave_cell(d: dict[str, Any]) -> Any:
    """The wave column: a run's wave, else its state in the ledger; a run planned again marked so ("1 again")."""
    if not d["again"]:
        return d["batch"] or d["ledger_state"]
    return f"{d['batch']} again" if d["batch"] else "again"


def shape(s: RunSpec) -> str:
    """A run's size as `plan` names it: "4x gpu_a100", "8x gpu_a100, 2 nodes"."""
    return f"{s.gpus}x {s.pool}" + (f", {s.nodes} nodes" if s.nodes > 1 else "")


def file_hosts_lines(cluster: Cluster, used: set[str]) -> list[str]:
    """Offline, for each pool the runs use that the cluster file splits into hosts (cards_per_node): the hosts
    the waves are placed on and, where the pool has taken cards, where they are assumed to be."""
    out = []
    for name, free in file_hosts(cluster).items():
        pool = cluster.pools[name]
        n = pool.cards // pool.cards_per_node
        if name not in used or n < 2:  # one host: its total is the plan, as without cards_per_node
            continue
        taken = (f"; its {pool.taken} taken card(s) are on hosts the cluster file does not name, assumed off the "
                 f"hosts with the most free: {' '.join(map(str, free))} free" if pool.taken else "")
        out.append(f"hosts: {name} {n} x {pool.cards_per_node} cards (cards_per_node): a single-node run needs "
                   f"its cards on one host{taken}")
    return out


def total_line(planned: list[dict[str, Any]], some_in_ledger: bool) -> str | None:
    """The estimated GPU time of the runs planned (with --live: those not in the ledger yet, and those sent again);
    without any estimate (a CPU pool, custom commands) why not, or None (no run planned). A study of tiny runs is
    shown in GPU-seconds, never as 0.00 hours."""
    known = [d["est_gpu_hours"] for d in planned if d["est_gpu_hours"] is not None]
    why = sorted({d["est_note"] for d in planned if d["est_gpu_hours"] is None and d.get("est_note")})
    if not known:  # the column is all `-`: say why once
        return f"no GPU-hour estimate: {'; '.join(why)}" if why else None
    what = f" for the {len(planned)} run(s) planned" if some_in_ledger else ""
    missing = len(planned) - len(known)
    unknown = f"; {missing} run(s) without an estimate" + (f" ({', '.join(why)})" if why else "") if missing else ""
    return (f"estimated total{what}: {fmt_gpu_time(sum(known))} (assumes {ASSUMED_MFU:.0%} MFU of each pool's "
            f"dense peak{unknown}; `collect` reports measured figures)")


def planned_run(s: RunSpec, cluster: Cluster, wave: int | None, ledger_state: str | None,
                again: bool = False) -> dict[str, Any]:
    """One run of the plan, as --json prints it (the text table shows a subset). ``batch`` is its wave;
    ``state`` (and the older ``ledger_state``) its state in the ledger with --live, else None; ``again``: a run
    the ledger has that is planned all the same, as `submit` sends it again (its last attempt never reached the
    scheduler)."""
    gpu = cluster.pool(s.pool).gpu_model
    hours = estimate_hours(s, gpu)
    gpu_hours = None if hours is None else hours * s.gpus
    # a command of the user's own is launched as written: the workload's settings are not passed to it (None: `-`)
    own = None if s.command else s
    return {"run_id": s.run_id, "model": s.model_name, "workload": workload(s), "pool": s.pool, "gpus": s.gpus,
            "nodes": s.nodes, "cpus": cpu_slots(cluster, s), "parallel": own and own.parallel,
            "local_batch": own and own.local_batch, "global_batch": own and own.global_batch,
            "steps": own and own.steps, "precision": own and own.precision, "batch": wave, "again": again,
            "ledger_state": ledger_state, "state": ledger_state,  # `state`, as status --json names it
            "est_hours": hours, "est_gpu_hours": gpu_hours,
            "est_note": None if hours is not None else estimate_note(s, gpu)}  # why there is no estimate


def fmt_hours(hours: float | None) -> str:
    if hours is None:
        return "-"
    return "<0.01" if 0 < hours < 0.005 else f"{hours:.2f}"


def fmt_gpu_time(hours: float) -> str:
    """GPU-hours to 2 decimals; below 0.005 (18 GPU-seconds), which would print as 0.00, in GPU-seconds."""
    if hours >= 0.005 or hours == 0:
        return f"{hours:.2f} GPU-hours"
    seconds = hours * 3600
    if seconds < 1:
        return "under 1 GPU-second"
    return f"{seconds:.0f} GPU-second{'' if round(seconds) == 1 else 's'}"
