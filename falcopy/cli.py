"""The `falcopy` command line. Sub-commands are added by their modules."""

from __future__ import annotations

import click

from falcopy import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="falcopy")
def main() -> None:
    """Runtime security for Kubernetes nodes, speaking Falco's rule language."""


# Sub-command modules register on `main` when imported (after `main` exists).
from falcopy import cli_engine  # noqa: E402, F401
from falcopy.agent import cli as _agent_cli  # noqa: E402, F401
from falcopy.operator import cli as _operator_cli  # noqa: E402, F401
