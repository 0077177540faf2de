"""Bursts are coalesced (issue 22): 100 applies cost a bounded number of ConfigMap and status
writes, counted on the stand-in API server, and every change is published."""

from __future__ import annotations

import math
import time

from falcopy.operator.model import ObjKey, RuleObject

from tests.operator.conftest import RELEASE_NS
from tests.operator.scale import falcorule_spec, manifest, namespace
from tests.operator.test_operator_e2e import create, objects_in_bundle, patch_spec
from tests.waiting import wait_for

SHARDS = 2
MAX_DELAY = 0.5
BURST = 100


def _index(o: RuleObject) -> int:
    return int(o.key.name.rsplit("-", 1)[1])


def writes(apiserver, since: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(ConfigMap writes, status writes) among the requests after index ``since``."""
    requests = apiserver.store.requests[since:]
    cms = sum(1 for m, p in requests if m in ("POST", "PUT", "PATCH") and "/configmaps" in p)
    statuses = sum(1 for m, p in requests if m == "PATCH" and p.split("?")[0].endswith("/status"))
    return cms, statuses


def published(apiserver, generation: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        got = objects_in_bundle(apiserver)
    except (AssertionError, KeyError):
        return False
    return len(got) == BURST and all(g == generation for *_, g in got)


def statuses_observed(apiserver, generation: int) -> bool:  # type: ignore[no-untyped-def]
    objs = apiserver.objects("falcorules")
    return len(objs) == BURST and all(
        (o.get("status") or {}).get("observedGeneration") == generation
        and (o.get("status") or {}).get("activeGeneration") == generation
        for o in objs
    )


def test_burst_of_applies_is_coalesced(make_operator, api, apiserver):
    run = make_operator(shards=SHARDS, debounce=0.1, max_delay=MAX_DELAY)
    objs = [
        RuleObject(
            ObjKey("FalcoRule", namespace(i % 20), f"burst-{i}"), 1, "", falcorule_spec(namespace(i % 20), i)
        )
        for i in range(BURST)
    ]
    for label, generation, apply in (
        ("create", 1, lambda o: create(api, manifest(o))),
        (
            "update",
            2,
            lambda o: patch_spec(
                api, o.key.namespace, o.key.name, falcorule_spec(o.key.namespace, _index(o), 9)
            ),
        ),
    ):
        since, passes = len(apiserver.store.requests), run.state.reconciles
        start = time.monotonic()
        for o in objs:
            apply(o)
        burst = time.monotonic() - start
        wait_for(lambda g=generation: published(apiserver, g), timeout=120, what=f"{label} burst published")
        wait_for(lambda g=generation: statuses_observed(apiserver, g), timeout=120, what=f"{label} statuses")
        cm_writes, status_writes = writes(apiserver, since)
        print(
            f"\n{BURST} {label}s in {burst:.2f} s: {run.state.reconciles - passes} passes, "
            f"{cm_writes} ConfigMap writes, {status_writes} status writes"
        )
        # a pass starts at most every max_delay during the burst, plus the ones finishing it;
        # each writes at most every shard: without coalescing, 100 applies meant ~100 writes
        bound = SHARDS * (math.ceil(burst / MAX_DELAY) + 3)
        assert cm_writes <= bound, (cm_writes, bound)
        # each object's status changes once (valid, published at this generation) per pass
        # it changed in; node counts do not add writes within status_period
        assert status_writes <= 2 * BURST, status_writes
    # the last apply is what runs: no change was lost in the coalescing
    cm = apiserver.get("configmaps", RELEASE_NS, "falcopy-rules-1")
    assert (
        cm is not None
        and sum("v9" in text for text in cm["data"].values())
        + sum(
            "v9" in text
            for k, text in apiserver.get("configmaps", RELEASE_NS, "falcopy-rules-0")["data"].items()
            if k.endswith(".yaml")
        )
        == BURST
    )
