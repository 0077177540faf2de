"""The rules bundle as it travels from the operator to the agents, and how an agent reads it.

The operator (:mod:`falcopy.operator.bundle`) packs the active renderings, in
load order, into a fixed set of ConfigMaps ``<prefix>-0 .. <prefix>-<shards-1>``.
Shard 0 also carries ``falcopy-manifest.json``: the bundle version and, for
every file, its name, SHA-256, object and generation.  The agents mount all
shards as ONE projected volume (one ``..data`` swap for all of them).

A directory that holds a manifest is *complete* only when every file listed is
present with the listed digest and nothing else is.  The operator writes shards
1.. first and shard 0 (manifest) last, so while the shards are being written or
kubelet has synced only some of them, the manifest does not match and the agent
keeps its running rules; it never loads a partial set (Falco's operator had
exactly that race, falco-operator#410).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falcopy.common.errors import FalcopyError
from falcopy.engine import LoadCode, LoadMessage, LoadResult, RulesInput, load_rules

MANIFEST_KEY = "falcopy-manifest.json"
FORMAT = 1


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: a manifest file entry of this kind is loaded confined to its namespace (the operator's FalcoRule)
NAMESPACED_KIND = "FalcoRule"


def manifest(version: str, files: Iterable[Any], tenant_precedence: bool = False) -> dict[str, Any]:
    """The manifest document of ``files`` (the operator's BundleFile entries)."""
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


class BundleIncomplete(FalcopyError):
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
            LoadCode.ERR_FILE_READ,
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
