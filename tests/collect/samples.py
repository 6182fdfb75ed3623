"""Sample inputs shared by several collect tests: a JH job summary and an H200 run record."""

from __future__ import annotations

from tests.collect.helpers import record
from xdimo.collect.derive.records import RunRecord

SUMMARY = ("Sender: Unischeduler System <u@login01>\nSubject: Job 123: <x> Done\n"
           "Job was executed on host(s) <32*gpu13>, in queue <gpu_6000ada>, as user <u>.\n"
           "Started at 2025-06-30 20:00:00\nResults reported at 2025-06-30 21:00:00\nSuccessfully completed.\n")



def _h200(run_id: str, gpus: int, sps: float, **kw: object) -> RunRecord:
    return record(run_id, gpus, sps, pool="gpu_h200", gpu_name="NVIDIA H200", **kw)  # type: ignore[arg-type]
