"""IBM Spectrum LSF: `bsub < script`, `bjobs`, `bhosts`, `bkill` (lsf_family.py does the work)."""

from __future__ import annotations

import os
import re

from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import HostRow
from xdimo.schedulers.lsf_family import Commands, LSFFamilyScheduler
from xdimo.schedulers.runner import CommandResult, looks_transient

# What a batch command prints each time it cannot get an answer from mbatchd and would try again (IBM LSF 10.1,
# "Customize batch command messages"; lsf.conf LSB_MBD_BUSY_MSG "LSF is processing your request. Please wait...",
# LSB_MBD_CONNECT_FAIL_MSG "Cannot connect to LSF. Please wait...", LSB_MBD_DOWN_MSG "LSF is down. Please
# wait...", LSB_MBD_QUERY_RETRY_MSG "Batch system concurrent job query limit exceeded. LSF is retrying. Please
# wait..."). With LSB_NTRIES=1 the command gives up after the first: a busy mbatchd is asked again (run_command's
# back-off, `retries`), not taken for a `bjobs -o` the site does not know or for a failed bkill. (bsub is never
# retried: LSFFamilyScheduler.submit.)
RETRY_MSG_RE = re.compile(r"Please\s+wait", re.IGNORECASE)


class LSFScheduler(LSFFamilyScheduler):
    kind = "lsf"
    commands = Commands(("bsub",), ("bjobs",), ("bhosts",), ("bkill",), "#BSUB")
    # A site whose lsb.hosts defines host groups with CONDENSE=Y gets one `bhosts` row per such group, its name in
    # HOST_NAME: a down member is hidden and a pool's `hosts:` globs match no row. "The -l and -X options display
    # noncondensed output" (IBM LSF 10.1, bhosts command reference; "View host information": `bhosts -X`,
    # condensed host groups in an uncondensed format). JH's jhosts documents no -X (scheduler-formats.md).
    hosts_args = ("-X", "-w")
    # ZOMBI: a job killed while UNKWN (its host unreachable) or removed with `bkill -r`; LSF changes it to EXIT
    # only once the host answers and the job is gone (IBM LSF 10.1, "LSF terms and concepts", job states ZOMBI;
    # bjobs command reference, STAT). Until then it may still run on its GPUs; a job stuck on an unreachable host
    # keeps its resources "unavailable to the cluster" until LSF "moves the job to the EXIT state to free up
    # resources" ("Removing hung jobs from LSF"). So it holds its cards here: counting them free could send a
    # run onto cards that are taken, or onto a host that is unreachable.
    # Its run is settled KILLED all the same (lsf_parse.FINAL): what is left of it is not ours to wait for.
    # JH lists ZOMBI among its final states (scheduler-formats.md) and is left as it was.
    holding_states = P.HOLDING | {"ZOMBI"}

    def transient(self, res: CommandResult) -> bool:
        return looks_transient(res) or (not res.ok and RETRY_MSG_RE.search(res.output) is not None)

    def command_env(self) -> dict[str, str]:
        # Every batch command retries contacting mbatchd until it answers, for ever unless LSB_NTRIES is set (IBM
        # LSF 10.1 configuration reference, lsf.conf LSB_NTRIES, also read from the environment: not defined, a
        # command retries indefinitely; LSB_QUERY_RETRY_INTERVAL_STEP: retries go on "until the attempt succeeds
        # or the LSB_NTRIES value is reached"). With mbatchd down, `bjobs`, `bhosts` and `bkill` print "LSF is
        # down. Please wait..." (LSB_MBD_DOWN_MSG) and hang until our timeout, which then reports a timeout instead
        # of LSF's words. One try each (runner.run_command retries what looks transient with back-off, `retries`
        # in the cluster file), so `status` fails fast saying what LSF said.
        # And past MAX_PEND_JOBS, bsub prints "Pending job threshold reached. Retrying in 60 seconds..." and
        # retries forever unless LSB_NTRIES is set (lsb.params MAX_PEND_JOBS): one try, so the refusal comes back
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
