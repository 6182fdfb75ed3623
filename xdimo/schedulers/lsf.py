"""IBM Spectrum LSF: `bsub < script`, `bjobs`, `bhosts`, `bkill` (lsf_family.py does the work)."""

from __future__ import annotations

import os

from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import HostRow
from xdimo.schedulers.lsf_family import Commands, LSFFamilyScheduler


class LSFScheduler(LSFFamilyScheduler):
    kind = "lsf"
    commands = Commands(("bsub",), ("bjobs",), ("bhosts",), ("bkill",), "#BSUB")

    def submit_env(self) -> dict[str, str]:
        # Past MAX_PEND_JOBS, bsub prints "Pending job threshold reached. Retrying in 60 seconds..." and retries
        # forever unless LSB_NTRIES is set (lsb.params MAX_PEND_JOBS): one try, so the refusal comes back
        # to us as a PendingLimitError. A user's own LSB_NTRIES wins.
        return {"LSB_NTRIES": "1", **os.environ}

    def hosts(self) -> list[HostRow]:
        rows = super().hosts()
        if not self.cluster.options.get("host_gpu_models", True):
            return rows
        gpus = P.parse_bhosts_gpu(self.run(["bhosts", "-w", "-gpu"]).output)
        by_host: dict[str, list[str]] = {}
        for g in gpus:
            by_host.setdefault(g.host, []).append(g.model)
        return [HostRow(r.name, r.status, r.max_slots, r.njobs, r.run,
                        gpu_models=tuple(by_host.get(r.name, ())),
                        ngpus=len(by_host[r.name]) if r.name in by_host else None) for r in rows]
