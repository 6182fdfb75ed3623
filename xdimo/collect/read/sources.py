"""Which rows a collection shows, and the warnings about them: the ledger's runs (polled first), the rows a matrix
plans that have no run yet, and the user's legacy logs. ``xdimo-jobs collect`` calls ``gather_rows`` and prints
what it returns; nothing here prints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from xdimo.collect.derive import baselines
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records, legacy_context, legacy_records
from xdimo.collect.tables.labels import batch_text, hw, model_display, workload_text
from xdimo.collect.tables.table import planned_record
from xdimo.config import Cluster, load_cluster
from xdimo.errors import XdimoError
from xdimo.rules import refusal

if TYPE_CHECKING:
    from xdimo.ledger import LedgerRun
    from xdimo.matrix import Matrix
    from xdimo.workspace import Workspace


@dataclass
class Rows:
    """What ``gather_rows`` found: the runs with records (ledger and logs), the matrix's rows without a run yet,
    the matrix file's plan (None: no ``--matrix``, or no readable file of that name) and the warnings to print."""

    runs: list[RunRecord] = field(default_factory=list)
    planned: list[RunRecord] = field(default_factory=list)
    plan: Matrix | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[RunRecord]:
        return self.runs + self.planned


@dataclass(frozen=True)
class Where:
    """The part of the workspace a collection reads: the workspace, and ``--cluster`` where it was given."""

    ws: Workspace
    cluster: str | None = None


def gather_rows(where: Where, matrix: str | None, logs: Sequence[str], cache: Cache, *, refresh_first: bool = True,
                every_version: bool = False, legacy_precision: str | None = None) -> Rows:
    """The ledger's runs (all, or those of ``matrix`` / ``where.cluster``; skipped when only ``logs`` are asked
    for), with ``matrix``'s planned rows, then the legacy ``logs``' runs. Raises XdimoError for a matrix nobody
    ran and has no file, or logs without a training line."""
    found = Rows()
    if matrix:
        found.plan = load_plan(where.ws, matrix, found.warnings)
    if not logs or matrix or where.cluster:
        ledger = from_ledger(where, matrix, cache, refresh_first, every_version, found.plan, found.warnings)
        found.runs += ledger
        if found.plan is not None:
            found.planned = planned_records(where, found.plan, ledger)
            found.warnings += refused_warning(where, found.plan, ledger)
    if logs:
        found.runs += from_logs(where.ws.clusters_dir, logs, cache, legacy_precision)
    return found


def load_plan(ws: Workspace, matrix: str, warnings: list[str]) -> Matrix | None:
    """The matrix file ``--matrix`` names, as `plan` and `submit` resolve it; None when there is no such file, or
    it does not load (said in ``warnings``: then only the ledger's runs of that name are shown, as without a
    file)."""
    from xdimo.matrix import load_matrix

    path = ws.matrix_path(matrix)
    if not path.exists():
        return None
    try:
        return load_matrix(path)
    except XdimoError as exc:
        warnings.append(f"warning: --matrix {matrix}: {exc}; its planned rows are left out, only the ledger's runs "
                        "are shown")
        return None


def from_ledger(where: Where, matrix: str | None, cache: Cache, refresh_first: bool, every_version: bool = False,
                plan: Matrix | None = None, warnings: list[str] | None = None) -> list[RunRecord]:
    """The ledger's runs as records, polled first where some are active (``refresh_first``; a poll that fails is a
    line in ``warnings``, and the ledger's last known states are used). ``plan``: the matrix file ``matrix`` names,
    loaded (``load_plan``); None: no readable file of that name."""
    ws = where.ws
    ledger = ws.existing_ledger()
    current = None if every_version or plan is None else {s.run_id for s in plan.runs}
    wanted = plan.name if plan is not None else matrix  # `--matrix jobs/x.yaml`: the runs of the name x.yaml gives

    def select() -> list[LedgerRun]:
        runs = ledger.runs(cluster=where.cluster, matrix=wanted)
        return runs if current is None else [r for r in runs if r.run_id in current]

    runs = select()
    if refresh_first and any(r.state.active for r in runs):
        from xdimo.poll import refresh

        for failure in refresh(ws, ledger, runs).failures:  # the table is still worth printing
            if warnings is not None:
                warnings.append(f"warning: could not poll {failure}; states are the ledger's last known")
        runs = select()
    pool_gpu: dict[tuple[str, str], str] = {}
    for name in sorted({r.cluster for r in runs}):
        try:
            cluster = ws.load_cluster(name)
        except XdimoError:
            continue
        pool_gpu.update({(name, p.name): p.gpu_model for p in cluster.pools.values()})
    if matrix and not runs and plan is None:  # with the file, its plan is the table: every row 待填
        raise XdimoError(f"no runs of matrix {matrix!r} in the ledger {ledger.path}")
    return ledger_records(runs, ws.logs_dir, cache, pool_gpu, history=ledger.history)


def planned_records(where: Where, plan: Matrix, ledger: Sequence[RunRecord]) -> list[RunRecord]:
    """A placeholder row (table.planned_record) for each run ``plan`` defines that ``ledger`` has no run of.

    Its hardware is its pool's, on the cluster the matrix's runs went to (--cluster, else the ledger's runs of it,
    else the first cluster file with that pool, `local` first: the verbs' default)."""
    have = {r.run_id for r in ledger}
    specs = [s for s in plan.runs if s.run_id not in have]
    if not specs:
        return []
    names = cluster_names(where, ledger)
    clusters = candidate_clusters(where, ledger)
    fallback = names[0] if names else "local"
    out = []
    for spec in specs:
        home = next((c for c in clusters if spec.pool in c.pools), None)
        gpu = home.pools[spec.pool].gpu_model if home else ""
        out.append(planned_record(spec, home.name if home else fallback, gpu))
    return out


def refused_rows(where: Where, plan: Matrix, ledger: Sequence[RunRecord]) -> list[str]:
    """The rows of ``plan`` not submitted yet that `plan` would refuse on the cluster they are laid out on (a pool no
    cluster file has, more GPUs than the pool, a broken site rule), each as ``ID (N×POOL...: why)``: they stay 待填
    for ever."""
    have = {r.run_id for r in ledger}
    specs = [s for s in plan.runs if s.run_id not in have]
    if not specs:
        return []
    clusters = candidate_clusters(where, ledger)
    refused = []
    for spec in specs:
        row = f"{spec.run_id} ({spec.gpus}×{spec.pool}"
        home = next((c for c in clusters if spec.pool in c.pools), None)
        if home is None:
            if where.cluster and not clusters:
                place = f"cluster {where.cluster} (its file is missing or unreadable)"
            else:
                place = f"cluster {clusters[0].name}" if where.cluster else "any cluster file"
            refused.append(f"{row}: pool {spec.pool!r} is not on {place})")
            continue
        why = refusal(home, spec)
        if why is not None:
            refused.append(f"{row} on cluster {home.name}: {why.reason})")
    return refused


def refused_warning(where: Where, plan: Matrix, ledger: Sequence[RunRecord]) -> list[str]:
    """One line naming ``refused_rows``, where there are any. The rows are still shown: a matrix with such rows is
    no reason to print nothing."""
    refused = refused_rows(where, plan, ledger)
    if not refused:
        return []
    return [f"warning: --matrix {plan.name}: `plan` would refuse {len(refused)} of its row(s), which stay 待填: "
            + "; ".join(refused)]


def cluster_names(where: Where, ledger: Sequence[RunRecord]) -> list[str]:
    """The clusters a matrix's rows may be laid out on, in order: --cluster, else those the ledger's runs of it went
    to (most first), then every cluster file (`local` first: the verbs' default)."""
    if where.cluster:
        return [where.cluster]
    used = [c for c, _ in Counter(r.cluster for r in ledger if r.cluster).most_common()]
    files = sorted((p.stem for p in where.ws.clusters_dir.glob("*.yaml")), key=lambda n: (n != "local", n))
    return used + [n for n in files if n not in used]


def candidate_clusters(where: Where, ledger: Sequence[RunRecord]) -> list[Cluster]:
    """``cluster_names``'s clusters that load (a broken file is `plan`'s to report, not collect's)."""
    clusters: list[Cluster] = []
    for name in cluster_names(where, ledger):
        try:
            clusters.append(where.ws.load_cluster(name))
        except XdimoError:
            continue
    return clusters


def workspace_clusters(folder: Path) -> list[Cluster]:
    """Every readable cluster file: legacy logs name a queue, the cluster files say its GPU model."""
    found = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            found.append(load_cluster(path))
        except XdimoError:
            continue
    return found


def from_logs(clusters_dir: Path, logs: Sequence[str], cache: Cache, precision: str | None) -> list[RunRecord]:
    """The legacy logs' runs (``--logs``); XdimoError where a path is missing or holds no training log line."""
    paths = [Path(p) for p in logs]
    for p in paths:
        if not p.exists():
            raise XdimoError(f"--logs {p}: no such file or folder")
    ctx = legacy_context(workspace_clusters(clusters_dir), precision)
    records = legacy_records(paths, ctx, cache)
    if not records:
        raise XdimoError(f"--logs {', '.join(logs)}: no training log lines or scheduler summaries found")
    return records


def missing_baseline_warnings(runs: Sequence[RunRecord], gpus: int | None) -> list[str]:
    """One line naming the workloads that have no run of the --baseline-gpus count (their cells say so), each with
    its local batch where studies of its model on its hardware differ in batch; none without --baseline-gpus."""
    if gpus is None or not runs:
        return []
    every = baselines.RunSet.of(runs)
    missing = baselines.missing_baselines(every, gpus)
    if not missing:
        return []
    batches: dict[tuple[str, str, str | None], set[int | None]] = {}
    for study in every.card_counts:  # (hardware, model, moe, workload, local batch)
        batches.setdefault(study[:3], set()).add(study[4])
    what = "; ".join(f"{hw(r)} {model_display(r.model, r.moe)} [{workload_text(r)}"
                     + (f", {batch_text(r)}]" if len(batches[baselines.group_key(r)[:3]]) > 1 else "]")
                     for r in missing)
    return [f"warning: --baseline-gpus {gpus}: no {gpus}-card run of {what}; their speedups are "
            f"待填(缺{gpus}卡基准)"]


def fill_baseline_notes(runs: Sequence[RunRecord], baseline_gpus: int | None) -> list[str]:
    """--fill writes seed 000's speedup column, against 1-card runs only: one line where the tables (and plots)
    compare some workload with more cards (--baseline-gpus N, or a workload never run on 1 card)."""
    if not runs:
        return []
    if baseline_gpus is not None:
        if baseline_gpus == 1:
            return []
        return [f"note: --baseline-gpus {baseline_gpus} applies to the tables and plots; --fill still writes "
                "speedups against 1-card runs"]
    runs = baselines.RunSet.of(runs)
    multi = {baselines.group_key(r) for r in runs if r.has_metrics and baselines.baseline_gpus(r, runs) > 1}
    if not multi:
        return []
    return [f"note: the tables and plots compare {len(multi)} workload(s) that have no 1-card run with their "
            "fewest-card run; --fill writes speedups against 1-card runs only, so their speedup cells stay 待填"]
