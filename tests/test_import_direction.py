"""Imports flow one way (docs/architecture.md): every import between falcopy's packages
points to a lower layer.  Lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: installed package -> folder (setup.py maps agent/ and operator/ into falcopy)
ROOTS = {"falcopy": REPO / "falcopy", "falcopy.agent": REPO / "agent", "falcopy.operator": REPO / "operator"}

#: top-level layers, lowest first; the same rank means "siblings, never each other"
LAYERS = {
    "falcopy.common": 0,
    "falcopy.engine": 1,
    "falcopy.distribution": 2,
    "falcopy.agent": 3,
    "falcopy.operator": 3,
    "falcopy.falco_argv": 4,
    "falcopy.cli_engine": 4,
    "falcopy.cli_info": 4,
    "falcopy.cli_commands": 4,
    "falcopy.cli": 5,
    "falcopy.__main__": 6,
}
#: inside the agent, the data flow: kernel -> events -> state -> enrichment -> fields ->
#: pipeline; control (configuration, metrics, web, watch) is read by outputs and the app
AGENT_LAYERS = {
    "bpf": 0,  # the compiled probe object (package data)
    "accel": -1,  # which modules run compiled (imports nothing of the agent)
    "__init__": 0,
    "cython_shim": 0,  # `cython` for the compiled modules' source where Cython is absent
    "events": 0,
    "kernel": 1,
    "preflight": 1,  # start-up checks (capabilities, BTF, ports): imports nothing of the agent
    "state": 1,
    "audit": 2,
    "enrichment": 2,
    "rulecheck": 6,  # which rules can never fire with this configuration on this kernel
    "fields": 3,
    "prefilter": 3,  # which open records no rule can match (from the kernel filter derivation)
    "socket_prefilter": 3,  # which socket/connect records no rule can match (from the rules)
    "fastpath": 3,  # the pipeline's loop over raw records (compiled by make accel)
    "pipeline": 4,
    "control": 5,
    "outputs": 6,
    "capture": 7,  # the flight recorder and capture files: on top of the pipeline and the outputs
    "runtime": 8,  # the running agent's parts: event thread, reloader, capture selection
    "app": 9,
    "cli": 10,
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in ROOTS.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            if package == "falcopy" and parts and parts[0] in ("agent", "operator"):
                continue
            found[".".join([package, *parts])] = path
    return found


def _imports(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
    return [(name, line) for name, line in out if name == "falcopy" or name.startswith("falcopy.")]


def _layer(module: str) -> str | None:
    """The top-level layer of a module; None for the root package (its version only)."""
    if module == "falcopy":
        return None
    return next((layer for layer in sorted(LAYERS, key=len, reverse=True)
                 if module == layer or module.startswith(layer + ".")), module)


def _agent_part(module: str) -> str:
    # the package's own __init__ installs the compiled modules' chooser: below every part
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else "__init__"


def _violation(importer: str, imported: str) -> str | None:
    a, b = _layer(importer), _layer(imported)
    if b is None or (a == b and a != "falcopy.agent"):
        return None
    if a not in LAYERS or b not in LAYERS:
        return f"{a if a not in LAYERS else b} is in no layer of this test: add it"
    if a == b:  # inside the agent
        pa, pb = _agent_part(importer), _agent_part(imported)
        if pa == pb:
            return None
        if pa not in AGENT_LAYERS or pb not in AGENT_LAYERS:
            return f"falcopy.agent.{pa if pa not in AGENT_LAYERS else pb} is in no agent layer: add it"
        return None if AGENT_LAYERS[pb] < AGENT_LAYERS[pa] else f"agent.{pa} must not import agent.{pb}"
    return None if LAYERS[b] < LAYERS[a] else f"{a} must not import {b}"


def test_every_package_has_a_layer() -> None:
    for module in _modules():
        layer = _layer(module)
        if layer is None:
            continue
        assert layer in LAYERS, module
        if layer == "falcopy.agent" and module != "falcopy.agent":
            assert _agent_part(module) in AGENT_LAYERS, module


def test_imports_point_down() -> None:
    problems = []
    for module, path in sorted(_modules().items()):
        for imported, line in _imports(path):
            why = _violation(module, imported)
            if why:
                problems.append(f"{path.relative_to(REPO)}:{line}: {module} imports {imported}: {why}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("importer", "imported"), [
    ("falcopy.agent.app", "falcopy.operator.bundle"),
    ("falcopy.operator.nodes", "falcopy.agent.control.lease"),
    ("falcopy.engine.loader", "falcopy.distribution.bundle"),
    ("falcopy.common.errors", "falcopy.engine"),
    ("falcopy.agent.state.cgroup", "falcopy.agent.enrichment.model"),
    ("falcopy.agent.enrichment.announce", "falcopy.agent.fields.event"),
    ("falcopy.agent.outputs.format", "falcopy.agent.app"),
    ("falcopy.cli_engine", "falcopy.cli"),
])
def test_the_check_catches_upward_imports(importer: str, imported: str) -> None:
    assert _violation(importer, imported)
