"""The `falcopy` click group, and every sub-command registered on it here (the command
modules never import this one, so imports flow one way); run by :func:`falcopy.cli.run`."""

from __future__ import annotations

import importlib

import click

#: sub-command -> "module:command" registered on `main` when first used.  Imported on
#: demand: the agent must not pay for the operator's imports at start-up, nor the reverse;
#: the command modules never import this one, so imports flow one way.
COMMAND_MODULES: dict[str, str] = {
    "agent": "falcopy.agent.cli:agent_command",
    "kernel-filter": "falcopy.agent.cli:kernel_filter_command",
    "list-events": "falcopy.agent.cli:list_events",
    "operator": "falcopy.operator.cli:operator_cmd",
    "validate": "falcopy.cli_engine:validate",
    "list-rules": "falcopy.cli_engine:list_rules",
    "list-fields": "falcopy.cli_engine:list_fields",
    "replay": "falcopy.cli_engine:replay",
    "version": "falcopy.cli_info:version",
    "support": "falcopy.cli_info:support",
}


def _command(name: str) -> click.Command:
    module, _, attr = COMMAND_MODULES[name].partition(":")
    command = getattr(importlib.import_module(module), attr)
    assert isinstance(command, click.Command)
    return command


class _LazyGroup(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMAND_MODULES and cmd_name not in self.commands:
            self.add_command(_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMAND_MODULES})


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Runtime security for Kubernetes nodes, speaking Falco's rule language.

    Falco's spellings work too: `falcopy -r RULES -o key=value` runs the agent, `-V FILE`
    validates, `-L` / `-l RULE` list rules, `--list [SOURCE]` lists fields, `--list-events`,
    `--version`, `--support`, `-U`, and Falco < 0.39's `-D` / `-T` / `-t`.
    """
