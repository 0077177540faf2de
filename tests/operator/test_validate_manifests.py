"""`falcopy validate` of FalcoRule manifests answers as the running admission webhook does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from ruamel.yaml import YAML

from tests.operator.conftest import EXAMPLES, insecure_webhook
from tests.operator.test_operator_e2e import _free_port, _review, condition, create
from tests.waiting import wait_for

MANIFEST = """\
# what `kubectl apply -f` would send, in order
apiVersion: falcopy.io/v1alpha1
kind: ClusterFalcoRule
metadata:
  name: vm-tools
spec:
  lists:
    - list: vm_tools
      items: [virt-what]
---
apiVersion: falcopy.io/v1alpha1
kind: FalcoRule
metadata:
  name: typo
  namespace: web
spec:
  rules:
    - rule: typo in a field
      desc: a misspelt field
      condition: fp_spawned_process and proc.nmae = nginx
      output: x (%proc.name)
      priority: WARNING
---
apiVersion: falcopy.io/v1alpha1
kind: ClusterFalcoRule
metadata:
  name: vm-tools-more
spec:
  lists:
    - list: vm_tools
      items: [dmidecode]
      override:
        items: append
  rules:
    - rule: vm tool run
      desc: a VM detection tool runs
      condition: fp_spawned_process and proc.name in (vm_tools)
      output: vm tool (%proc.cmdline)
      priority: NOTICE
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: unrelated
"""


def _falcopy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("falcopy")), *args],
                          capture_output=True, text=True, timeout=120)


def test_validate_manifest_matches_the_webhook(make_operator, api, apiserver, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(MANIFEST)
    docs = [d for d in YAML(typ="safe").load_all(MANIFEST) if d["kind"] != "ConfigMap"]

    port = _free_port()
    make_operator(webhook=insecure_webhook(port))

    def admit(obj: dict) -> dict:
        plural = "falcorules" if obj["kind"] == "FalcoRule" else "clusterfalcorules"
        # the first call may come before the admission server listens: wait_for retries it
        return wait_for(lambda: httpx.post(f"http://127.0.0.1:{port}/validate-{plural}", json=_review(obj),
                                           timeout=10).json()["response"], what="admission server answer")

    # the webhook, object by object, as kubectl apply would meet it
    first = admit(docs[0])
    assert first["allowed"] is True
    create(api, docs[0])
    accepted = wait_for(lambda: condition(apiserver, "", "vm-tools", plural="clusterfalcorules"),
                        what="vm-tools status")
    assert accepted["status"] == "True", accepted
    denied = admit(docs[1])
    assert denied["allowed"] is False
    assert admit(docs[2])["allowed"] is True  # appends to the list the first object defines

    res = _falcopy("validate", str(path))
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    starts = [i + 1 for i, text in enumerate(MANIFEST.splitlines()) if text.startswith("apiVersion:")]
    assert lines[0].startswith(f"{path}:{starts[0]}: ClusterFalcoRule vm-tools: allowed: 0 rules, 0 macros")
    assert lines[1] == f"{path}:{starts[1]}: FalcoRule web/typo: denied: {denied['status']['message']}"
    assert lines[2].startswith(f"{path}:{starts[2]}: ClusterFalcoRule vm-tools-more: allowed:")
    assert lines[3] == f"{path}:{starts[3]}: ConfigMap: allowed: not a falcopy rule object: skipped"
    assert lines[4] == "invalid: 3 objects allowed, 1 denied"


def test_examples_validate_clean():
    res = _falcopy("validate", *map(str, sorted(EXAMPLES.glob("*.yaml"))))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1] == "valid: 3 objects allowed, 0 denied"
