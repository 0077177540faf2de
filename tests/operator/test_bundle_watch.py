"""The agent's rules-bundle watch (falcopy/distribution/bundlewatch.py) against the stand-in
API server, and the choice between its copy and the projected volume's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from falcopy.agent.control.clusterlink import ClusterLink
from falcopy.operator.bundle import Bundle, plan_bundle
from falcopy.operator.model import RuleObject
from falcopy.operator.validate import Validator
from kubernetes import client

from falcopy.distribution.apiaccess import ApiAccess
from falcopy.distribution.bundle import MANIFEST_KEY, BundleDir, parse_manifest, read_rules, verify_bundle
from falcopy.distribution.bundlewatch import BundleWatch
from tests.agent.reload.agentproc import free_port
from tests.agent.reload.kubelet import KubeletVolume
from tests.operator.conftest import REPO
from tests.operator.fake_apiserver import FakeApiServer
from tests.waiting import wait_for

NS = "falcopy"
NAMES = ["rules-0", "rules-1"]
VALIDATOR = Validator([REPO / "rules" / "falcopy_rules.yaml"])


def rule_object(name: str, process: str, size: int = 0) -> RuleObject:
    procs = f"{name.replace('-', '_')}_procs"
    return RuleObject.from_body({
        "kind": "ClusterFalcoRule",
        "metadata": {"name": name, "generation": 1},
        "spec": {"priority": 10,
                 "lists": [{"list": procs,
                            "items": [process, *(f"pad-{i:05d}" for i in range(size))]}],
                 "rules": [{"rule": f"Rule {name}", "desc": "d", "priority": "NOTICE",
                            "condition": f"fp_spawned_process and proc.name in ({procs})",
                            "output": "x %proc.name"}]},
    })


def make_bundle(serial: int, *objects: RuleObject) -> Bundle:
    plan = VALIDATOR.plan(list(objects))
    assert all(v.valid for v in plan.verdicts.values()), plan.verdicts
    return plan_bundle(plan.active, len(NAMES), 4096).stamped(serial)


def publish(core: client.CoreV1Api, b: Bundle) -> None:
    """As the operator does: shards 1.. first, shard 0 (manifest) last."""
    for i in [*range(1, len(NAMES)), 0]:
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=NAMES[i], namespace=NS), data=b.shards[i])
        try:
            core.replace_namespaced_config_map(NAMES[i], NS, body)
        except client.ApiException as exc:
            assert exc.status == 404
            core.create_namespaced_config_map(NS, body)


class Watching:
    def __init__(self, access: ApiAccess, **kwargs: Any) -> None:
        self.bundles: list[BundleDir] = []
        self.watch: BundleWatch | None = None

        async def job(c: Any) -> None:
            self.watch = BundleWatch(c, NS, NAMES, self.bundles.append, **kwargs)
            await self.watch.run()

        self.link = ClusterLink(access, [job])

    def __enter__(self) -> Watching:
        self.link.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.link.stop()


def test_watch_follows_serials_fetches_shards_and_relists_after_410(apiserver: FakeApiServer) -> None:
    core = client.CoreV1Api(client.ApiClient())
    # a big object fills shard 0: the next one lands in shard 1, fetched by name
    first = make_bundle(1, rule_object("big", "miner-a", 220), rule_object("small", "miner-b"))
    assert any(f.shard == 1 for f in first.files)
    with Watching(ApiAccess.discover(), watch_timeout=(1, 2)) as w:
        publish(core, first)
        wait_for(lambda: [b.serial for b in w.bundles] == [1], what="serial 1 delivered")
        assert w.watch is not None and w.watch.requests["get"] == 1
        assert [i.name.rsplit("/", 1)[1] for i in w.bundles[0].inputs] == [f.name for f in first.files]
        assert "API configmaps falcopy/rules-0" == w.bundles[0].origin
        # other ConfigMaps move the resourceVersion on; etcd compaction then expires the watch's
        core.create_namespaced_config_map(NS, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="not-the-bundle"), data={"x": "y"}))
        apiserver.compact()
        wait_for(lambda: w.watch is not None and w.watch.requests["list"] >= 2, what="a list after 410 Gone")
        publish(core, make_bundle(2, rule_object("big", "miner-a", 220), rule_object("small", "miner-c")))
        wait_for(lambda: [b.serial for b in w.bundles] == [1, 2], what="serial 2 delivered")
        # shard 1 changed (small moved content), shard 0's unchanged big file was not fetched again
        assert w.watch.requests["get"] == 2
        # an older serial (a stale operator) is never handed on
        publish(core, make_bundle(1, rule_object("old", "miner-z")))
        publish(core, make_bundle(3, rule_object("new", "miner-n")))
        wait_for(lambda: [b.serial for b in w.bundles] == [1, 2, 3], what="serial 3 delivered")
    # the watch only ever named the bundle's first shard, never another ConfigMap
    paths = [p for m, p in apiserver.store.requests if "/configmaps" in p and "watch=1" in p]
    assert paths and all("fieldSelector=metadata.name%3Drules-0" in p for p in paths)


def test_watch_backs_off_while_the_api_server_is_unreachable() -> None:
    access = ApiAccess(f"http://127.0.0.1:{free_port()}", token="t")
    with Watching(access, backoff=(0.05, 0.2)) as w:
        wait_for(lambda: w.watch is not None and w.watch.requests["failed"] >= 5, what="retries")
        assert w.bundles == [] and "ConnectError" in w.watch.last_error
        wait_for(lambda: w.watch.requests["failed"] >= 12, what="more retries")
        # every failure is followed by a jittered delay under the cap, never a busy loop
        delays = list(w.watch.retry_delays)
        assert len(delays) >= 11 and all(0 <= d <= 0.2 for d in delays) and sum(delays) > 0
        # from the second failure on the bound is the cap: the delays spread over (0, 0.2], not (0, 0.05]
        assert max(delays[1:]) > 0.05


def _api_copy(b: Bundle) -> BundleDir:
    files = {k: v for shard in b.shards for k, v in shard.items() if k != MANIFEST_KEY}
    m = parse_manifest(b.shards[0][MANIFEST_KEY], "api")
    return verify_bundle(m, files.get, files, "api", "api:falcopy/rules-0", "API configmaps falcopy/rules-0")


def _volume(path: Path, b: Bundle) -> KubeletVolume:
    v = KubeletVolume(path)
    v.update({k: v_ for shard in b.shards for k, v_ in shard.items()})
    return v


def test_the_newer_copy_is_read(tmp_path: Path) -> None:
    old, new = make_bundle(3, rule_object("a", "one")), make_bundle(5, rule_object("a", "two"))
    volume = _volume(tmp_path / "vol", old)
    read = read_rules([volume.root], {volume.root: _api_copy(new)})
    assert (read.serial, read.version, read.origins) == (5, new.version, ("API configmaps falcopy/rules-0",))
    assert "two" in read.inputs[0].content
    # the volume ahead of the API copy (the watch was down): the volume
    six = make_bundle(6, rule_object("a", "six"))
    volume.update({k: v for shard in six.shards for k, v in shard.items()})
    read = read_rules([volume.root], {volume.root: _api_copy(new)})
    assert read.serial == 6 and read.origins == (f"volume {volume.root}",)
    # no volume mounted (disabled) and nothing from the API yet: the path is skipped, not an error
    assert read_rules([tmp_path / "absent"], {tmp_path / "absent": None}).inputs == []
    # a volume mid-update (a shard synced, the manifest not yet) gives way to a complete API copy
    (volume.root / "..data").resolve().joinpath("9999-1-extra.yaml").write_text("- list: x\n  items: []\n")
    read = read_rules([volume.root], {volume.root: _api_copy(new)})
    assert read.serial == 5
