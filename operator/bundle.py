"""The rules bundle: how published FalcoRules travel from the operator to the agents.

Operator side: the active renderings are packed, in load order, into a fixed
set of ConfigMaps ``<prefix>-0 .. <prefix>-<shards-1>`` (each kept under a
byte budget below the API server's 1 MiB limit).  Shard 0 also carries
``falcopy-manifest.json``: the bundle version and, for every file, its name,
SHA-256, object and generation.  The agents mount all shards as ONE projected
volume (one ``..data`` swap for all of them).

Agent side: a directory that holds a manifest is *complete* only when every
file listed is present with the listed digest and nothing else is.  The
operator writes shards 1.. first and shard 0 (manifest) last, so while the
shards are being written or kubelet has synced only some of them, the
manifest does not match and the agent keeps its running rules; it never loads
a partial set (Falco's operator had exactly that race, falco-operator#410).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falcopy.operator.model import NAMESPACED_KIND, ObjKey
from falcopy.operator.render import Rendered

from falcopy.engine import LoadMessage, LoadResult, RulesInput, load_rules

MANIFEST_KEY = "falcopy-manifest.json"
FORMAT = 1
#: the API server refuses a ConfigMap whose keys + values exceed 1 MiB
CONFIGMAP_LIMIT = 1024 * 1024
MAX_KEY = 253
LABELS = {
    "app.kubernetes.io/managed-by": "falcopy-operator",
    "app.kubernetes.io/part-of": "falcopy",
    "app.kubernetes.io/component": "rules",
}
BUNDLE_LABEL = "falcopy.io/rules-bundle"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def size_of(data: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in data.items())


def file_key(seq: int, shard: int, key: ObjKey) -> str:
    """``0007-1-ns.web.nginx.yaml``: sorted by load order; the shard is part of
    the name so a file moving between ConfigMaps never exists twice in the
    projected volume."""
    slug = key.slug
    prefix = f"{seq:04d}-{shard}-"
    room = MAX_KEY - len(prefix) - len(".yaml")
    if len(slug) > room:
        slug = slug[: room - 9] + "-" + sha256(key.slug)[:8]
    return f"{prefix}{slug}.yaml"


@dataclass(frozen=True)
class BundleFile:
    name: str
    shard: int
    sha256: str
    key: ObjKey
    generation: int


@dataclass
class Bundle:
    version: str
    files: list[BundleFile]
    #: data of each shard ConfigMap (shard 0 includes the manifest)
    shards: list[dict[str, str]]
    #: objects that did not fit in the shards' budget (not published)
    overflow: list[ObjKey] = field(default_factory=list)

    def file_of(self, key: ObjKey) -> BundleFile | None:
        return next((f for f in self.files if f.key == key), None)


def manifest(version: str, files: Iterable[BundleFile], tenant_precedence: bool = False) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": version,
        # may a namespaced rule take the first-match slot from a cluster rule in its namespace?
        "tenant_precedence": tenant_precedence,
        "files": [
            {
                "name": f.name,
                "sha256": f.sha256,
                "kind": f.key.kind,
                "namespace": f.key.namespace,
                "object": f.key.name,
                "generation": f.generation,
            }
            for f in files
        ],
    }


def plan_bundle(
    active: list[Rendered],
    shards: int,
    budget: int,
    *,
    cluster_reserve: float = 0.0,
    tenant_precedence: bool = False,
) -> Bundle:
    """Pack renderings; shard 0 reserves room for the manifest.

    Cluster-scoped objects are packed first, whatever their priority, and the
    ``cluster_reserve`` share of the capacity stays theirs: namespaced objects
    only get the room beyond it (or beyond what cluster objects use, if more),
    so tenants can never push a ClusterFalcoRule out."""
    if budget > CONFIGMAP_LIMIT:
        raise ValueError(f"shard budget {budget} exceeds the ConfigMap limit {CONFIGMAP_LIMIT}")
    reserve = 0
    for _ in range(4):  # the manifest's size depends on the packing; converge
        bundle = _pack(active, shards, budget, reserve, cluster_reserve, tenant_precedence)
        manifest_size = len(MANIFEST_KEY) + len(bundle.shards[0][MANIFEST_KEY].encode())
        if size_of(bundle.shards[0]) <= budget:
            return bundle
        reserve = manifest_size
    raise RuntimeError("cannot fit the bundle manifest in shard 0")  # pragma: no cover - converges in 2


def _pack(
    active: list[Rendered], shards: int, budget: int, reserve: int, cluster_reserve: float, precedence: bool
) -> Bundle:
    data: list[dict[str, str]] = [{} for _ in range(shards)]
    used = [0] * shards
    used[0] = reserve
    placed: dict[int, BundleFile] = {}
    overflow: list[ObjKey] = []
    seqs = list(enumerate(active))
    cluster = [(seq, r) for seq, r in seqs if not r.key.namespaced]
    tenants = [(seq, r) for seq, r in seqs if r.key.namespaced]
    cluster_bytes = 0
    for group, is_tenant in ((cluster, False), (tenants, True)):
        # tenants share what the cluster's objects and its reserve leave
        capacity = shards * budget - reserve
        room = capacity - max(int(capacity * cluster_reserve), cluster_bytes) if is_tenant else None
        tenant_bytes = 0
        shard = 0
        for seq, r in group:
            ok = False
            # order is carried by the names and the manifest, so a later small file may still go
            # in an earlier shard's remaining room without reordering anything
            for s in range(shard, shards):
                name = file_key(seq, s, r.key)
                cost = len(name.encode()) + len(r.text.encode())
                if used[s] + cost > budget or (room is not None and tenant_bytes + cost > room):
                    continue
                data[s][name] = r.text
                used[s] += cost
                placed[seq] = BundleFile(name, s, r.digest, r.key, r.generation)
                if is_tenant:
                    tenant_bytes += cost
                else:
                    cluster_bytes += cost
                shard = s
                ok = True
                break
            if not ok:
                overflow.append(r.key)
    files = [placed[seq] for seq in sorted(placed)]
    version = sha256("\n".join(f"{f.name} {f.sha256}" for f in files) + f"\nprecedence={precedence}")[:16]
    doc = manifest(version, files, precedence)
    data[0][MANIFEST_KEY] = json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n"
    return Bundle(version, files, data, overflow)


# ---------------------------------------------------------------------------- agent side


class BundleIncomplete(Exception):
    """A bundle directory is mid-update: its files do not match its manifest yet."""


@dataclass(frozen=True)
class LoadedRules:
    inputs: list[RulesInput]
    #: the bundle version(s) read, "" when no path holds a manifest
    version: str
    #: a bundle allows namespaced rules to take the first-match slot in their namespace
    tenant_precedence: bool = False


@dataclass(frozen=True)
class BundleDir:
    inputs: list[RulesInput]
    version: str
    tenant_precedence: bool


def _resolve(directory: Path) -> Path:
    """A ConfigMap volume: read through ``..data`` resolved ONCE, so every file
    comes from the same kubelet snapshot even if a swap happens meanwhile."""
    data = directory / "..data"
    return Path(os.path.realpath(data)) if data.is_symlink() else directory


def read_bundle_dir(directory: Path) -> BundleDir | None:
    """The directory's rules in manifest order, verified; None if it has no manifest."""
    base = _resolve(directory)
    try:
        raw = (base / MANIFEST_KEY).read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:  # the snapshot vanished under us: kubelet swapped again
        raise BundleIncomplete(f"{directory}: {exc}") from exc
    try:
        doc = json.loads(raw)
        entries = [(str(e["name"]), str(e["sha256"])) for e in doc["files"]]
        # a namespaced object's file is loaded confined to its namespace
        namespaces = [
            str(e["namespace"]) if e.get("kind") == NAMESPACED_KIND and e.get("namespace") else None
            for e in doc["files"]
        ]
        version = str(doc["version"])
        precedence = doc.get("tenant_precedence") is True
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleIncomplete(f"{directory}/{MANIFEST_KEY}: unreadable manifest: {exc}") from exc
    inputs = []
    for (name, digest), namespace in zip(entries, namespaces, strict=True):
        try:
            text = (base / name).read_text(encoding="utf-8")
        except OSError as exc:
            raise BundleIncomplete(f"{directory}: {name} listed in the manifest is missing") from exc
        if sha256(text) != digest:
            raise BundleIncomplete(f"{directory}: {name} does not match the manifest yet")
        # shown under the mount path, not kubelet's timestamped directory
        inputs.append(RulesInput(str(directory / name), text, namespace))
    listed = {n for n, _ in entries}
    extra = sorted(
        f.name
        for f in base.iterdir()
        if f.suffix in (".yaml", ".yml") and f.name not in listed and f.is_file()
    )
    if extra:
        raise BundleIncomplete(f"{directory}: files not in the manifest yet: {', '.join(extra[:5])}")
    return BundleDir(inputs, version, precedence)


def read_rules(paths: Iterable[Path | str]) -> LoadedRules:
    """Rules files and directories as the agent loads them (sorted .yaml/.yml of a
    plain directory, like Falco); bundle directories verified against their
    manifest (raises BundleIncomplete while mid-update)."""
    inputs: list[RulesInput] = []
    versions: list[str] = []
    precedence = False
    for p in paths:
        path = Path(p)
        if path.is_dir():
            bundle = read_bundle_dir(path)
            if bundle is not None:
                inputs.extend(bundle.inputs)
                versions.append(bundle.version)
                precedence = precedence or bundle.tenant_precedence
                continue
            base = _resolve(path)
            for f in sorted(x for x in base.iterdir() if x.is_file() and x.suffix in (".yml", ".yaml")):
                inputs.append(RulesInput(str(path / f.name), f.read_text(encoding="utf-8", errors="replace")))
        else:
            inputs.append(RulesInput(str(path), path.read_text(encoding="utf-8", errors="replace")))
    return LoadedRules(inputs, "+".join(versions), precedence)


def load_bundle_rules(paths: Iterable[Path | str], **kwargs: Any) -> tuple[LoadResult, str]:
    """``load_rules_files`` for the agent, bundle-aware: (result, bundle version).

    Raises BundleIncomplete while a bundle directory is mid-update (the caller
    keeps its running rules and retries); unreadable files become
    ``LOAD_ERR_FILE_READ`` errors as with ``load_rules_files``."""
    paths = list(paths)
    try:
        loaded = read_rules(paths)
    except BundleIncomplete:
        raise
    except OSError as exc:
        name = str(exc.filename or (paths[0] if paths else ""))
        error = LoadMessage(
            "LOAD_ERR_FILE_READ",
            f"Could not read rules file: {exc.strerror}",
            name,
            1,
            1,
            "rules content",
            "",
        )
        return LoadResult(errors=[error], names=[str(p) for p in paths]), ""
    kwargs.setdefault("tenant_precedence", loaded.tenant_precedence)
    return load_rules(loaded.inputs, **kwargs), loaded.version
