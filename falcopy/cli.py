"""The `falcopy` command line. Sub-commands are added by their modules."""

from __future__ import annotations

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Runtime security for Kubernetes nodes, speaking Falco's rule language.

    Falco's spellings work too: `falcopy -r RULES -o key=value` runs the agent, `-V FILE`
    validates, `-L` / `-l RULE` list rules, `--list [SOURCE]` lists fields, `--list-events`,
    `--version`, `--support`, `-U`, and Falco < 0.39's `-D` / `-T` / `-t`.
    """


def run() -> None:
    """The `falcopy` command: Falco-style arguments are mapped onto the sub-commands first."""
    from falcopy.falco_argv import translate

    main(args=translate(sys.argv[1:]), prog_name="falcopy")


# Sub-command modules register on `main` when imported (after `main` exists).
from falcopy import cli_engine, cli_info  # noqa: E402, F401
from falcopy.agent import cli as _agent_cli  # noqa: E402, F401
from falcopy.operator import cli as _operator_cli  # noqa: E402, F401
