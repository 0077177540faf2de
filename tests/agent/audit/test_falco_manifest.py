"""Falco's own k8s audit test manifest, replayed through the real endpoint.

Each case's trace file is POSTed event by event to the webhook over
loopback; the events are evaluated with the rules files the case names and
the per-rule alert counts must equal the manifest's ``detect_counts`` (or be
empty for ``detect: False``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from falcopy.engine import Priority
from tests.agent.audit.harness import load_ruleset_inputs, running_webhook
from tests.conftest import FIXTURES_DIR as _FIXTURES


def _cases() -> list[tuple[str, dict[str, Any]]]:
    manifest = _FIXTURES / "falco_k8s_audit_tests.yaml"
    if not manifest.is_file():
        # collected without the compat files: the falco_fixtures_dir fixture fails the test loudly
        return [("manifest-missing", {})]
    doc = YAML(typ="rt").load(manifest.read_text())
    return [(name, dict(case)) for name, case in doc["trace_files"].items()]


# Falco 0.36 split the single falco_rules.yaml the 0.35.1 manifest names into
# stable/incubating/sandbox/deprecated files, and later releases dropped the
# `falco_hostnetwork_images` list that trust_nginx_container.yaml appends to.
# Deliberate difference: the manifest's falco_rules.yaml is the four current
# files plus that one (empty) list, so its `append: true` targets exist again.
_SPLIT_FALCO_RULES = ("falco_rules.yaml", "falco-incubating_rules.yaml",
                      "falco-sandbox_rules.yaml", "falco-deprecated_rules.yaml")
_DROPPED_LISTS = ("falco-0.35-lists (test stand-in)",
                  "- list: falco_hostnetwork_images\n  items: []\n")


# Cases whose verdict changed with the rules files, not with the engine.  Each
# entry: the verdict under the current k8s_audit_rules.yaml and why.
_RENAMED = "k8s_audit_rules.yaml split the 'K8s Role/Clusterrole*' rules into Role and ClusterRole rules"
_OWN_LISTS = ("k8s_audit_rules.yaml now exempts images through its own k8s_audit_*_images lists; "
              "trust_nginx_container.yaml appends to the syscall falco_*_images lists, so nginx is no "
              "longer trusted by the audit rules (test_trust_through_current_lists shows the current way)")
DIFFERENCES: dict[str, tuple[dict[str, int], str]] = {
    "create_clusterrole": ({"K8s ClusterRole Created": 1}, _RENAMED),
    "delete_clusterrole": ({"K8s ClusterRole Deleted": 1}, _RENAMED),
    "create_clusterrolebinding": ({"K8s ClusterRoleBinding Created": 1}, _RENAMED),
    "delete_clusterrolebinding": ({"K8s ClusterRoleBinding Deleted": 1}, _RENAMED),
    "create_privileged_trusted_pod": ({"Create Privileged Pod": 1}, _OWN_LISTS),
    "create_sensitive_mount_trusted_pod": ({"Create Sensitive Mount Pod": 1}, _OWN_LISTS),
    "create_hostnetwork_trusted_pod": ({"Create HostNetwork Pod": 1}, _OWN_LISTS),
}


def _rules_inputs(entry: str, compat_dir: Path, fixtures: Path) -> list[tuple[str, str]]:
    if entry.startswith("BUILD_DIR/"):
        # BUILD_DIR holds the upstream rules files, which CI lays in compat/
        name = Path(entry).name
        if name != "falco_rules.yaml":
            return [(str(compat_dir / name), (compat_dir / name).read_text())]
        files = [compat_dir / f for f in _SPLIT_FALCO_RULES]
        return [(str(f), f.read_text()) for f in files] + [_DROPPED_LISTS]
    return [(str(fixtures / entry), (fixtures / entry).read_text())]


def _trace_path(case: dict[str, Any], fixtures: Path) -> Path:
    opts = str(case["addl_cmdline_opts"])
    _, _, value = opts.partition("open_params=")
    return fixtures / value.split()[0]


@pytest.mark.parametrize(("name", "case"), _cases(), ids=[n for n, _ in _cases()])
async def test_falco_k8s_audit_case(name: str, case: dict[str, Any], compat_dir: Path,
                                    falco_fixtures_dir: Path) -> None:
    assert case, "falco_k8s_audit_tests.yaml not found"
    inputs = tuple(item for p in case["rules_file"]
                   for item in _rules_inputs(str(p), compat_dir, falco_fixtures_dir))
    ruleset = load_ruleset_inputs(inputs)
    lines = [ln for ln in _trace_path(case, falco_fixtures_dir).read_text().splitlines() if ln.strip()]
    assert lines

    async with running_webhook(ruleset) as hook:
        statuses = [(await hook.post(line))[0] for line in lines]

    if "stderr_contains" in case:
        # Falco refuses the data; the endpoint answers 4xx and counts it
        assert all(400 <= s < 500 for s in statuses), statuses
        assert hook.webhook.stats.events_rejected == len(lines)
    else:
        assert statuses == [200] * len(lines)
        assert len(hook.seen) == len(lines)

    counts = hook.counts()
    if name in DIFFERENCES:
        expected_now, _reason = DIFFERENCES[name]
        assert dict(counts) == expected_now, f"{name}: {dict(counts)}"
        return
    if not case.get("detect", False):
        assert counts == Counter(), f"{name}: expected no alert"
        return
    expected = Counter()
    for entry in case.get("detect_counts") or []:
        for rule, n in dict(entry).items():
            expected[str(rule)] += int(n)
    if expected:
        assert {r: counts[r] for r in expected} == dict(expected), f"{name}: {dict(counts)}"
    level = Priority.parse(str(case["detect_level"]))
    assert any(prio == level for _, prio, _ in hook.alerts), f"{name}: no alert at {level}"


@pytest.mark.parametrize(("trace", "list_name"), [
    ("create_nginx_pod_privileged.json", "k8s_audit_privileged_images"),
    ("create_nginx_pod_sensitive_mount.json", "k8s_audit_sensitive_mount_images"),
    ("create_nginx_pod_hostnetwork.json", "k8s_audit_hostnetwork_images"),
])
async def test_trust_through_current_lists(trace: str, list_name: str, compat_dir: Path,
                                           falco_fixtures_dir: Path) -> None:
    """The *_trusted_pod cases' intent with today's rules: nginx appended to the audit list."""
    rules = compat_dir / "k8s_audit_rules.yaml"
    trust = f"- list: {list_name}\n  items: [nginx]\n  override:\n    items: append\n"
    ruleset = load_ruleset_inputs(((str(rules), rules.read_text()), ("trust-nginx", trust)))
    line = (falco_fixtures_dir / "trace_files" / "k8s_audit" / trace).read_text().splitlines()[0]
    async with running_webhook(ruleset) as hook:
        assert (await hook.post(line))[0] == 200
    assert hook.counts() == Counter()
