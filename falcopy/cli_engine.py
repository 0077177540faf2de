"""Engine commands: ``validate``, ``list-rules``, ``list-fields``, ``replay``."""

from __future__ import annotations

import itertools
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import click

from falcopy.agent.outputs.alert import Alert
from falcopy.agent.outputs.format import AlertFormatter, FormatOptions
from falcopy.engine import LoadResult, Priority, default_sources, load_rules_files
from falcopy.engine.replay import ReplayInputError, ReplayReader
from falcopy.engine.ruleset import CompiledRule, Ruleset


def _print_messages(result: LoadResult, out: TextIO) -> None:
    for m in result.messages:
        click.echo(str(m), file=out)


def _summary(result: LoadResult) -> str:
    c = result.counts
    verdict = "valid" if result.ok else "invalid"
    return (f"{verdict}: {c['rules']} rules, {c['macros']} macros, {c['lists']} lists; "
            f"{len(result.errors)} errors, {len(result.warnings)} warnings")


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print Falco's `-V -o json_output=true` JSON.")
@click.option("--strict", is_flag=True,
              help="Rules that can never fire here (disabled or unknown source, event types this "
                   "system cannot capture) are errors, not warnings.")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="falcopy.yaml whose switched-off sources (e.g. falcopy.k8s_audit.enabled: false) "
                   "make rules unable to fire.")
@click.option("--disable-source", "disable_source", multiple=True, metavar="SOURCE",
              help="Treat this event source as switched off (Falco's --disable-source; repeatable).")
def validate(files: tuple[Path, ...], as_json: bool, strict: bool, config_path: Path | None,
             disable_source: tuple[str, ...]) -> None:
    """Validate rules FILES (loaded in order, like Falco's -V), or FalcoRule / ClusterFalcoRule
    manifests (the admission webhook's answers): exit 0 when valid.  Every error is reported.

    Also warns about each rule that can never fire on this system: its source is
    switched off or unknown, or the running kernel cannot produce its event types; and
    about each rule reading fields that never have a value in the configuration (-c)."""
    from falcopy.agent.control.config import AgentConfig, ConfigError, load_config
    from falcopy.agent.rulecheck import capturable_event_types, disabled_sources, unavailable_fields
    from falcopy.operator.offline import is_manifest_file

    manifests = [f for f in files if is_manifest_file(f)]
    ok = _validate_manifests(manifests) if manifests else True
    rules_files = [f for f in files if f not in manifests]
    if not rules_files:
        sys.exit(0 if ok else 1)
    disabled = {name: "--disable-source" for name in disable_source}
    config = AgentConfig()
    if config_path is not None:
        try:
            config = load_config(config_path, [])
        except ConfigError as exc:
            for msg in exc.messages:
                click.echo(f"Error: {msg}", err=True)
            sys.exit(1)
        disabled.update(disabled_sources(config))
    result = load_rules_files(rules_files, keep_going=True, disabled_sources=disabled,
                              capturable=capturable_event_types(),
                              unavailable_fields=unavailable_fields(config))
    if strict:
        result = result.strict()
    if as_json:
        click.echo(json.dumps(result.to_falco_json(), indent=2))
    else:
        order = {name: i for i, name in enumerate(result.names)}
        for m in sorted(result.messages, key=lambda m: (order.get(m.file, len(order)), m.line, m.column)):
            click.echo(str(m))
        if result.ruleset is not None:
            click.echo(f"{len(result.ruleset.rules)} rules compiled")
        click.echo(_summary(result))
    sys.exit(0 if result.ok and ok else 1)


def _validate_manifests(paths: list[Path]) -> bool:
    from falcopy.operator.offline import validate_manifests
    from falcopy.operator.settings import packaged_rules

    verdicts = validate_manifests(paths, packaged_rules())
    for v in verdicts:
        click.echo(str(v))
    denied = sum(1 for v in verdicts if not v.allowed)
    click.echo(f"{'valid' if not denied else 'invalid'}: {len(verdicts) - denied} objects allowed, "
               f"{denied} denied")
    return not denied


def _load_or_exit(rules: tuple[Path, ...], **kwargs: Any) -> Ruleset:
    result = load_rules_files(list(rules), **kwargs)
    if not result.ok or result.ruleset is None:
        _print_messages(result, sys.stderr)
        click.echo(_summary(result), err=True)
        sys.exit(1)
    return result.ruleset


@click.command("list-rules")
@click.option("-r", "--rules", "rules", multiple=True, type=click.Path(path_type=Path),
              help="Rules file or directory (repeatable); default: falcopy's default rules.")
@click.option("--rule", "only", default=None, help="Describe this rule only (like `falco -l RULE`).")
@click.option("--json", "as_json", is_flag=True)
def list_rules(rules: tuple[Path, ...], only: str | None, as_json: bool) -> None:
    """Describe the loaded rules (like `falco -L`)."""
    if not rules:
        from falcopy.agent.app import default_rules_paths

        rules = tuple(default_rules_paths())
    ruleset = _load_or_exit(rules)
    selected = [r for r in ruleset.rules if only is None or r.name == only]
    if only is not None and not selected:
        click.echo(f"Error: no rule named {only!r} in {', '.join(map(str, rules))}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps([{
            "name": r.name, "desc": r.desc, "priority": r.priority.falco_name, "source": r.source,
            "tags": r.tags, "enabled": r.enabled, "condition": r.condition, "output": r.output,
            "evttypes": sorted(r.evttypes) if r.evttypes is not None else None,
        } for r in selected], indent=2))
        return
    if only is not None:
        (r,) = selected
        for label, value in (("Rule", r.name), ("Description", " ".join(r.desc.split())),
                             ("Condition", r.condition.strip()), ("Output", r.output.strip()),
                             ("Priority", r.priority.falco_name), ("Source", r.source),
                             ("Tags", ", ".join(r.tags)), ("Enabled", str(r.enabled).lower())):
            click.echo(f"{label + ':':<13}{value}")
        return
    width = max((len(r.name) for r in ruleset.rules), default=4)
    click.echo(f"{'Rule':<{width}}  Description")
    click.echo(f"{'-' * 4:<{width}}  {'-' * 11}")
    for r in ruleset.rules:
        desc = " ".join(r.desc.split())
        click.echo(f"{r.name:<{width}}  {desc}")


@click.command("list-fields")
@click.option("--source", default=None, help="Only this event source (syscall, k8s_audit).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text")
def list_fields(source: str | None, fmt: str) -> None:
    """List the fields usable in conditions and outputs (like `falco --list`)."""
    sources = default_sources()
    if source is not None and source not in sources:
        raise click.BadParameter(f"unknown source {source!r}; known: {', '.join(sorted(sources))}")
    selected = {k: v for k, v in sources.items() if source is None or k == source}
    if fmt == "json":
        click.echo(json.dumps({name: [{
            "name": f.name, "type": str(f.type), "desc": f.desc, "arg": str(f.arg), "is_list": f.is_list,
            "deprecated": f.deprecated} for f in src.fields.values()] for name, src in selected.items()},
            indent=2))
        return
    for name, src in selected.items():
        if fmt == "markdown":
            click.echo(f"## Source `{name}`\n\n| Name | Type | Description |\n|---|---|---|")
            for f in src.fields.values():
                click.echo(f"| `{f.name}` | {f.type} | {f.desc} |")
            click.echo("")
            continue
        click.echo(f"Event Sources: {name}\n")
        for f in src.fields.values():
            suffix = "[...]" if str(f.arg) != "none" else ""
            click.echo(f"{f.name + suffix:<40} {f.type!s:<9} {f.desc}")
        click.echo("")


def _replay_stage(config_path: Path | None, aggregate: bool | None, window: str | None,
                  build: Any, emit: Any) -> Any:
    """The agent's alert stage (threshold rules, aggregation) with falcopy.yaml's settings,
    or the agent's defaults; ``--aggregate`` / ``--aggregation-window`` override them."""
    from falcopy.agent.control.config import ConfigError, load_config
    from falcopy.agent.outputs.aggregate import AggregationSettings, AlertStage

    overrides = []
    if aggregate is not None:
        overrides.append(f"falcopy.aggregation.enabled={str(aggregate).lower()}")
    if window is not None:
        overrides.append(f"falcopy.aggregation.window={window}")
    try:
        config = load_config(config_path, overrides)
    except ConfigError as e:
        for m in e.messages:
            click.echo(f"error: {m}", err=True)
        sys.exit(2)
    t = config.falcopy.thresholds
    return AlertStage(build, emit, AggregationSettings.from_config(config), max_groups=t.max_groups,
                      max_values=t.max_values)


@click.command("replay")
@click.argument("events", type=click.File("r", encoding="utf-8"))
@click.option("-r", "--rules", "rules", multiple=True, type=click.Path(path_type=Path),
              help="Rules file or directory (repeatable; optional with --timeline).")
@click.option("--json", "as_json", is_flag=True, help="Alerts in Falco's JSON shape.")
@click.option("--rule-matching", type=click.Choice(["first", "all"]), default="first")
@click.option("--priority", "min_priority", default=None,
              help="Minimum rule priority loaded (default debug; a capture: the agent's setting).")
@click.option("--disable-rule", multiple=True, help="Disable rules by name (wildcards allowed).")
@click.option("--enable-tag", multiple=True, help="Enable rules having this tag.")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="falcopy.yaml whose falcopy.aggregation / falcopy.thresholds settings apply.")
@click.option("--aggregate/--no-aggregate", default=None,
              help="Aggregate repeated alerts (default: falcopy.aggregation.enabled, off).")
@click.option("--aggregation-window", "window", default=None, help="Aggregation window, e.g. 60s.")
@click.option("--timeline", is_flag=True, help="Capture files: print the events as a table.")
def replay(events: TextIO, rules: tuple[Path, ...], as_json: bool, rule_matching: str,
           min_priority: str | None, disable_rule: tuple[str, ...], enable_tag: tuple[str, ...],
           config_path: Path | None, aggregate: bool | None, window: str | None, timeline: bool) -> None:
    """Evaluate recorded EVENTS against the rules and print alerts.

    EVENTS is a capture file the agent wrote on an alert (docs/capture.md): the
    alerts are rebuilt exactly as the agent raised them, followed by the other
    rules the same events match; --timeline prints its events as a table.

    Or JSON lines, each an object mapping field text to value, e.g.
    {"evt.type": "execve", "evt.time": "2026-06-10T10:00:00Z", "proc.name": "sudo"}; an
    optional "source" key selects the event source (default syscall).  A raw Kubernetes audit
    event (kind Event, apiVersion audit.k8s.io/v1) is evaluated by the k8s_audit rules.
    docs/engine.md describes the format with a complete example.

    Threshold rules and aggregation behave as in the agent, on the events' own clock
    (``evt.time``): windows close as the recorded time passes them, and at the end.
    """
    try:
        prio = Priority.parse(min_priority or "debug")
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    selection = [("disable", "rule", p) for p in disable_rule] + [("enable", "tag", t) for t in enable_tag]
    first = events.readline()
    from falcopy.agent.capture.replay import first_line_is_header

    if first_line_is_header(first):
        _replay_capture(events, first, rules, as_json, prio if min_priority else None, selection, timeline)
        return
    if timeline:
        raise click.UsageError(f"--timeline needs a capture file; {events.name} has no capture header")
    if not rules:
        raise click.UsageError("Missing option '-r' / '--rules'.")
    ruleset = _load_or_exit(rules, rule_matching=rule_matching, min_priority=prio, selection=selection)
    hostname = socket.gethostname()
    reader = ReplayReader(default_sources())
    n_events = n_matches = n_alerts = 0

    # alerts exactly as the agent prints them (Falco's shapes); JSON with the ISO 8601 prefix
    formatter = AlertFormatter(FormatOptions(json_output=as_json, iso8601=as_json))

    def build(rule: CompiledRule, event: Any) -> Alert:
        text, fields = ruleset.format(rule, event)
        return Alert(ts=event.ts or time.time_ns(), rule=rule.name, priority=rule.priority.falco_name,
                     message=text, output_fields=dict(fields), tags=sorted(rule.tags), source=rule.source,
                     hostname=hostname)

    def emit(alert: Alert) -> None:
        nonlocal n_alerts
        n_alerts += 1
        click.echo(formatter.line(alert))

    stage = _replay_stage(config_path, aggregate, window, build, emit)
    for lineno, line in enumerate(itertools.chain([first], events), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as e:
            click.echo(f"{events.name}:{lineno}:{e.colno}: error: invalid JSON: {e.msg}", err=True)
            sys.exit(2)
        if not isinstance(values, dict):
            click.echo(f"{events.name}:{lineno}:1: error: each line must be a JSON object", err=True)
            sys.exit(2)
        try:
            event = reader.event(values, lineno)
        except ReplayInputError as e:
            click.echo(f"{events.name}:{e.line}: error: {e.message}", err=True)
            sys.exit(2)
        n_events += 1
        if event.ts:
            stage.tick(event.ts)
        try:
            matched = ruleset.evaluate(event)
        except (TypeError, AttributeError) as e:
            # a value of the wrong shape (a list for a scalar field...): name the line
            click.echo(f"{events.name}:{lineno}:1: error: field value of the wrong type: {e}", err=True)
            sys.exit(2)
        for rule in matched:
            n_matches += 1
            stage.on_match(rule, event)
    stage.flush("end")
    for name, count in sorted(reader.missing.items()):
        click.echo(f"note: field {name} was read by the rules but absent from {count} event(s) "
                   "(it evaluated as <NA>)", err=True)
    click.echo(f"{n_events} events, {n_matches} matches, {n_alerts} alerts", err=True)


def _replay_capture(stream: TextIO, first: str, rules: tuple[Path, ...], as_json: bool, prio: Priority | None,
                    selection: list[tuple[str, str, str]], show_timeline: bool) -> None:
    """A capture file: the agent's own field source and alert builder, from the file alone."""
    from falcopy.agent.capture.fileformat import CaptureFormatError
    from falcopy.agent.capture.replay import parse_capture
    from falcopy.agent.capture.report import replay_capture, summary, timeline
    from falcopy.agent.fields.syscall import AgentSyscallSource

    try:
        capture = parse_capture(itertools.chain([first], stream), stream.name)
    except CaptureFormatError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    ruleset = None
    if rules:
        sources = dict(default_sources())
        sources["syscall"] = AgentSyscallSource()
        # every matching rule is wanted: the live rule_matching is applied when printing
        ruleset = _load_or_exit(rules, sources=sources, rule_matching="all",
                                min_priority=prio or Priority.DEBUG, selection=selection)
    if show_timeline:
        timeline(capture, sys.stdout, ruleset)
        return
    if ruleset is None:
        raise click.UsageError("Missing option '-r' / '--rules' (needed unless --timeline).")
    result = replay_capture(capture, ruleset, sys.stdout, as_json=as_json,
                            min_priority=prio.falco_name if prio is not None else None)
    for line in summary(capture, result):
        click.echo(line, err=True)
