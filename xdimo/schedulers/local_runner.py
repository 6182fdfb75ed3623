"""The detached process behind one local job: wait for cards (FIFO per pool), run the script, record the end.

Started by LocalScheduler.submit as `python -m xdimo.schedulers.local_runner ROOT JOB_ID` in a new session,
so `kill` can signal the runner and the job's whole process tree at once (os.killpg).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import psutil

from xdimo.config import Cluster
from xdimo.rundir import RunDir
from xdimo.schedulers.local import LocalJob, LocalState, first_in_line, free_cards, start_time
from xdimo.schedulers.marker import shell_exit_code, state_for_exit
from xdimo.states import JobState

POLL_S = 0.5
# After a kill, how long the job may take to checkpoint before the runner SIGKILLs it: longer than the grace torchrun
# gives its workers (render.STOP_GRACE_S, a test keeps them in order), so torchrun ends them itself first.
KILL_GRACE_S = 70


def wait_for_cards(state: LocalState, job_id: str, cards: int, taken: int) -> LocalJob | None:
    while True:
        with state.locked() as st:
            job = st.load(job_id)
            if job.kill_requested:
                job.state = JobState.KILLED.value
                st.save(job)
                return None
            jobs = st.all()
            free = free_cards(jobs, job, cards, taken)
            if first_in_line(jobs, job) and len(free) >= job.gpus:
                job.cards = free[: job.gpus]
                job.state = JobState.RUNNING.value
                st.save(job)
                return job
        time.sleep(POLL_S)


def run(root: Path, job_id: str) -> int:
    state = LocalState(root)
    job = record_self(state, job_id)
    if job is None:
        return 0
    cluster = load_cluster_for(root, job)
    pool = cluster.pools[job.pool]
    killed = {"flag": False}

    child: dict[str, int] = {}

    def on_term(signum: int, frame: FrameType | None) -> None:
        killed["flag"] = True
        if "pid" in child:  # pass the warning on, so the training can checkpoint
            signal_group(child["pid"], signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    started = wait_for_cards(state, job_id, pool.cards, pool.taken)
    if started is None or killed["flag"]:
        finish(state, job_id, JobState.KILLED, None)
        return 0
    env = dict(os.environ, XDIMO_JOB_ID=job_id)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, started.cards)) if pool.gpu_model != "cpu" else ""
    run_dir = RunDir(Path(started.log_dir))
    with open(run_dir.output(job_id), "ab") as out, open(run_dir.error(job_id), "ab") as err:
        proc = subprocess.Popen(["bash", started.script], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                cwd=str(root), env=env, start_new_session=True)
        child["pid"] = proc.pid
        record_child(state, job_id, proc.pid)
        if killed["flag"]:
            signal_group(proc.pid, signal.SIGTERM)
        code = shell_exit_code(wait_child(proc, killed))  # 143, as the other schedulers show it, not -15
    if killed["flag"]:
        finish(state, job_id, JobState.KILLED, code)
    else:
        finish(state, job_id, state_for_exit(code), code)  # the marker's rule: a SIGTERM from outside is KILLED
    return 0


def wait_child(proc: subprocess.Popen[bytes], killed: dict[str, bool]) -> int:
    """Wait for the job; after a kill give it KILL_GRACE_S to save a checkpoint (torchrun gives its workers
    STOP_GRACE_S, then kills them itself), then SIGKILL the group and every process it started."""
    deadline: float | None = None
    while True:
        try:
            return proc.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            pass
        if killed["flag"]:
            deadline = deadline or time.monotonic() + KILL_GRACE_S  # a clock step must not cut the grace
            if time.monotonic() > deadline:
                kill_tree(proc.pid)


def kill_tree(pid: int) -> None:
    """SIGKILL the job's process group and its descendants in other sessions: torchrun starts each worker in a
    session of its own, which a group signal misses, so a worker would outlive its job and hold its cards."""
    try:
        tree = psutil.Process(pid).children(recursive=True)  # before the kill: orphans are re-parented after
    except psutil.Error:
        tree = []
    signal_group(pid, signal.SIGKILL)
    for child in tree:
        with contextlib.suppress(psutil.Error):
            child.kill()


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def record_self(state: LocalState, job_id: str) -> LocalJob | None:
    """Write this runner's pid into the job's record first thing, so the job counts as live even if its submitter
    died (or ran out of disk) before recording it. None: the record was settled as ended before this runner
    came up (it was too slow to start), and the job must not run."""
    with state.locked() as st:
        job = st.load(job_id)
        if JobState(job.state).terminal:
            return None
        me = os.getpid()
        job.runner_pid, job.runner_start = me, start_time(me)
        st.save(job)
        return job


def record_child(state: LocalState, job_id: str, pid: int) -> None:
    """So `poll` and `kill` can still find the job if this runner dies."""
    with state.locked() as st:
        job = st.load(job_id)
        job.child_pid, job.child_start = pid, start_time(pid)
        st.save(job)


def finish(state: LocalState, job_id: str, end: JobState, code: int | None) -> None:
    with state.locked() as st:
        job = st.load(job_id)
        job.state, job.exit_code = end.value, code
        st.save(job)


def load_cluster_for(root: Path, job: LocalJob) -> Cluster:
    """The pool's card count: from the cluster file the job was submitted to (its record names it)."""
    from xdimo.workspace import Workspace

    return Workspace.open(str(root)).load_cluster(job.cluster)


if __name__ == "__main__":
    # The queue is found through the working folder, the workspace (LocalScheduler.submit starts the runner there),
    # not by name: a workspace moved while the job runs gets the job's end in its new place, and the old root is
    # not made again where the README says to put an `ln -s NEW OLD`.
    os.chdir(sys.argv[1])
    sys.exit(run(Path(os.curdir), sys.argv[2]))
