"""``falcopy agent``: run the node agent (Falco's ``falco`` command)."""

from __future__ import annotations

import logging
import os
import sys

import click

_LEVELS = {
    "emergency": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "notice": logging.INFO,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


def setup_logging(
    level: str = "info", to_stderr: bool = True, to_syslog: bool = False, syslog_socket: str = "/dev/log"
) -> None:
    """Operational logs (not alerts), formatted as Falco's: ``<date>: <message>``."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(_LEVELS.get(level, logging.INFO))
    _quiet_libraries()
    if to_stderr:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s: %(message)s", "%a %b %d %H:%M:%S %Y"))
        root.addHandler(h)
    if to_syslog and os.path.exists(syslog_socket):
        # only for syslog: logging.handlers is ~20 ms of imports (socket, pickle, queue)
        from logging.handlers import SysLogHandler

        try:
            sh = SysLogHandler(address=syslog_socket)
        except OSError:
            return
        sh.setFormatter(logging.Formatter("falcopy: %(message)s"))
        root.addHandler(sh)


def _quiet_libraries() -> None:
    # httpx logs every request at INFO: runtime sockets and the kubelet would flood the agent's log
    for name in ("httpx", "httpcore", "aiohttp.access", "watchdog"):
        logging.getLogger(name).setLevel(logging.WARNING)


@click.command("agent")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="falcopy.yaml (default: $FALCOPY_CONFIG, /etc/falcopy/falcopy.yaml, the repository's config/)",
)
@click.option(
    "-r",
    "--rules",
    "rules",
    multiple=True,
    type=click.Path(),
    help="Rules file or directory (repeatable); replaces rules_files",
)
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key as Falco's -o: a.b=v, list[1]=v, list[]=v, key={json}",
)
@click.option("--dry-run", is_flag=True, help="Check configuration, rules and outputs, process no events")
def agent_command(
    config_path: str | None, rules: tuple[str, ...], options: tuple[str, ...], dry_run: bool
) -> None:
    """Capture system calls with the eBPF probe, evaluate the rules, emit alerts."""
    from falcopy.common.malloc import tune_for_agent

    # before any thread allocates (a no-op repeat when `falcopy.cli.run` did it first)
    tune_for_agent()
    early_probe = None
    if not dry_run:
        # first thing: the kernel verifies the BPF object (the longest step of start-up,
        # outside the GIL) while the agent imports and reads its configuration
        # (begun already by the `falcopy` command before click was imported: falcopy.cli.run)
        from falcopy.agent.runtime.probe_loader import take_early

        early_probe = take_early(sys.argv[1:])
        # its Python part first (the GIL), then our imports beside the kernel's verifier
        early_probe.wait_verifying(timeout=10.0)
    from falcopy.agent.app import StartupError, build_agent
    from falcopy.agent.control.config import ConfigError
    from falcopy.agent.outputs.sinks.base import SinkError

    setup_logging()
    log = logging.getLogger("falcopy.agent")
    try:
        agent = build_agent(config_path, rules, options, early_probe=early_probe)
    except ConfigError as exc:
        for msg in exc.messages:
            click.echo(f"Error: {msg}", err=True)
        click.echo("falcopy: invalid configuration, not starting", err=True)
        sys.exit(1)
    except StartupError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    cfg = agent.config
    setup_logging(cfg.log_level, cfg.log_stderr, cfg.log_syslog, cfg.falcopy.syslog_socket)
    try:
        code = agent.dry_run() if dry_run else agent.run()
    except (StartupError, SinkError) as exc:
        log.error("Error: %s", exc)
        sys.exit(1)
    sys.exit(code)


@click.command("kernel-filter")
@click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False),
    help="falcopy.yaml whose rules selection, priority and base_syscalls apply (default: as `agent`)",
)
@click.option("-r", "--rules", "rules", multiple=True, type=click.Path(),
              help="Rules file or directory (repeatable); default: as `agent`")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable form")
def kernel_filter_command(config_path: str | None, rules: tuple[str, ...], as_json: bool) -> None:
    """Print the in-kernel interest filter the rules derive: per event type, the
    clauses a record must satisfy to leave the kernel, and what passes whole and why."""
    import json

    from falcopy.agent.app import StartupError, build_agent, derive_kernel_filter
    from falcopy.agent.control.config import ConfigError
    from falcopy.agent.kernel.kfilter import describe

    from falcopy.engine.kernel_filter import OPEN_TYPES, takes_fd

    setup_logging("error")
    try:
        agent = build_agent(config_path, rules, ())
    except ConfigError as exc:
        for msg in exc.messages:
            click.echo(f"Error: {msg}", err=True)
        sys.exit(1)
    except StartupError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    assert agent.ruleset is not None
    cfg = agent.config.model_copy(deep=True)
    cfg.falcopy.kernel_filter.enabled = True
    kf = derive_kernel_filter(agent.ruleset, cfg)
    report = describe(kf, agent.ruleset)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    on = agent.config.falcopy.kernel_filter.enabled
    click.echo(f"kernel filter ({'enabled' if on else 'disabled by falcopy.kernel_filter.enabled'}) "
               f"for {', '.join(map(str, agent.rules_paths))}")
    for t in report["types"]:
        head = f"{t['type']:<14}"
        if t["verdict"] == "pass":
            click.echo(f"{head}pass: {'; '.join(t['why']) or 'no kernel-checkable condition'}")
            continue
        n = len(t["clauses"])
        if t["state"] and not takes_fd(t["type"]) and t["type"] not in OPEN_TYPES:
            click.echo(f"{head}state: always passes")
            continue
        if t["state"] and t["type"] not in OPEN_TYPES:
            tail = f"then only if one of {n} clause(s) holds" if n else "then dropped"
            click.echo(f"{head}state: passes unless it acts on an fd user space never saw; {tail}")
        elif n:
            click.echo(f"{head}filtered: passes if one of {n} clause(s) holds")
        else:
            click.echo(f"{head}filtered: no enabled rule can match")
        for c in t["clauses"]:
            click.echo(f"    - {c}")
        for w in t["why"]:
            if not w.startswith("state:"):
                click.echo(f"    note: {w}")
    fdi = report["fd_interest"]
    if fdi is None:
        click.echo("fd interest: every open passes (a rule reads the fd of a later event with no "
                   "kernel-checkable file condition)")
    else:
        click.echo(f"fd interest: opens of files matching one of {len(fdi)} clause(s) also pass "
                   "(a later event's rule reads their fd)")
        for c in fdi:
            click.echo(f"    - {c}")


@click.command("list-events")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event type.")
def list_events(as_json: bool) -> None:
    """List every event type with its arguments and whether this system captures it
    (like Falco's --list-events).  Run as root to see the running kernel's view."""
    import json

    from falcopy.agent.kernel.catalog import event_catalog

    infos = event_catalog()
    if as_json:
        click.echo(json.dumps([{
            "name": i.name, "capture": i.capture, "args": [{"name": n, "type": t} for n, t in i.args],
            "nr": i.nr, "implemented": i.implemented, "reason": i.reason} for i in infos], indent=2))
        return
    for i in infos:
        args = ", ".join(f"{t} {n}" for n, t in i.args)
        reason = i.reason or ("ENOSYS on this kernel" if i.implemented is False else "")
        note = f"  # {reason}" if reason else ""
        click.echo(f"[{i.capture:<9}] {i.name}({args}){note}")
