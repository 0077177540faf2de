"""The rules bundle as it travels from the operator to the agents, and how an agent reads it.

The operator (:mod:`falcopy.operator.bundle`) packs the active renderings, in
load order, into a fixed set of ConfigMaps ``<prefix>-0 .. <prefix>-<shards-1>``.
Shard 0 also carries ``falcopy-manifest.json``: the bundle version (a content
hash), its serial (a counter the operator raises on every new version, so two
copies of the bundle can be ordered) and, for every file, its name, shard,
SHA-256, object and generation.  The agents mount all shards as ONE projected
volume (one ``..data`` swap for all of them) and also watch shard 0 through the
API (:mod:`falcopy.distribution.bundlewatch`); of the two copies the one with
the higher serial is loaded (:func:`read_rules`).

A directory that holds a manifest is *complete* only when every file listed is
present with the listed digest and nothing else is.  The operator writes shards
1.. first and shard 0 (manifest) last, so while the shards are being written or
kubelet has synced only some of them, the manifest does not match and the agent
keeps its running rules; it never loads a partial set (Falco's operator had
exactly that race, falco-operator#410).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from falcopy.common.errors import FalcopyError
from falcopy.engine import LoadCode, LoadMessage, LoadResult, RulesInput, load_rules

MANIFEST_KEY = "falcopy-manifest.json"
FORMAT = 1


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: a manifest file entry of this kind is loaded confined to its namespace (the operator's FalcoRule)
NAMESPACED_KIND = "FalcoRule"


def manifest(
    version: str, files: Iterable[Any], tenant_precedence: bool = False, serial: int = 0
) -> dict[str, Any]:
    """The manifest document of ``files`` (the operator's BundleFile entries)."""
    return {
        "format": FORMAT,
        "version": version,
        "serial": serial,
        # may a namespaced rule take the first-match slot from a cluster rule in its namespace?
        "tenant_precedence": tenant_precedence,
        "files": [
            {
                "name": f.name,
                "shard": f.shard,
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
    #: the highest bundle serial read (0: none)
    serial: int = 0
    #: where each bundle came from ("volume /etc/...", "API configmaps ns/name"), for the log
    origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class BundleDir:
    """A verified bundle: its rules in manifest order."""

    inputs: list[RulesInput]
    version: str
    tenant_precedence: bool
    serial: int = 0
    #: "volume <dir>" or "API <namespace>/<configmap>"
    origin: str = ""


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    sha256: str
    #: the shard ConfigMap holding the file (None: a manifest written before shards were listed)
    shard: int | None
    #: loaded confined to this namespace (a FalcoRule's file), else None
    namespace: str | None


@dataclass(frozen=True)
class Manifest:
    version: str
    serial: int
    tenant_precedence: bool
    entries: list[ManifestEntry]


def parse_manifest(raw: str, where: str) -> Manifest:
    """``falcopy-manifest.json``; BundleIncomplete naming ``where`` if unreadable."""
    try:
        doc = orjson.loads(raw)
        entries = [
            ManifestEntry(
                str(e["name"]),
                str(e["sha256"]),
                int(e["shard"]) if e.get("shard") is not None else None,
                str(e["namespace"]) if e.get("kind") == NAMESPACED_KIND and e.get("namespace") else None,
            )
            for e in doc["files"]
        ]
        return Manifest(str(doc["version"]), int(doc.get("serial") or 0),
                        doc.get("tenant_precedence") is True, entries)
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleIncomplete(f"{where}/{MANIFEST_KEY}: unreadable manifest: {exc}") from exc


def verify_bundle(
    m: Manifest, read: Callable[[str], str | None], extra: Iterable[str], where: str, shown: str, origin: str
) -> BundleDir:
    """The bundle ``m`` describes, if ``read`` (file name -> text, None when absent) holds
    exactly its files with their digests and ``extra`` (the other rules files present)
    is empty; else BundleIncomplete naming ``where``.  Files are shown as ``shown/name``."""
    inputs = []
    for e in m.entries:
        text = read(e.name)
        if text is None:
            raise BundleIncomplete(f"{where}: {e.name} listed in the manifest is missing")
        if sha256(text) != e.sha256:
            raise BundleIncomplete(f"{where}: {e.name} does not match the manifest yet")
        inputs.append(RulesInput(f"{shown}/{e.name}", text, e.namespace))
    listed = {e.name for e in m.entries}
    unlisted = sorted(n for n in extra if n not in listed)
    if unlisted:
        raise BundleIncomplete(f"{where}: files not in the manifest yet: {', '.join(unlisted[:5])}")
    return BundleDir(inputs, m.version, m.tenant_precedence, m.serial, origin)


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
    m = parse_manifest(raw, str(directory))

    def read(name: str) -> str | None:
        try:
            # bytes as written: a text-mode read would turn a stray \r into \n and the digest,
            # taken over what the operator wrote, would never match again
            return (base / name).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    try:
        extra = [f.name for f in base.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()]
    except OSError as exc:
        raise BundleIncomplete(f"{directory}: {exc}") from exc
    # shown under the mount path, not kubelet's timestamped directory
    return verify_bundle(m, read, extra, str(directory), str(directory), f"volume {directory}")


def read_rules(
    paths: Iterable[Path | str], alternatives: Mapping[Path, BundleDir | None] | None = None
) -> LoadedRules:
    """Rules files and directories as the agent loads them (sorted .yaml/.yml of a
    plain directory, like Falco); bundle directories verified against their
    manifest (raises BundleIncomplete while mid-update).

    ``alternatives``: another copy of the bundle a directory is meant to hold (the
    agent's API watch); of the two, the one with the higher serial is read, and the
    alternative stands in for a directory that is missing or mid-update.  A directory
    with an alternative still to come (None) may be missing: it is skipped."""
    alternatives = alternatives or {}
    inputs: list[RulesInput] = []
    versions: list[str] = []
    origins: list[str] = []
    precedence = False
    serial = 0
    for p in paths:
        path = Path(p)
        other = alternatives.get(path)
        bundle: BundleDir | None = None
        if path.is_dir():
            try:
                bundle = read_bundle_dir(path)
            except BundleIncomplete:
                if other is None:
                    raise
            if other is not None and (bundle is None or other.serial > bundle.serial):
                bundle = other
        elif path in alternatives:  # the volume is not mounted (or disabled): the API copy only
            if other is None:
                continue
            bundle = other
        if bundle is not None:
            inputs.extend(bundle.inputs)
            versions.append(bundle.version)
            origins.append(bundle.origin)
            precedence = precedence or bundle.tenant_precedence
            serial = max(serial, bundle.serial)
            continue
        if path.is_dir():
            base = _resolve(path)
            for f in sorted(x for x in base.iterdir() if x.is_file() and x.suffix in (".yml", ".yaml")):
                inputs.append(RulesInput(str(path / f.name), f.read_text(encoding="utf-8", errors="replace")))
        else:
            inputs.append(RulesInput(str(path), path.read_text(encoding="utf-8", errors="replace")))
    return LoadedRules(inputs, "+".join(versions), precedence, serial, tuple(origins))


def load_bundle_rules(
    paths: Iterable[Path | str], alternatives: Mapping[Path, BundleDir | None] | None = None, **kwargs: Any
) -> tuple[LoadResult, LoadedRules]:
    """``load_rules_files`` for the agent, bundle-aware: (result, what was read:
    bundle version, serial and origins; see :func:`read_rules`).

    Raises BundleIncomplete while a bundle directory is mid-update (the caller
    keeps its running rules and retries); unreadable files become
    ``LOAD_ERR_FILE_READ`` errors as with ``load_rules_files``."""
    paths = list(paths)
    try:
        loaded = read_rules(paths, alternatives)
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
        return LoadResult(errors=[error], names=[str(p) for p in paths]), LoadedRules([], "")
    kwargs.setdefault("tenant_precedence", loaded.tenant_precedence)
    return load_rules(loaded.inputs, **kwargs), loaded
