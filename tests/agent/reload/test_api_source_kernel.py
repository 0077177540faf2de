"""The real agent (BPF probe attached) receives FalcoRules through the API watch, and
falls back on its projected volume when the API server is unreachable."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from falcopy.operator.model import RuleObject
from falcopy.operator.validate import Validator

from tests.agent.reload.agentproc import free_port
from tests.agent.reload.apiagent import (  # noqa: F401 (api_cluster is a fixture)
    DEFAULTS,
    ApiCluster,
    api_agent,
    api_cluster,
    create_to_fire,
    marker_rule,
)
from tests.agent.reload.kubelet import KubeletVolume
from tests.agent.reload.test_reload_kernel import bundle, files_of, until_fired
from tests.waiting import wait_until

pytestmark = pytest.mark.kernel


def test_falcorule_from_the_api_fires_without_the_volume(
        tmp_path: Path, require_root: None, api_cluster: ApiCluster) -> None:  # noqa: F811
    volume = tmp_path / "operator-rules"  # never created: the projected volume is disabled
    agent = api_agent(tmp_path, api_cluster.kubeconfig, volume)
    try:
        agent.start()
        seconds = create_to_fire(api_cluster, agent, tmp_path, "live1")
        assert seconds > 0
        # the agent says where the rules came from, and reports the version in its Lease
        assert re.search(r"rules bundle \w+ \(serial \d+\) read from API configmaps falcopy/falcopy-rules-0",
                         agent.log()), agent.log()
        assert not volume.exists()
        lease = api_cluster.server.get("leases", "falcopy", f"falcopy-agent-{agent.env['FALCOPY_NODE_NAME']}")
        manifest = api_cluster.server.get("configmaps", "falcopy", "falcopy-rules-0")
        assert lease is not None and manifest is not None
        assert wait_until(lambda: (api_cluster.server.get(
            "leases", "falcopy", f"falcopy-agent-{agent.env['FALCOPY_NODE_NAME']}") or {})
            .get("metadata", {}).get("annotations", {}).get("falcopy.io/rules-version")
            in manifest["data"]["falcopy-manifest.json"]), agent.log()
        # a second change, through the same watch
        assert create_to_fire(api_cluster, agent, tmp_path, "live2") > 0
    finally:
        agent.stop()


def test_api_unreachable_the_volume_still_delivers(tmp_path: Path, require_root: None) -> None:
    # a kubeconfig naming a port nothing listens on: every watch attempt fails
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "c",'
        f' "clusters": [{{"name": "c", "cluster": {{"server": "http://127.0.0.1:{free_port()}"}}}}],'
        ' "users": [{"name": "u", "user": {"token": "t"}}],'
        ' "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}')
    volume = KubeletVolume(tmp_path / "operator-rules")
    agent = api_agent(tmp_path / "agent", kubeconfig, volume.root)
    agent.workdir.mkdir()
    try:
        agent.start()
        assert wait_until(lambda: "rules bundle watch on falcopy/falcopy-rules-0" in agent.log()), agent.log()
        # kubelet syncs the operator's bundle into the volume
        body, rule, prefix = marker_rule("vol")
        obj = RuleObject.from_body({**body, "metadata": {**body["metadata"], "generation": 1}})
        b = bundle(Validator([DEFAULTS]), [obj])
        t0 = time.time()
        volume.update(files_of(b))

        def mkdir() -> None:
            d = tmp_path / f"{prefix}x"
            d.mkdir()
            d.rmdir()

        assert until_fired(agent, rule, mkdir, t0, 60) >= t0
        assert f"read from volume {volume.root}" in agent.log(), agent.log()
        assert "API configmaps" not in agent.log()
    finally:
        agent.stop()
