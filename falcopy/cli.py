"""The `falcopy` command line. Sub-commands are added by their modules."""

from __future__ import annotations

import click

from falcopy import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="falcopy")
def main() -> None:
    """Runtime security for Kubernetes nodes, speaking Falco's rule language."""
