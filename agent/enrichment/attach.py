"""Glue between the process table and the metadata store.

The process table wants ``resolver(pid, cgroup_id) -> container.id``; this
adapter answers it from the cgroup (cached per cgroup id) and hands the full id
and runtime guess to the store, which starts fetching metadata at once, before
any rule asks for a container field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from falcopy.agent.enrichment.model import HOST_CONTAINER_ID
from falcopy.agent.state.cgroup import ContainerIdResolver

if TYPE_CHECKING:  # the store and its clients (httpx) only exist when enrichment is on
    from falcopy.agent.enrichment.store import MetadataStore


def container_resolver(store: MetadataStore | None,
                       resolver: ContainerIdResolver | None = None) -> Callable[[int, int], str]:
    """``(pid, cgroup_id) -> container.id`` for ``ProcessTable(container_resolver=...)``.

    Answers "" when neither /proc nor the cgroup id tells (the table then keeps
    what the process inherited).  A process already gone is still resolved when
    the kernel's cgroup id is given (see ContainerIdResolver)."""
    ids = resolver or ContainerIdResolver()
    seen: set[str] = set()

    def resolve(pid: int, cgroup_id: int) -> str:
        found = ids.resolve(pid, cgroup_id)
        if found is None:
            return ""
        cid, full_id, runtime = found
        if store is not None and cid != HOST_CONTAINER_ID and cid not in seen:
            if len(seen) > 65536:  # container churn on a long-lived node
                seen.clear()
            seen.add(cid)
            store.observe(cid, full_id, runtime, pod_uid=ids.pod_uid(cid))
        return cid

    return resolve
