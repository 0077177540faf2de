"""The `falcopy` command line: the group, and every sub-command registered on it here
(the command modules never import this one, so imports flow one way)."""

from __future__ import annotations

import click

from falcopy import __version__, cli_engine
from falcopy.agent import cli as agent_cli
from falcopy.operator import cli as operator_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="falcopy")
def main() -> None:
    """Runtime security for Kubernetes nodes, speaking Falco's rule language."""


for _command in (*cli_engine.COMMANDS, agent_cli.agent_command, operator_cli.operator_cmd):
    main.add_command(_command)
