"""Packing renderings into ConfigMap shards, and reading them back as an agent does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from falcopy.operator.bundle import (
    CONFIGMAP_LIMIT,
    MAX_KEY,
    file_key,
    plan_bundle,
    size_of,
)
from falcopy.operator.model import ObjKey
from falcopy.operator.render import Rendered

from falcopy.distribution.bundle import MANIFEST_KEY, BundleIncomplete, read_rules


def rendering(name: str, size: int, priority: int = 50) -> Rendered:
    text = f"# {name}\n- list: {name}\n  items: [{'x' * size}]\n"
    return Rendered(ObjKey("ClusterFalcoRule", "", name), 1, priority, text)


def test_order_budget_and_manifest() -> None:
    active = [rendering(f"l{i}", 700) for i in range(10)]
    bundle = plan_bundle(active, shards=4, budget=2500)
    assert all(size_of(shard) <= 2500 for shard in bundle.shards)
    assert [f.key.name for f in bundle.files] == [
        f"l{i}" for i in range(10) if ObjKey("ClusterFalcoRule", "", f"l{i}") not in bundle.overflow
    ]
    shards = [f.shard for f in bundle.files]
    assert shards == sorted(shards) and len(set(shards)) >= 3
    names = [f.name for f in bundle.files]
    assert names == sorted(names)  # the file names carry the load order
    doc = json.loads(bundle.shards[0][MANIFEST_KEY])
    assert doc["version"] == bundle.version and [e["name"] for e in doc["files"]] == names
    assert bundle.overflow  # 10 x ~750 bytes cannot fit 4 x 2500 with the manifest


def test_deterministic_and_version_tracks_content() -> None:
    a = plan_bundle([rendering("x", 10), rendering("y", 10)], shards=2, budget=4096)
    b = plan_bundle([rendering("x", 10), rendering("y", 10)], shards=2, budget=4096)
    c = plan_bundle([rendering("x", 10), rendering("y", 11)], shards=2, budget=4096)
    assert a.shards == b.shards and a.version == b.version and c.version != a.version


def test_budget_cannot_exceed_the_api_limit() -> None:
    with pytest.raises(ValueError):
        plan_bundle([], shards=1, budget=CONFIGMAP_LIMIT + 1)


def test_long_names_stay_valid_configmap_keys() -> None:
    key = ObjKey("FalcoRule", "n" * 63, "r" * 253)
    name = file_key(3, key)
    assert len(name) <= MAX_KEY and name.startswith("3-ns.") and name.endswith(".yaml")
    assert file_key(3, ObjKey("FalcoRule", "n" * 63, "r" * 252 + "s")) != name


def test_reader_plain_dir_and_tampering(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "b.yaml").write_text("- list: b\n  items: []\n")
    (plain / "a.yml").write_text("- list: a\n  items: []\n")
    (plain / "notes.txt").write_text("ignored")
    loaded = read_rules([plain])
    assert [Path(i.name).name for i in loaded.inputs] == ["a.yml", "b.yaml"] and loaded.version == ""
    bundle = plan_bundle([rendering("x", 10)], shards=1, budget=4096)
    d = tmp_path / "bundle"
    d.mkdir()
    for k, v in bundle.shards[0].items():
        (d / k).write_text(v)
    assert read_rules([d]).version == bundle.version
    (d / bundle.files[0].name).write_text("- list: x\n  items: [tampered]\n")
    with pytest.raises(BundleIncomplete, match="does not match"):
        read_rules([d])
    (d / bundle.files[0].name).write_text(bundle.shards[0][bundle.files[0].name])
    (d / "9999-0-stray.yaml").write_text("[]\n")
    with pytest.raises(BundleIncomplete, match="not in the manifest"):
        read_rules([d])


def tenant_rendering(ns: str, name: str, size: int, priority: int = 0) -> Rendered:
    text = f"# {name}\n- list: {name}__{ns}\n  items: [{'x' * size}]\n"
    return Rendered(ObjKey("FalcoRule", ns, name), 1, priority, text)


def test_cluster_objects_packed_first_with_reserved_room(tmp_path: Path) -> None:
    tenants = [tenant_rendering(f"t{i}", "fill", 3000) for i in range(6)]
    cluster = Rendered(ObjKey("ClusterFalcoRule", "", "late"), 1, 99, "- list: late\n  items: [y]\n")
    active = [*tenants, cluster]  # load order: the tenants' priority 0 first
    bundle = plan_bundle(active, shards=2, budget=8000, cluster_reserve=0.25, tenant_precedence=True)
    assert bundle.file_of(cluster.key) is not None
    tenant_bytes = sum(
        len(f.name) + len(next(r.text for r in tenants if r.key == f.key))
        for f in bundle.files
        if f.key.namespaced
    )
    assert tenant_bytes <= 0.75 * 2 * 8000 and bundle.overflow  # the tenants share what is left
    assert [f.key for f in bundle.files] == [
        r.key for r in active if r.key not in bundle.overflow
    ]  # load order
    # what the agent reads: each file with its namespace, and the bundle's precedence setting
    for shard in bundle.shards:
        for name, text in shard.items():
            (tmp_path / name).write_text(text)
    loaded = read_rules([tmp_path])
    assert loaded.tenant_precedence is True
    assert [i.namespace for i in loaded.inputs] == [f.key.namespace or None for f in bundle.files]
