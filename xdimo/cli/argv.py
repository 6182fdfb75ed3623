"""Reading a command line click refused: whether it asked for --json, so that a usage error (raised before any verb
runs) is answered in the format the script asked for."""

from __future__ import annotations

import click


def asks_json(group: click.Group, argv: list[str]) -> bool:
    """Whether ``--json`` is an option of ``argv`` (the group's or its verb's), not the value of another option
    (`submit m --run --json`: a run id) nor an argument after ``--``. Unknown tokens are skipped: the line is one
    click has just refused."""
    ctx = click.Context(group, info_name="xdimo-jobs")
    command: click.Command = group
    takes_value = value_options(group)
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            return False
        if token == "--json":
            return True
        if token.startswith("-"):
            if token in takes_value:  # its value is the next token, whatever it looks like
                next(tokens, None)
            continue
        if command is group:
            verb = group.get_command(ctx, token)
            if verb is not None:
                command, takes_value = verb, value_options(verb)
    return False


def value_options(command: click.Command) -> set[str]:
    """The option names of ``command`` that take a value (``--run RUN_ID``), as typed; `--run=X` is one token."""
    return {name for param in command.params
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in param.opts}
