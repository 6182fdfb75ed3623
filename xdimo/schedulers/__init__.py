"""Scheduler backends behind one interface (base.Scheduler). Backends are imported only when used."""

from __future__ import annotations

import importlib
from pathlib import Path

from xdimo.config import Cluster
from xdimo.schedulers.base import Scheduler

BACKENDS = {
    "local": ("xdimo.schedulers.local", "LocalScheduler"),
    "jh": ("xdimo.schedulers.jh", "JHScheduler"),
    "lsf": ("xdimo.schedulers.lsf", "LSFScheduler"),
    "slurm": ("xdimo.schedulers.slurm", "SlurmScheduler"),
}


def backend_class(kind: str) -> type[Scheduler]:
    """The backend class for a scheduler kind (``cluster.scheduler``), imported now."""
    module, name = BACKENDS[kind]
    return getattr(importlib.import_module(module), name)


def get_scheduler(cluster: Cluster, root: Path) -> Scheduler:
    return backend_class(cluster.scheduler)(cluster, root)


def job_id_pattern(kind: str) -> str:
    """What ``kind``'s scheduler replaces with the job id in an output path (``%J``, ``%j``)."""
    return backend_class(kind).job_id_pattern


def poll_interval(cluster: Cluster) -> float | None:
    """Seconds between a watcher's polls of ``cluster`` (its backend's ``poll_interval``, decided by the
    scheduler kind, never by the cluster's name); None: poll with backoff.PollBackoff."""
    return backend_class(cluster.scheduler).poll_interval
