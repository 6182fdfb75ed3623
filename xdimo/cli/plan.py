"""`xdimo-jobs plan MATRIX`: the runs, the rule checks, the batches and an estimate of GPU-hours."""

from __future__ import annotations

import click

from xdimo.cli.common import App, table, verb
from xdimo.plan import ASSUMED_MFU, check_matrix, estimate_hours, load_matrix, waves
from xdimo.rules import cpu_slots


@click.command()
@click.argument("matrix")
@verb
def plan(app: App, matrix: str) -> None:
    """Expand MATRIX (jobs/NAME.yaml or a path) into runs, check the site rules, show the batches.

    Nothing is submitted. Batches assume every usable card is free; `submit` uses the live view.

    \b
    Examples:
      xdimo-jobs plan demo
      xdimo-jobs --cluster xdimo-jh plan jobs/table1-scaling.yaml
      xdimo-jobs plan jobs/hw-4gpu.yaml --cluster xdimo-jh --json
    """
    cluster = app.cluster
    m = load_matrix(app.ws.matrix_path(matrix))
    check_matrix(m, cluster)
    plan_waves = waves(list(m.runs), cluster)
    wave_of = {s.run_id: i + 1 for i, w in enumerate(plan_waves) for s in w}
    rows, data = [], []
    for s in m.runs:
        hours = estimate_hours(s, cluster.pool(s.pool).gpu_model)
        gpu_h = None if hours is None else hours * s.gpus
        data.append({"run_id": s.run_id, "model": s.model_name, "pool": s.pool, "gpus": s.gpus, "nodes": s.nodes,
                     "cpus": cpu_slots(cluster, s), "parallel": s.parallel, "local_batch": s.local_batch,
                     "global_batch": s.global_batch, "steps": s.steps, "precision": s.precision,
                     "batch": wave_of[s.run_id], "est_hours": hours, "est_gpu_hours": gpu_h})
        rows.append((s.run_id, s.model_name, s.pool, s.gpus, cpu_slots(cluster, s), s.nodes, s.parallel,
                     s.global_batch, s.steps, wave_of[s.run_id], "-" if gpu_h is None else f"{gpu_h:.2f}"))
    known = [d["est_gpu_hours"] for d in data if d["est_gpu_hours"] is not None]

    def text() -> str:
        lines = [f"matrix {m.name}: {len(m.runs)} runs on cluster {cluster.name}; every rule holds "
                 f"(CPU slots = {cluster.cpu_per_gpu} x GPUs, GPUs fit their pool, max {cluster.max_pending} "
                 "pending)",
                 table(["run", "model", "pool", "gpus", "cpus", "nodes", "parallel", "global batch", "steps",
                        "batch", "est GPU-h"], rows)]
        for i, w in enumerate(plan_waves):
            lines.append(f"batch {i + 1}: " + ", ".join(f"{s.run_id} ({s.gpus}x {s.pool})" for s in w))
        if known:
            lines.append(f"estimated total: {sum(known):.2f} GPU-hours (assumes {ASSUMED_MFU:.0%} MFU of each "
                         "pool's dense peak; `collect` reports measured figures)")
        return "\n".join(lines)

    app.emit({"matrix": m.name, "cluster": cluster.name, "runs": data,
              "batches": [[s.run_id for s in w] for w in plan_waves],
              "assumed_mfu": ASSUMED_MFU}, text)
