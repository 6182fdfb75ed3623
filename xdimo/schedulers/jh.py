"""JH UniScheduler (景行): `jsub < script`, `jjobs`, `jhosts`, `jctrl kill` (the user's site).

Same dialect as LSF (lsf_family.py); what differs: the command names, `#JSUB` lines, the 4096-byte script
limit, `-W` only on the command line (it is not valid on #JSUB lines), and GPU models from `jhosts attrib`.
"""

from __future__ import annotations

import logging

from xdimo.schedulers import jh_parse
from xdimo.schedulers.base import HostRow
from xdimo.schedulers.lsf_family import Commands, LSFFamilyScheduler
from xdimo.spec import RunSpec

log = logging.getLogger(__name__)

SCRIPT_LIMIT = 4096  # bytes: jsub fails on a longer script
MAX_ATTRIB_HOSTS = 64  # `jhosts attrib -l` is one call per host: only for a modest cluster


class JHScheduler(LSFFamilyScheduler):
    kind = "jh"
    commands = Commands(("jsub",), ("jjobs",), ("jhosts",), ("jctrl", "kill"), "#JSUB",
                        max_script_bytes=SCRIPT_LIMIT)

    def submit_args(self, run: RunSpec) -> list[str]:
        return ["-W", str(run.walltime_min)] if run.walltime_min else []

    def hosts(self) -> list[HostRow]:
        rows = super().hosts()
        attrib = self.run(["jhosts", "attrib", "-w"])
        ngpus = {a.host: a.ngpus for a in jh_parse.parse_attrib_wide(attrib.output)}
        models: dict[str, tuple[str, ...]] = {}
        if self.cluster.options.get("host_gpu_models", True) and len(rows) <= MAX_ATTRIB_HOSTS:
            for row in rows:
                if ngpus.get(row.name):
                    gpus = jh_parse.parse_attrib_gpus(self.run(["jhosts", "attrib", "-l", row.name]).output,
                                                      row.name)
                    models[row.name] = tuple(g.model for g in gpus)
        return [HostRow(r.name, r.status, r.max_slots, r.njobs, r.run, gpu_models=models.get(r.name, ()),
                        ngpus=ngpus.get(r.name)) for r in rows]
