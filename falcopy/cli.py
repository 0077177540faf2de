"""The `falcopy` command line. Sub-commands are added by their modules."""

from __future__ import annotations

import importlib
import sys

import click

#: sub-command -> the module that registers it on `main` when imported.  Imported on
#: demand: the agent must not pay for the operator's imports at start-up, nor the reverse.
COMMAND_MODULES: dict[str, str] = {
    "agent": "falcopy.agent.cli",
    "operator": "falcopy.operator.cli",
    "validate": "falcopy.cli_engine",
    "list-rules": "falcopy.cli_engine",
    "list-fields": "falcopy.cli_engine",
    "replay": "falcopy.cli_engine",
    "version": "falcopy.cli_info",
    "support": "falcopy.cli_info",
}


class _LazyGroup(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(module)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in dict.fromkeys(COMMAND_MODULES.values()):
            importlib.import_module(module)
        return super().list_commands(ctx)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
