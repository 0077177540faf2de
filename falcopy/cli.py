"""The `falcopy` command line: the group, and every sub-command registered on it here
(the command modules never import this one, so imports flow one way)."""

from __future__ import annotations

import sys

import click

from falcopy import cli_engine, cli_info
from falcopy.agent import cli as agent_cli
from falcopy.operator import cli as operator_cli


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


for _command in (*cli_engine.COMMANDS, *cli_info.COMMANDS, agent_cli.agent_command,
                 operator_cli.operator_cmd):
    main.add_command(_command)
