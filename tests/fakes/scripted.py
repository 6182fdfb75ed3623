"""A JH (or LSF) backend whose scheduler commands answer from a script, for the tests of how it reads answers;
every argv it runs is recorded. (The fake jjobs/jsub on PATH, tests/fakes/fakesched.py, is for whole workflows.)"""

from __future__ import annotations

from pathlib import Path

from xdimo.config import Cluster, Pool
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf_family import LSFFamilyScheduler
from xdimo.schedulers.runner import CommandResult


def scripted_jh(tmp_path: Path, answers: list[tuple[int, str]], *, gpus: int = 5, max_pending: int = 1,
                kind: type[LSFFamilyScheduler] = JHScheduler) -> tuple[JHScheduler, list[list[str]]]:
    """A backend (JH, or ``kind``: LSFScheduler) on one pool (gpu_h200, ``gpus`` cards) whose n-th command answers
    ``answers[n]`` (exit code, output); the argv it ran, in order."""
    cluster = Cluster(name="c", scheduler="jh" if kind is JHScheduler else "lsf",
                      pools={"gpu_h200": Pool("gpu_h200", "H200", gpus)}, options={"retries": 0},
                      max_pending=max_pending)
    be = kind(cluster, tmp_path)
    calls: list[list[str]] = []

    def run(argv: list[str], stdin: str | None = None, retries: int | None = None,
            env: dict[str, str] | None = None) -> CommandResult:
        code, text = answers[len(calls)]
        calls.append(argv)
        return CommandResult(tuple(argv), code, text, "")  # notices read on stdout too: the parsers find them

    be.run = run  # type: ignore[method-assign]
    return be, calls  # type: ignore[return-value]
