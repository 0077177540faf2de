"""``python -m falcopy`` and the ``falcopy`` command.

``falcopy agent`` (also spelled as Falco's ``falcopy -r RULES ...``) begins loading its BPF
probe first thing, before click and the command modules are imported: the kernel's
verification of the probe runs beside everything else of start-up.
"""

from __future__ import annotations

import gc
import sys

_NO_CAPTURE = frozenset({"--dry-run", "-h", "--help"})


def main() -> None:
    from falcopy.falco_argv import translate

    try:
        args = translate(sys.argv[1:])
    except SystemExit:
        args = []  # click reports it
    if args[:1] == ["agent"] and not _NO_CAPTURE & set(args):
        # start-up allocates a long-lived heap (modules, models, compiled rules, the process
        # table): the cyclic collector's ~175 passes over it were ~10 % of the CPU before the
        # first alert.  The agent collects once and enables it when that heap is built
        # (Agent._main, after the first batch of events).
        gc.disable()
        from falcopy.agent.runtime.probe_loader import start_early

        start_early(sys.argv[1:])
    from falcopy.cli import run

    run()


if __name__ == "__main__":
    main()
