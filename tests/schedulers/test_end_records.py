"""The end records every job script writes (job.exit, the marker every backend settles a job by, and job.wall): their
bytes are reserved as the job starts and overwritten in place as it ends (jobs/templates/_reserve_end_records.sh.j2,
_write_end_records.sh.j2), so a disk or quota that fills while the job runs cannot lose its exit code. It did: the
script's last `echo "$rc" > job.exit` made an empty file on the full disk, and the run, which had failed, was LOST.

The scripts are run by bash with a stand-in for the launch. The full disk itself is a 1 MiB tmpfs mounted in a user
and mount namespace of the test's own (`unshare -Urm`: no root needed where user namespaces are allowed); the test
skips where it cannot mount one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from xdimo.config import Cluster, Pool
from xdimo.render import render_script
from xdimo.rundir import MARKER, WALL_FILE, script_wall_s
from xdimo.schedulers.marker import parse_marker, read_exit_marker
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
KINDS = ["local", "jh", "lsf", "slurm"]

# Stands in for the launch (torchrun's python, or srun): keeps what the end records hold while the job runs,
# fills the run's disk when asked, and fails with exit 3.
LAUNCH = """#!/bin/bash
cp "$XDIMO_LOG_DIR/job.exit" "$XDIMO_LOG_DIR/job.wall" "$SEEN/" 2>/dev/null
stat -c %i "$XDIMO_LOG_DIR/job.exit" > "$SEEN/inode" 2>/dev/null
if [ -n "$FILL" ]; then dd if=/dev/zero of="$XDIMO_LOG_DIR/filler" bs=64k 2>/dev/null; fi
exit 3
"""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "clusters").mkdir(parents=True)
    shutil.copy(REPO / "clusters" / "slurm-local.yaml", root / "clusters")
    shutil.copytree(REPO / "jobs" / "templates", root / "jobs" / "templates")
    return Workspace.open(str(root))


def render(ws: Workspace, kind: str, nodes: int = 1, python: str = "python",
           setup: tuple[str, ...] = ()) -> tuple[str, Path]:
    """The kind's rendered script for a run (the cluster's ``setup`` lines first), and the run's folder as the
    script names it."""
    if kind == "slurm":
        cluster = replace(ws.load_cluster("slurm-local"), python=python, setup=setup)
        spec = RunSpec(matrix="t", pool="gpu_6000ada", gpus=4 * nodes, nodes=nodes)
    else:
        pools = {"p": Pool("p", "cpu" if kind == "local" else "H200", 16, cards_per_node=8, queue="gpu")}
        cluster = Cluster(name=f"site-{kind}", scheduler=kind, pools=pools, python=python, setup=setup)
        spec = RunSpec(matrix="t", pool="p", gpus=8 * nodes, nodes=nodes)
    return render_script(spec, cluster, ws), ws.log_dir(spec.run_id).resolve()


def launch_lines(script: str) -> list[int]:
    lines = script.splitlines()
    return [i for i, line in enumerate(lines) if "torch.distributed.run" in line or line.startswith("srun ")]


FDS = {WALL_FILE: "xdimo_wall", MARKER: "xdimo_exit"}  # the variables holding the descriptors bash picked for them


def statement_at(lines: list[str], i: int) -> str:
    """Line ``i`` and the lines it continues on (a trailing backslash), as one."""
    j = i
    while lines[j].endswith("\\"):
        j += 1
    return " ".join(lines[i:j + 1])


@pytest.mark.parametrize(("kind", "nodes"), [("local", 1), *[(k, n) for k in KINDS[1:] for n in (1, 2)]])
def test_every_script_reserves_its_end_records_and_ends_over_them_in_place(ws: Workspace, kind: str,
                                                                           nodes: int) -> None:
    script, log_dir = render(ws, kind, nodes)
    lines = script.splitlines()
    launches = launch_lines(script)
    # each opened once reserved, on a descriptor of its own (/dev/null if it cannot be), before the job's program
    # starts, and never inherited by it
    assert all(re.search(r" \{xdimo_wall\}>&- \{xdimo_exit\}>&-( &)?$", statement_at(lines, i)) for i in launches)
    for name, var in FDS.items():
        path = str(log_dir / name)
        opened = lines.index(f"exec {{{var}}}<> {path} || exec {{{var}}}> /dev/null")
        assert opened < launches[0]
        named = [(i, part) for i, line in enumerate(lines) for part in line.split("; ") if path in part]
        reservation = opened - (1 if name == WALL_FILE else 2)
        assert [i for i, _ in named] == [reservation, opened]  # by name: the reservation, then its exec alone
        reserved = re.fullmatch(rf"printf '(%-\d+s\\n)' .+ > {re.escape(path)}", named[0][1])
        fd = f'"${var}"'
        ends = [(i, re.fullmatch(rf"\s*printf '(%-\d+s\\n)' .+ >&{re.escape(fd)}", line.split("; ")[0]))
                for i, line in enumerate(lines) if line.split("; ")[0].endswith(f">&{fd}")]
        assert reserved and ends and all(m for _, m in ends), (named, ends)
        assert ends[-1][0] > launches[-1]  # the end, written through the descriptor...
        assert {m.group(1) for _, m in ends} == {reserved.group(1)}  # ...at the reserved width: no new byte


def run_script(ws: Workspace, kind: str, tmp_path: Path, fill: bool = False,
               namespace: list[str] | None = None) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """Run the kind's script with the stand-in launch; returns bash's result, the run folder, and the folder
    holding what the end records were while the job ran."""
    bin_dir, seen = tmp_path / "bin", tmp_path / "seen"
    bin_dir.mkdir()
    seen.mkdir()
    launch = bin_dir / "launch"
    launch.write_text(LAUNCH)
    launch.chmod(0o755)
    for tool, text in (("srun", LAUNCH), ("scontrol", "#!/bin/bash\necho node1\n")):
        (bin_dir / tool).write_text(text)
        (bin_dir / tool).chmod(0o755)
    script, log_dir = render(ws, kind, python=str(launch))
    (tmp_path / "job.sh").write_text(script)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SEEN": str(seen),
           "SLURM_JOB_ID": "7", "SLURM_NNODES": "1", "SLURM_JOB_NODELIST": "node1", "FILL": "1" if fill else ""}
    if namespace is None:
        log_dir.mkdir(parents=True)  # as submit makes it (the local and Slurm scripts make it themselves too)
        argv = ["bash", str(tmp_path / "job.sh")]
    else:
        log_dir.parent.mkdir(parents=True)  # logs/, where the namespace mounts its tmpfs
        argv = [*namespace, str(log_dir), str(tmp_path / "job.sh")]
    done = subprocess.run(argv, env=env, cwd=ws.root, capture_output=True, text=True, timeout=60)
    return done, log_dir, seen


@pytest.mark.parametrize("kind", KINDS)
def test_the_reserved_records_read_as_not_ended_until_the_job_ends(ws: Workspace, tmp_path: Path, kind: str) -> None:
    done, log_dir, seen = run_script(ws, kind, tmp_path)
    assert done.returncode == 3, done.stderr
    assert (seen / MARKER).exists() and (seen / WALL_FILE).exists()  # there while the job ran...
    assert read_exit_marker(seen) is None and script_wall_s(seen) is None  # ...and no exit code or time yet
    assert read_exit_marker(log_dir) == 3 and script_wall_s(log_dir) is not None
    for name in (MARKER, WALL_FILE):  # written over the reserved bytes, not grown
        assert (log_dir / name).stat().st_size == (seen / name).stat().st_size
    assert (log_dir / MARKER).stat().st_ino == int((seen / "inode").read_text())



# -- a workspace moved while the job runs ------------------------------------------------------------------------------

# Stands in for the cluster's python: as torchrun (`-m ...`), says it started and which of the script's descriptors it
# inherited, holds until told to end, and fails with exit 3; anything else (the multi-node port probe) fails at once.
HELD = """#!/bin/bash
[ "$1" = -m ] || exit 1
for fd in /proc/$$/fd/*; do
  case "$(readlink "$fd")" in */job.exit|*/job.wall) echo "$fd" >> "$XDIMO_FAKE_STATE/inherited";; esac
done
[ -z "$SITE_LOCK" ] || flock -n "$SITE_LOCK" true || echo held > "$XDIMO_FAKE_STATE/lock"
touch "$XDIMO_FAKE_STATE/started-$$"
while [ ! -e "$XDIMO_FAKE_STATE/end" ]; do sleep 0.05; done
exit 3
"""
SRUN = '#!/bin/bash\nwhile [ "${1#--}" != "$1" ]; do shift; done\nexec "$@"\n'  # runs its command, here


def started(state: Path) -> int:
    return len(list(state.glob("started-*")))


def start_held(ws: Workspace, tmp_path: Path, kind: str, nodes: int = 1, setup: tuple[str, ...] = (),
               extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Path, Path]:
    """Start the kind's script with HELD as its program; returns the job, the run folder and HELD's state folder."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for tool, text in (("python", HELD), ("srun", SRUN), ("scontrol", "#!/bin/bash\necho node1\n")):
        (bin_dir / tool).write_text(text)
        (bin_dir / tool).chmod(0o755)
    script, log_dir = render(ws, kind, nodes, python=str(bin_dir / "python"), setup=setup)
    (tmp_path / "job.sh").write_text(script)
    log_dir.mkdir(parents=True, exist_ok=True)  # as submit makes it
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{REPO / 'tests' / 'fakes'}{os.pathsep}{os.environ['PATH']}",
           "XDIMO_FAKE_STATE": str(state), "SLURM_JOB_ID": "7", "SLURM_NNODES": "1", "SLURM_JOB_NODELIST": "node1",
           "JH_HOSTS": "nodeA 64 nodeB 64", "LSB_MCPU_HOSTS": "nodeA 64 nodeB 64", **(extra_env or {})}
    job = subprocess.Popen(["bash", str(tmp_path / "job.sh")], env=env, cwd=ws.root, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    return job, log_dir, state


@pytest.mark.parametrize("kind", KINDS)
def test_a_setup_lines_own_descriptors_reach_the_program(ws: Workspace, tmp_path: Path, kind: str) -> None:
    """A site's `exec 8>lock; flock 8` in `setup:` holds its lock for the job: the end records once took
    descriptors 7 and 8 over (and closed them for the program), so the lock was gone before the program began."""
    lock = tmp_path / "site.lock"
    job, log_dir, state = start_held(ws, tmp_path, kind, setup=(f"exec 8>{lock} && flock -n 8 || exit 9",),
                                     extra_env={"SITE_LOCK": str(lock)})
    (state / "end").touch()
    _, err = job.communicate(timeout=60)
    assert job.returncode == 3, err
    assert (state / "lock").read_text() == "held\n"  # the program found the site's lock taken
    assert read_exit_marker(log_dir) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_a_job_wall_that_cannot_be_opened_keeps_the_exit_code(ws: Workspace, tmp_path: Path, kind: str) -> None:
    """One `exec` for both once lost job.exit with job.wall: the run read LOST, not FAILED."""
    _, log_dir = render(ws, kind)
    (log_dir / WALL_FILE).mkdir(parents=True)  # in the way of the job's wall record
    job, log_dir, state = start_held(ws, tmp_path, kind)
    (state / "end").touch()
    _, err = job.communicate(timeout=60)
    assert job.returncode == 3, err
    assert read_exit_marker(log_dir) == 3


@pytest.mark.parametrize(("kind", "nodes"), [("local", 1), ("jh", 1), ("jh", 2), ("lsf", 1), ("lsf", 2), ("slurm", 1)])
def test_a_workspace_moved_while_the_job_runs_gets_its_end_records(ws: Workspace, tmp_path: Path, kind: str,
                                                                   nodes: int) -> None:
    """They were written by name as the job ended: into a folder that was no longer there, so the moved run kept
    its blank reservation and read as LOST, not FAILED."""
    job, log_dir, state = start_held(ws, tmp_path, kind, nodes)
    try:
        deadline = time.monotonic() + 30
        while started(state) < nodes:
            assert time.monotonic() < deadline and job.poll() is None, "the job's program did not start"
            time.sleep(0.05)
        moved = tmp_path / "moved"
        ws.root.rename(moved)
        (state / "end").touch()
        _, err = job.communicate(timeout=60)
    finally:
        (state / "end").touch()  # a held program ends, whatever failed
        job.kill()
    assert job.returncode == 3, err
    now = moved / log_dir.relative_to(ws.root)
    assert read_exit_marker(now) == 3 and script_wall_s(now) is not None, err
    assert not ws.root.exists()  # nothing made again at the old path
    assert not (state / "inherited").exists()  # the program never held the end records open

# -- a real full disk -------------------------------------------------------------------------------------------------

# Run in a namespace of its own: mount a 1 MiB tmpfs over the workspace's logs/, run the job script, show its end
# records (the tmpfs and what is on it go with the namespace).
IN_NAMESPACE = """
logs=$(dirname "$1")
mount -t tmpfs -o size=1m tmpfs "$logs" || exit 99
mkdir -p "$1"
bash "$2"
echo "rc=$?"
echo "exit=$(cat "$1/job.exit")"
echo "wall=$(cat "$1/job.wall")"
echo "free=$(df --output=avail "$logs" | tail -n 1)"
"""


def namespace_or_skip(tmp_path: Path) -> list[str]:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to mount a small tmpfs")
    probe = tmp_path / "probe"
    probe.mkdir()
    tried = subprocess.run(["unshare", "-Urm", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                           capture_output=True, text=True, timeout=30)
    if tried.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {tried.stderr.strip()}")
    return ["unshare", "-Urm", "bash", "-c", IN_NAMESPACE, "in-namespace"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_disk_that_fills_while_the_job_runs_keeps_its_exit_code(ws: Workspace, tmp_path: Path, kind: str) -> None:
    namespace = namespace_or_skip(tmp_path)
    done, _, _ = run_script(ws, kind, tmp_path, fill=True, namespace=namespace)
    said = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert said.get("rc") == "3", done.stdout + done.stderr
    assert said["free"].strip() == "0"  # the disk was full as the script wrote its end records
    assert parse_marker(said["exit"]) == 3  # was "": the run LOST, not FAILED
    start, end = (int(w) for w in said["wall"].split())
    assert end >= start
