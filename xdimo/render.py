"""Render a RunSpec into a job script from jobs/templates/<scheduler>.sh.j2 (Jinja2, StrictUndefined).

Every value that reaches the shell is quoted here (or with the `q` filter in a template), so a matrix
value can never inject a command. Templates decide the layout; this module decides the values.
"""

from __future__ import annotations

import shlex
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from xdimo.config import Cluster
from xdimo.errors import ConfigError
from xdimo.rules import cpu_slots
from xdimo.rundir import RunDir
from xdimo.schedulers import job_id_pattern
from xdimo.spec import WORKLOAD_FIELDS, RunSpec
from xdimo.text import one_line
from xdimo.train.flags import is_switch, workload_flags

if TYPE_CHECKING:
    from xdimo.workspace import Workspace


def workload_args(spec: RunSpec, log_dir: Path) -> list[str]:
    """argv after `torchrun ...` for the reference workload."""
    args = ["-m", "xdimo.train", "--run-dir", str(log_dir)]
    for name in WORKLOAD_FIELDS:
        value = getattr(spec, name)
        if value not in (None, ""):  # moe None: a dense model
            args += [f"--{name.replace('_', '-')}", str(value)]
    known = workload_flags()
    for key, value in spec.train_args:
        name = key.lstrip("-")  # `--workers: 0` in a matrix means the flag --workers
        flag = f"--{name.replace('_', '-')}"
        action = known.get(name.replace("-", "_"))
        if action is not None and not is_switch(action):
            args += [flag, value]  # a flag that takes a value gets it, even one that reads "true"
        elif action is not None and value.lower() == "false":
            continue  # `tensorboard: false` in a matrix: the switch is left out
        else:  # `tensorboard: true` in a matrix is a switch: the flag alone, no value
            args += [flag] if value.lower() in ("", "true") else [flag, value]
    return args


def command_args(train_args: tuple[tuple[str, str], ...]) -> list[str]:
    """A `command:` run's train_args as flags after its command, keys as written (`lr` -> --lr, `--lr` stays):
    true is the flag alone, false and null leave it out (as for the workload's switches), anything else is
    `--key value`. The values are the spec's str() of the YAML scalars."""
    args: list[str] = []
    for key, value in train_args:
        flag = key if key.startswith("-") else f"--{key}"
        if value in ("True", "true", ""):
            args.append(flag)
        elif value not in ("False", "false", "None"):
            args += [flag, value]
    return args


def program(spec: RunSpec, log_dir: Path) -> str:
    """What torchrun launches: the reference workload, or the user's own command (as written, then its
    train_args as flags). A command that is not a Python script (``train.py ...``) or module (``-m pkg ...``) runs
    as it is (torchrun's --no-python): torchrun would hand ``sleep 60`` or ``./train.sh`` to python, and every
    job would fail."""
    if spec.command:
        first = (shlex.split(spec.command) or [""])[0]
        python_program = not first or first.endswith(".py") or first in ("-m", "--module")
        flags = command_args(spec.train_args)  # quoted; the command itself stays as the user wrote it
        command = f"{spec.command} {shlex.join(flags)}" if flags else spec.command
        return command if python_program else f"--no-python {command}"
    return shlex.join(workload_args(spec, log_dir))


def interpreter(cluster: Cluster) -> str:
    return sys.executable if cluster.python == "auto" else cluster.python


STOP_GRACE_S = 60  # seconds torchrun waits for signalled workers (a checkpoint of Latte-XL is ~10 GB) before SIGKILL


def context(spec: RunSpec, cluster: Cluster, root: Path) -> dict[str, Any]:
    pool = cluster.pool(spec.pool)
    run_dir = RunDir.in_workspace(root, spec.run_id).resolved()
    log_dir = run_dir.path
    python = interpreter(cluster)
    exports = {
        "XDIMO_RUN_ID": spec.run_id,
        "XDIMO_MATRIX": spec.matrix,
        "XDIMO_CLUSTER": cluster.name,
        "XDIMO_POOL": spec.pool,
        "XDIMO_LOG_DIR": str(log_dir),
        "XDIMO_GPU_MODEL": pool.gpu_model,
        # torchrun forwards only TERM, INT, HUP and QUIT by default and dies of SIGUSR1 (the warning Slurm's --signal
        # and LSF send before a time limit), leaving its workers running unsaved. Its flags read PET_<NAME> from the
        # environment (an older torchrun ignores it), and it gives the workers STOP_GRACE_S to checkpoint.
        "PET_SIGNALS_TO_HANDLE": "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
        "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": str(STOP_GRACE_S),
    }
    cpus = cpu_slots(cluster, spec)
    job_id = job_id_pattern(cluster.scheduler)
    setup = list(cluster.setup) + list(spec.env)
    export_lines = [f"export {k}={shlex.quote(v)}" for k, v in exports.items()]
    return {
        "job_name": spec.run_id,
        "run_id": spec.run_id,
        "matrix": spec.matrix,
        "cluster": cluster.name,
        "pool": spec.pool,
        "queue": pool.queue_name,
        "gpu_model": pool.gpu_model,
        "gpus": spec.gpus,
        "nodes": spec.nodes,
        "gpus_per_node": spec.gpus_per_node,
        "cpus": cpus,
        "cpus_per_node": cpus // spec.nodes,
        "log_dir": str(log_dir),
        # the scheduler's -o / -e paths, its job-id pattern in them: the names `logs` and `collect` read
        "output_file": str(run_dir.output(job_id)),
        "error_file": str(run_dir.error(job_id)),
        "workdir": cluster.workdir or str(root),
        "setup": setup,
        "exports": export_lines,
        # what each node of a multi-node run does before its torchrun, where the launcher forwards no env
        "node_prelude": "\n".join(setup + export_lines + card_check(spec.gpus_per_node, pool.per_node)
                                   + ['exec "$@"']),
        "python": shlex.quote(python),
        "torchrun": f"{shlex.quote(python)} -m torch.distributed.run",
        "program": program(spec, log_dir),
        "walltime_min": spec.walltime_min,
        "marker": str(run_dir.marker),
        "wall_file": str(run_dir.wall_file),
        "options": dict(cluster.options),
        "launcher": cluster.launcher,
    }


def card_check(gpus_per_node: int, node_cards: int) -> list[str]:
    """A line for a node whose launcher forwards no environment (Open MPI's mpirun) and where the job takes part
    of a node: without the scheduler's CUDA_VISIBLE_DEVICES there, torchrun's ranks take cards 0..n-1, which may
    be another job's, so the job's error file says so (the first node's assignment cannot be reused: its cards
    are not this node's)."""
    if gpus_per_node >= node_cards:
        return []
    last = gpus_per_node - 1
    return ['[ -n "${CUDA_VISIBLE_DEVICES:-}" ] || echo "xdimo-jobs: $(hostname): no CUDA_VISIBLE_DEVICES here, so'
            f' torchrun takes cards 0-{last} of this node, which the scheduler may have given another job;'
            ' ask for whole nodes (gpus per node = cards_per_node) or a launcher that forwards the job'
            ' environment (blaunch)" >&2']


class TemplateLoader(jinja2.FileSystemLoader):
    """Jinja's file loader, but a template that is not UTF-8 is named (with the line of the first bad byte)."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Any]:
        try:
            return super().get_source(environment, template)
        except UnicodeDecodeError as exc:
            line = exc.object[: exc.start].count(b"\n") + 1
            path = Path(self.searchpath[0]) / template
            raise ConfigError(f"{path}:{line}: template is not UTF-8 text (byte 0x{exc.object[exc.start]:02x})") \
                from None


def environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=TemplateLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # shell, not HTML: quoting is explicit (the `q` filter)
    )
    env.filters["q"] = lambda v: shlex.quote(str(v))
    env.filters["dq"] = directive_quoted
    return env


def directive_quoted(value: object) -> str:
    """``value`` inside the double quotes of a #SBATCH line, where sbatch reads `\\"` as `"` (an unescaped one ends
    the quoting and is dropped: a workspace at `ws "x"` sent the job's output to `ws x/...`, which does not exist,
    and the job failed with no output anywhere). Checked against Slurm 22.05. Refused, in one line: a line break
    (a directive is one line) and a backslash (in an output path, slurmd takes it to mean "no %j substitution" and
    drops it: the job fails to launch)."""
    text = str(value)
    for char, name in (("\n", "line break"), ("\r", "line break"), ("\\", "backslash")):
        if char in text:
            raise ConfigError(f"{text!r}: a {name} cannot be written in a #SBATCH line (Slurm cannot take it in an "
                              "output path or option; rename the folder)")
    return text.replace('"', '\\"')


def render_script(spec: RunSpec, cluster: Cluster, ws: Workspace) -> str:
    name = f"{cluster.scheduler}.sh.j2"
    templates = ws.templates_dir
    values = context(spec, cluster, ws.root)  # outside the try: a fault here is not the template's
    try:
        template = environment(templates).get_template(name)
        return template.render(**values)
    except ConfigError:
        raise
    except jinja2.TemplateNotFound as exc:  # the scheduler's own template, or one it includes
        missing = exc.name or name
        what = f"for scheduler {cluster.scheduler}" if missing == name else f"(included by {name})"
        raise ConfigError(f"no template {templates / str(missing)} {what}") from None
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"{template_line(exc, templates / name)}: {exc.message}") from None
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or str(templates / name)
        raise ConfigError(f"{where}:{exc.lineno}: template error: {exc.message}") from None
    except Exception as exc:  # whatever a user's template raises while rendering is its fault
        raise ConfigError(f"{template_line(exc, templates / name)}: template error: {type(exc).__name__}: "
                          f"{one_line(str(exc))}") from None


def template_line(exc: BaseException, fallback: Path) -> str:
    """``file:line`` of the innermost template frame (Jinja rewrites its tracebacks to point into the .j2
    files), else the scheduler's template."""
    where = str(fallback)
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename.endswith(".j2"):
            where = f"{frame.f_code.co_filename}:{lineno}"
    return where

