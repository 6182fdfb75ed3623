"""The `xdimo-jobs` command: one click group, one module per verb. No torch import on any path here."""

from __future__ import annotations

import importlib
import os
import signal
import sys

import click

from xdimo import __version__
from xdimo.cli.argv import asks_json
from xdimo.cli.common import STDOUT, App, StoppedFollowing, echo_error_object
from xdimo.errors import StopSignal, XdimoError

# verb -> its one-line help; the module xdimo/cli/<verb>.py defines a click command with the verb's name.
# The lines live here so `xdimo-jobs --help` lists the verbs without importing any of them.
VERBS = {
    "hosts": "Free and total cards per pool, live from the scheduler, and the site rules.",
    "plan": "Expand a matrix into runs, check the site rules, show the batches and GPU-hours.",
    "submit": "Submit a matrix in batches that fit the free cards and the pending limit.",
    "status": "Poll the schedulers once per cluster and show the runs in the ledger.",
    "kill": "Kill runs by run id (or a unique prefix) or scheduler job id.",
    "logs": "Print the output of a run (run id, unique prefix, or scheduler job id).",
    "collect": "Print the users' own tables (and plots) from the runs' metrics and old logs.",
    "models": "List the reference workload's models: shape, parameters and train FLOPs.",
    "demo": "Run a small scaling study on this machine and print its table.",
    "init": "Create a workspace with the default clusters, matrices and templates.",
}


class LazyGroup(click.Group):
    """Imports a verb's module only when that verb is run or its own help is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(VERBS.items()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in VERBS:
            return None
        try:
            module = importlib.import_module(f"xdimo.cli.{name}")
        except ImportError as exc:  # a verb whose module is not installed: say so, do not crash the group
            return click.Command(name, help=f"(unavailable: {exc})")
        return getattr(module, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--cluster", metavar="NAME", help="Cluster file clusters/NAME.yaml (default: local, this machine).")
@click.option("--workdir", metavar="DIR", help="The workspace (default: nearest folder upwards with clusters/).")
@click.option("--ledger", metavar="PATH", help="Ledger file (default: queue/ledger.sqlite; env XDIMO_LEDGER). "
              "Put it on local disk when the workspace is on NFS.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output (every verb).")
@click.version_option(__version__, prog_name="xdimo-jobs")
@click.pass_context
def cli(ctx: click.Context, cluster: str | None, workdir: str | None, ledger: str | None, as_json: bool) -> None:
    """Plan, submit, track and harvest GPU training studies on LSF-style clusters.

    \b
    A study is a matrix file (jobs/*.yaml) run on a cluster (clusters/*.yaml):
      xdimo-jobs demo                                    # a small scaling study on this machine
      xdimo-jobs --cluster xdimo-jh hosts                # free/total cards per pool, the site rules
      xdimo-jobs --cluster xdimo-jh plan jobs/table1-scaling.yaml
      xdimo-jobs --cluster xdimo-jh submit jobs/hw-4gpu.yaml --batch first --dry-run
      xdimo-jobs --cluster xdimo-jh submit jobs/hw-4gpu.yaml --batch first
      xdimo-jobs status --watch                          # until every run has ended
      xdimo-jobs kill 12345                              # a run id or a scheduler job id
      xdimo-jobs collect --plots plots/                  # the seeds' tables, from the runs' metrics
    """
    ctx.obj = App(workdir=workdir, ledger_path=ledger, cluster_name=cluster, json=as_json)
    RUNNING["verb"] = ctx.invoked_subcommand


RUNNING: dict[str, str | None] = {"verb": None}  # the verb being run, for the Ctrl-C line


def interrupted(signum: int = 0) -> str:
    """What Ctrl-C (or a SIGTERM/SIGHUP a submit held) says: the ledger's writes are transactions, so it is
    consistent whatever the verb; only a submit has runs left to carry on with."""
    how = f"stopped by {signal.Signals(signum).name}" if signum else "interrupted"
    if RUNNING["verb"] == "submit":
        return f"{how}; the ledger is consistent (`submit --batch next` carries on)"
    return f"{how}; the ledger is consistent"


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure is one `error:` line on stderr and a non-zero exit, never a traceback."""
    try:
        cli.main(args=argv, prog_name="xdimo-jobs", standalone_mode=False)
    except StoppedFollowing:  # Ctrl-C is how one stops `logs -f` and `status --watch`: no error, exit 130
        click.echo("stopped following", err=True)
        sys.exit(130)
    except XdimoError as exc:
        json_error(argv, str(exc), 2)
        fail(str(exc), 2)
    except click.exceptions.Abort as exc:  # click turns Ctrl-C into Abort
        if isinstance(exc.__context__, StopSignal):
            fail(interrupted(exc.__context__.signum), 128 + exc.__context__.signum)
        if isinstance(exc.__context__, KeyboardInterrupt):
            fail(interrupted(), 130)
        fail("aborted", 130)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `xdimo-jobs` (or a group): show the help
        click.echo(exc.ctx.get_help() if exc.ctx else "try xdimo-jobs --help")
        sys.exit(0)
    except click.ClickException as exc:
        json_error(argv, exc.format_message(), exc.exit_code)
        fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except StopSignal as exc:
        fail(interrupted(exc.signum), 128 + exc.signum)
    except KeyboardInterrupt:
        fail(interrupted(), 130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug: still one line, the traceback only on request
        if os.environ.get("XDIMO_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set XDIMO_DEBUG=1 for the traceback)", 3)


def json_error(argv: list[str] | None, message: str, code: int) -> None:
    """Under --json, the error object on stdout for a failure no verb reported (a usage error, an option's own
    check: click raises them before the verb runs); a verb's failures print theirs (common.echo_json_error)."""
    if asks_json(cli, sys.argv[1:] if argv is None else argv) and not STDOUT.had_json:
        echo_error_object(first_line(message), code)


def first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "failed"


def fail(message: str, code: int) -> None:
    click.echo(f"error: {first_line(message)}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
