"""The rules bundle, operator side: pack the active renderings into shard ConfigMaps.

The format and the agents' reader live in :mod:`falcopy.distribution.bundle`.
Each shard is kept under a byte budget below the API server's 1 MiB limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from falcopy.operator.model import ObjKey
from falcopy.operator.render import Rendered

from falcopy.distribution.bundle import MANIFEST_KEY, manifest, sha256

#: the API server refuses a ConfigMap whose keys + values exceed 1 MiB
CONFIGMAP_LIMIT = 1024 * 1024
MAX_KEY = 253
LABELS = {
    "app.kubernetes.io/managed-by": "falcopy-operator",
    "app.kubernetes.io/part-of": "falcopy",
    "app.kubernetes.io/component": "rules",
}
BUNDLE_LABEL = "falcopy.io/rules-bundle"


def size_of(data: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in data.items())


def file_key(shard: int, key: ObjKey) -> str:
    """``1-ns.web.nginx.yaml``: the name depends on the object and its shard only,
    so adding or removing another object renames nothing (the load order is the
    manifest's); the shard is part of the name so a file moving between
    ConfigMaps never exists twice in the projected volume."""
    slug = key.slug
    prefix = f"{shard}-"
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

    def stamped(self, serial: int) -> Bundle:
        """This bundle with ``serial`` in its manifest: the agents order two copies of the
        bundle (API watch, projected volume) by it, so it only ever grows."""
        doc = json.loads(self.shards[0][MANIFEST_KEY])
        if doc.get("serial") == serial:
            return self
        doc["serial"] = serial
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n"
        first = {**self.shards[0], MANIFEST_KEY: text}
        return Bundle(self.version, self.files, [first, *self.shards[1:]], self.overflow)


def plan_bundle(
    active: list[Rendered],
    shards: int,
    budget: int,
    *,
    cluster_reserve: float = 0.0,
    tenant_precedence: bool = False,
    previous: Mapping[ObjKey, int] | None = None,
    published: Mapping[ObjKey, str] | None = None,
) -> Bundle:
    """Pack renderings; shard 0 reserves room for the manifest.

    ``previous``: the shard each object is published in now; ``published``: the
    digest it is published with.  An unchanged object stays in its shard while it
    fits there.  A new or changed object goes to shard 0, the one every agent
    watches (falcopy/distribution/bundlewatch.py), so the change reaches each agent
    in its watch event, with no fetch of another shard by every node; unchanged
    objects in shard 0 move out to make room for it (an agent holds their content
    already, by digest: a move costs it nothing).  A change rewrites shard 0, the
    shard the object left, and the shard an object moved out of shard 0 went to,
    never every shard.  From scratch (no ``previous``) shard 0 is filled last.  Near
    capacity, if that would leave a published object out, the changed objects take
    only the room the published ones leave (a new object never displaces one).

    Cluster-scoped objects are packed first, whatever their priority, and the
    ``cluster_reserve`` share of the capacity stays theirs: namespaced objects
    only get the room beyond it (or beyond what cluster objects use, if more),
    so tenants can never push a ClusterFalcoRule out."""
    if budget > CONFIGMAP_LIMIT:
        raise ValueError(f"shard budget {budget} exceeds the ConfigMap limit {CONFIGMAP_LIMIT}")
    previous = previous or {}
    reserve = 0
    for _ in range(4):  # the manifest's size depends on the packing; converge
        args = (active, shards, budget, reserve, cluster_reserve, tenant_precedence, previous)
        bundle = _pack(*args, published)
        if any(key in previous for key in bundle.overflow):
            # near capacity: a published object never loses its room to a new or changed one,
            # so pack as before (objects stay where they are, the others take what is left)
            bundle = _pack(*args, None, hot=False)
        manifest_size = len(MANIFEST_KEY) + len(bundle.shards[0][MANIFEST_KEY].encode())
        if size_of(bundle.shards[0]) <= budget:
            return bundle
        reserve = manifest_size
    raise RuntimeError("cannot fit the bundle manifest in shard 0")  # pragma: no cover - converges in 2


def _pack(
    active: list[Rendered],
    shards: int,
    budget: int,
    reserve: int,
    cluster_reserve: float,
    precedence: bool,
    previous: Mapping[ObjKey, int],
    published: Mapping[ObjKey, str] | None,
    *,
    hot: bool = True,
) -> Bundle:
    data: list[dict[str, str]] = [{} for _ in range(shards)]
    used = [0] * shards
    used[0] = reserve
    placed: dict[int, BundleFile] = {}
    overflow: list[ObjKey] = []
    seqs = list(enumerate(active))
    cluster = [(seq, r) for seq, r in seqs if not r.key.namespaced]
    tenants = [(seq, r) for seq, r in seqs if r.key.namespaced]
    spent = {False: 0, True: 0}  # bytes of cluster objects, of tenants'
    capacity = shards * budget - reserve
    for group, is_tenant in ((cluster, False), (tenants, True)):
        # tenants share what the cluster's objects and its reserve leave
        room = capacity - max(int(capacity * cluster_reserve), spent[False]) if is_tenant else capacity

        def put(
            seq: int, r: Rendered, candidates: list[int], is_tenant: bool = is_tenant, room: int = room
        ) -> bool:
            for s in candidates:
                name = file_key(s, r.key)
                cost = len(name.encode()) + len(r.text.encode())
                if used[s] + cost > budget or spent[is_tenant] + cost > room:
                    continue
                data[s][name] = r.text
                used[s] += cost
                spent[is_tenant] += cost
                placed[seq] = BundleFile(name, s, r.digest, r.key, r.generation)
                return True
            return False

        def changed(r: Rendered) -> bool:
            if r.key not in previous:
                return True
            return published is not None and published.get(r.key) != r.digest

        # unchanged objects outside shard 0 stay where they are while they fit (in load
        # order); then new and changed ones take shard 0 first (every agent receives it
        # in its watch event); then unchanged objects of shard 0 stay there if room is
        # left, else move to the first shard with room.  Without ``previous`` (from
        # scratch) shard 0 is filled last: the manifest there grows with every object.
        fresh = [(seq, r) for seq, r in group if hot and previous and changed(r)]
        old_zero = [(seq, r) for seq, r in group if hot and previous.get(r.key) == 0 and not changed(r)]
        settled = {seq for seq, _ in fresh + old_zero}
        rest = [
            (seq, r)
            for seq, r in group
            if seq not in settled
            and not (0 <= previous.get(r.key, -1) < shards and put(seq, r, [previous[r.key]]))
        ]
        for seq, r in fresh + old_zero:
            if not put(seq, r, list(range(shards))):
                overflow.append(r.key)
        for seq, r in rest:
            if not put(seq, r, [*range(1, shards), 0]):
                overflow.append(r.key)
    files = [placed[seq] for seq in sorted(placed)]
    version = sha256("\n".join(f"{f.name} {f.sha256}" for f in files) + f"\nprecedence={precedence}")[:16]
    doc = manifest(version, files, precedence)
    data[0][MANIFEST_KEY] = json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n"
    return Bundle(version, files, data, overflow)
