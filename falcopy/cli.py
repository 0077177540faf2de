"""The `falcopy` command (``falcopy.cli:run``, also ``python -m falcopy``).

Falco-style arguments are mapped onto the sub-commands first (:mod:`falcopy.falco_argv`).
``falcopy agent`` (also spelled as Falco's ``falcopy -r RULES ...``) then begins loading its
BPF probe, before click and the command modules (:mod:`falcopy.cli_commands`) are imported:
the kernel's verification of the probe runs beside everything else of start-up.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

#: options after which `falcopy agent` captures nothing
_NO_CAPTURE = frozenset({"--dry-run", "-h", "--help"})


def run() -> None:
    from falcopy.falco_argv import translate

    args = translate(sys.argv[1:])
    if args[:1] == ["agent"] and not _NO_CAPTURE & set(args):
        # start-up allocates a long-lived heap (modules, models, compiled rules, the process
        # table): the cyclic collector's ~175 passes over it were ~10 % of the CPU before the
        # first alert.  The agent collects once and enables it when that heap is built
        # (Agent._main, after the first batch of events).
        gc.disable()
        from falcopy.common.malloc import tune_for_agent

        tune_for_agent()  # before any thread allocates: the probe loader's is next
        from falcopy.agent.runtime.probe_loader import start_early

        start_early(sys.argv[1:])
    from falcopy.cli_commands import main

    main(args=args, prog_name="falcopy")


def __getattr__(name: str) -> Any:
    # `from falcopy.cli import main`: the click group, imported when asked for
    if name in ("main", "COMMAND_MODULES"):
        from falcopy import cli_commands

        return getattr(cli_commands, name)
    raise AttributeError(f"module 'falcopy.cli' has no attribute {name!r}")
