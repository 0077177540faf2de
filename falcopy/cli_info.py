"""``version`` and ``support``: what is running, as Falco's ``--version`` and ``--support`` print it."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import click

from falcopy import __version__
from falcopy.cli import main
from falcopy.engine.versions import ENGINE_VERSION, FALCO_COMPAT_VERSION, PROVIDED_PLUGINS


def _probe() -> dict[str, Any]:
    from falcopy.agent.kernel.probe import DEFAULT_OBJ

    info: dict[str, Any] = {"kind": "modern_ebpf (falcopy CO-RE probe)", "object": str(DEFAULT_OBJ)}
    try:
        info["sha256"] = hashlib.sha256(DEFAULT_OBJ.read_bytes()).hexdigest()
    except OSError as exc:
        info["error"] = f"missing ({exc.strerror}): run `make bpf`"
    return info


def version_info() -> dict[str, Any]:
    return {
        "falcopy_version": __version__,
        "falco_version": FALCO_COMPAT_VERSION,
        "engine_version": ENGINE_VERSION,
        "engine_version_semver": ENGINE_VERSION,
        "probe": _probe(),
        "plugins": dict(PROVIDED_PLUGINS),
        "python_version": platform.python_version(),
    }


@main.command("version")
@click.option("--json", "as_json", is_flag=True, help="JSON, as `falco --version -o json_output=true`.")
def version(as_json: bool) -> None:
    """Versions of falcopy, the Falco release it matches, its rules engine and its probe."""
    info = version_info()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    probe = info["probe"]
    click.echo(f"falcopy version:      {info['falcopy_version']}")
    click.echo(f"Falco compatibility:  {info['falco_version']}")
    click.echo(f"Engine:               {info['engine_version']}")
    click.echo("Probe:")
    click.echo(f"  Kind:               {probe['kind']}")
    click.echo(f"  Object:             {probe['object']}")
    click.echo(f"  SHA-256:            {probe.get('sha256') or probe.get('error')}")
    plugins = ", ".join(f"{k} {v}" for k, v in info["plugins"].items())
    click.echo(f"Built-in plugins:     {plugins}")
    click.echo(f"Python:               {info['python_version']}")


def _file(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    return {"name": str(path), "hash": digest, "content": data.decode("utf-8", "replace")}


@main.command("support")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("-r", "--rules", "rules", multiple=True, type=click.Path())
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE")
def support(config_path: str | None, rules: tuple[str, ...], options: tuple[str, ...]) -> None:
    """JSON for a bug report, as `falco --support`: versions, system, configuration, rules files."""
    from falcopy.agent.app import default_rules_paths
    from falcopy.agent.control.config import find_default_config, load_config
    from falcopy.engine.loader import rules_inputs

    path = Path(config_path) if config_path else find_default_config()
    cfg = load_config(path, list(options))
    paths = [Path(r) for r in rules] or [Path(p) for p in cfg.rules_files] or default_rules_paths()
    u = os.uname()
    doc = {
        "version": __version__,
        "engine_info": {"engine_version": ENGINE_VERSION, "falco_version": FALCO_COMPAT_VERSION},
        "versions": version_info(),
        "system_info": {"sysname": u.sysname, "nodename": u.nodename, "release": u.release,
                        "version": u.version, "machine": u.machine},
        "cmdline": " ".join(sys.argv),
        "config": _file(path) if path else None,
        "rules_files": [_file(Path(i.name)) for i in rules_inputs(paths)],
    }
    click.echo(json.dumps(doc, indent=2))
