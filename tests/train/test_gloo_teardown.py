"""A finished multi-rank run exits 0: no gloo thread is left to free a tensor while the interpreter shuts down.

Gloo frees a finished collective on its own thread after the caller was woken, and freeing a tensor Python has seen
takes the GIL: a thread that gets it once the interpreter is finalising aborts the process (SIGABRT, "terminate
called without an active exception"), about one FSDP run in ten on a 2-core CI machine. Both ranks here share one
core, which makes the race the rule: with a plain barrier before destroy_process_group, 11 runs in 12 aborted."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

RANK_SCRIPT = textwrap.dedent("""
    import os
    import sys
    from pathlib import Path

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before any thread: every thread of both ranks on it

    import torch
    import torch.distributed as dist

    from xdimo.train.distributed import end_distributed, setup_distributed
    from xdimo.train.run_config import TrainConfig

    d = setup_distributed(TrainConfig(run_dir=Path(sys.argv[1]), parallel="ddp"))
    # under FSDP2, DTensor's caches hold the group past destroy_process_group, so its threads live on; as here
    kept = dist.group.WORLD
    x = torch.ones(4096)
    dist.all_gather([torch.empty(4096) for _ in range(d.world)], x)  # collectives on tensors Python has seen
    dist.all_reduce(x)
    for t in [torch.ones(1024) for _ in range(8)]:
        dist.all_reduce(t, async_op=True)  # handles dropped at once: gloo's threads hold the last references
    end_distributed(d, finished=True)
""")


def _run_two_ranks(tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_ranks_exit_cleanly_after_their_last_collectives(tmp_path):
    for attempt in range(3):  # before the fix, 11 runs in 12 aborted
        proc = _run_two_ranks(tmp_path)
        assert proc.returncode == 0, f"run {attempt + 1}:\n{proc.stderr[-3000:]}"
        assert "terminate called" not in proc.stderr
