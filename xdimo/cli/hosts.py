"""`xdimo-jobs hosts`: free / total cards per pool, and the site rules."""

from __future__ import annotations

import click

from xdimo.cli.common import App, table, verb
from xdimo.schedulers import get_scheduler


@click.command()
@verb
def hosts(app: App) -> None:
    """Free and total cards per pool, live from the scheduler, and the site rules.

    \b
    Examples:
      xdimo-jobs hosts                         # this machine
      xdimo-jobs --cluster xdimo-jh hosts      # the JH site: gpu_6000ada, gpu_h200, gpu_pro6000
      xdimo-jobs hosts --cluster slurm-local --json
    """
    cluster = app.cluster
    pools = get_scheduler(cluster, app.ws.root).pools()
    rules = {"cpu_per_gpu": cluster.cpu_per_gpu, "max_pending": cluster.max_pending}
    data = {"cluster": cluster.name, "scheduler": cluster.scheduler, "rules": rules,
            "pools": [{"pool": p.name, "gpu": p.gpu_model, "cards": p.total, "taken": p.taken, "used": p.used,
                       "free": p.free, "my_pending": p.pending_jobs, "source": p.source} for p in pools]}

    def text() -> str:
        rows = [(p.name, p.gpu_model, p.total, p.taken, p.used, p.free, p.pending_jobs) for p in pools]
        sources = sorted({p.source for p in pools if p.source})
        return "\n".join([
            f"cluster {cluster.name} ({cluster.scheduler})",
            table(["pool", "gpu", "cards", "taken", "in use", "free", "my pending"], rows),
            f"rules: CPU slots = {cluster.cpu_per_gpu} x GPUs; at most {cluster.max_pending} pending job(s)"
            + (f"; usage from {', '.join(sources)}" if sources else ""),
        ])

    app.emit(data, text)
