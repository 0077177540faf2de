"""Falco's command line, spelled as a Falco user types it, mapped onto falcopy's sub-commands.

``falco`` has no sub-commands: ``falco -r R -o k=v`` runs the engine, ``falco -V
FILE`` validates, ``falco -L`` lists rules, ``falco --list syscall`` lists fields.
falcopy's CLI is a click group with one sub-command per action; this module turns
a Falco-style argument list into the falcopy one before click parses it, so
both spellings work and each sub-command stays one place that does the work.
Options of removed Falco versions that have a direct meaning (``-D``, ``-T``,
``-t``: rule selection before 0.38) become Falco 0.38's ``-o rules[]...`` form.
"""

from __future__ import annotations

from collections.abc import Sequence

#: falcopy's own sub-commands: an argument list starting with one is left alone
SUBCOMMANDS = frozenset({
    "agent", "validate", "list-rules", "list-fields", "list-events", "replay", "operator", "version",
    "support", "kernel-filter",
})

#: Falco options taking a value
_WITH_VALUE = frozenset({"-c", "-r", "-o", "--option", "-V", "--validate", "-l", "-D", "-T", "-t", "--format",
                         "-M", "-P", "--pidfile"})


def _is_json(options: list[str]) -> bool:
    return any(o.replace(" ", "").lower() in ("json_output=true", "json_output=1") for o in options)


def translate(argv: Sequence[str]) -> list[str]:
    """The falcopy argument list for ``argv`` (without the program name)."""
    args = list(argv)
    if not args or args[0] in SUBCOMMANDS or args[0] in ("-h", "--help"):
        return args
    config: list[str] = []
    rules: list[str] = []
    options: list[str] = []
    validate: list[str] = []
    selection: list[str] = []
    describe: str | None = None
    list_all = list_events = version = support = dry_run = False
    list_source: str | None = None
    list_fields = False
    fmt: str | None = None
    i = 0
    while i < len(args):
        a = args[i]
        value: str | None = None
        if "=" in a and a.startswith("--") and a.split("=", 1)[0] in _WITH_VALUE:
            a, value = a.split("=", 1)
        elif a in _WITH_VALUE:
            if i + 1 >= len(args):
                raise SystemExit(f"falcopy: option {a} needs a value")
            i += 1
            value = args[i]
        if a == "-c":
            config = ["-c", value or ""]
        elif a == "-r":
            rules += ["-r", value or ""]
        elif a in ("-o", "--option"):
            options.append(value or "")
        elif a in ("-V", "--validate"):
            validate.append(value or "")
        elif a == "-L":
            list_all = True
        elif a == "-l":
            describe = value
        elif a == "--list":
            list_fields = True
            if i + 1 < len(args) and not args[i + 1].startswith("-"):
                i += 1
                list_source = args[i]
        elif a == "--format":
            fmt = value
        elif a == "--markdown":
            fmt = "markdown"
        elif a == "--list-events":
            list_events = True
        elif a == "--version":
            version = True
        elif a == "--support":
            support = True
        elif a == "--dry-run":
            dry_run = True
        elif a in ("-U", "--unbuffered"):
            options.append("buffered_outputs=false")
        elif a == "-D":  # Falco < 0.39: disable rules whose name contains the text
            selection.append(f"rules[].disable.rule=*{value}*")
        elif a == "-T":  # Falco < 0.39: disable rules with this tag
            selection.append(f"rules[].disable.tag={value}")
        elif a == "-t":  # Falco < 0.39: only rules with this tag
            selection += ["rules[].disable.rule=*", f"rules[].enable.tag={value}"]
        elif a in ("-M", "-P", "--pidfile"):
            raise SystemExit(f"falcopy: Falco's {a} is not supported (run the agent under a service manager)")
        else:
            raise SystemExit(f"falcopy: unknown option {a!r} (falcopy --help lists the commands)")
        i += 1

    options = [*selection, *options]
    opts = [x for o in options for x in ("-o", o)]
    if version:
        return ["version", *(["--json"] if _is_json(options) else [])]
    if support:
        return ["support", *config, *rules, *opts]
    if validate:
        return ["validate", *(["--json"] if _is_json(options) else []), *validate]
    if list_all or describe is not None:
        out = ["list-rules", *rules]
        if describe is not None:
            out += ["--rule", describe]
        return out + (["--json"] if _is_json(options) else [])
    if list_fields:
        out = ["list-fields"]
        if list_source:
            out += ["--source", list_source]
        return out + (["--format", fmt] if fmt else [])
    if list_events:
        return ["list-events"]
    return ["agent", *config, *rules, *opts, *(["--dry-run"] if dry_run else [])]
