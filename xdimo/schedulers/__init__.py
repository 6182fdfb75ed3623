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


def get_scheduler(cluster: Cluster, root: Path) -> Scheduler:
    module, name = BACKENDS[cluster.scheduler]
    backend = getattr(importlib.import_module(module), name)
    return backend(cluster, root)
