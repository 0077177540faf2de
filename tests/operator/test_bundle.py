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
    name = file_key(12, 3, key)
    assert len(name) <= MAX_KEY and name.startswith("0012-3-ns.") and name.endswith(".yaml")
    assert file_key(12, 3, ObjKey("FalcoRule", "n" * 63, "r" * 252 + "s")) != name


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
