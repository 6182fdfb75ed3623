"""`xdimo-jobs hosts`: free / total cards per pool, and the site rules."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

import click

from xdimo.cli.common import App, table, verb
from xdimo.schedulers import get_scheduler
from xdimo.schedulers.base import PoolStatus


@click.command()
@click.option("--nodes", is_flag=True, help="Also list each host: status, slots, jobs, GPUs (where the scheduler "
              "tells: jhosts/bhosts).")
@verb
def hosts(app: App, nodes: bool) -> None:
    """Free and total cards per pool, live from the scheduler, and the site rules.

    \b
    Examples:
      xdimo-jobs hosts                         # this machine
      xdimo-jobs --cluster xdimo-jh hosts      # the JH site: gpu_6000ada, gpu_h200, gpu_pro6000
      xdimo-jobs hosts --cluster slurm-local --json
      xdimo-jobs --cluster xdimo-jh hosts --nodes   # and each host: status, slots, GPU models
    """
    cluster = app.cluster
    scheduler = get_scheduler(cluster, app.ws.root)
    pools = scheduler.pools()
    # per-host rows where the backend has them (JH/LSF: jhosts -w / bhosts -w, GPU models from attrib)
    host_rows = scheduler.hosts() if nodes else []
    rules = {"cpu_per_gpu": cluster.cpu_per_gpu, "max_pending": cluster.max_pending}
    data = {"cluster": cluster.name, "scheduler": cluster.scheduler, "rules": rules,
            "pools": [p.to_dict() for p in pools]}
    if nodes:
        data["hosts"] = [asdict(h) for h in host_rows]

    def text() -> str:
        # where the pools' hosts are known, the most free on one host: what a single-node run can get
        by_host = any(p.host_free is not None for p in pools)
        rows = [(p.name, p.gpu_model, p.total, p.taken, p.down, p.used, p.free)
                + ((host_free_text(p),) if by_host else ()) + (p.pending_jobs,) for p in pools]
        common = shared_source([p.source for p in pools if p.source])
        lines = [
            f"cluster {cluster.name} ({cluster.scheduler})",
            table(["pool", "gpu", "cards", "taken", "down", "in use", "free"]
                  + (["largest free on one host"] if by_host else []) + ["my pending"], rows),
            f"rules: CPU slots = {cluster.cpu_per_gpu} x GPUs; at most {cluster.max_pending} pending job(s)"
            + (f"; usage from {common}" if common else ""),
        ]
        # A pool that lists its hosts adds what their status did to it (the common part said once above).
        lines += [f"{p.name}: {rest}" for p in pools if (rest := p.source.removeprefix(common).lstrip("; "))]
        if nodes:
            lines += ["", table(["host", "status", "max slots", "jobs", "running", "gpus", "gpu models"],
                                [(h.name, h.status, h.max_slots, h.njobs, h.run, h.ngpus,
                                  gpu_models_text(h.gpu_models)) for h in host_rows])
                      if host_rows else "no per-host view from this scheduler"]
        return "\n".join(lines)

    app.emit(data, text)


def host_free_text(pool: PoolStatus) -> str:
    """``2 (free per host: 2 2 1 0)``; "-" where the pool's hosts are unknown (no `hosts:` in the cluster file).
    A pool of many hosts shows its largest few."""
    if pool.host_free is None:
        return "-"
    shown = " ".join(map(str, pool.host_free[:8])) + (" ..." if len(pool.host_free) > 8 else "")
    return f"{pool.largest_on_one_host} (free per host: {shown or 'no host up'})"


def shared_source(sources: list[str]) -> str:
    """The "; "-separated parts every pool's source begins with ("jjobs -u all (slots / 8)"): said once, on the
    rules line; what one pool adds (its hosts' status) is its own line, never taken for everyone's."""
    parts = [s.split("; ") for s in sources]
    shared = []
    for column in zip(*parts, strict=False):
        if len(set(column)) != 1:
            break
        shared.append(column[0])
    return "; ".join(shared)


def gpu_models_text(models: tuple[str, ...] | list[str]) -> str | None:
    """A host's cards by model, like ones grouped in first-seen order: "8x NVIDIA H200", not the name 8 times."""
    counts = Counter(m for m in models if m)
    return ", ".join(f"{n}x {m}" if n > 1 else m for m, n in counts.items()) or None
