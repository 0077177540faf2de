"""What one FalcoRule change costs the API server on the operator's side (issue 22): one pass,
its ConfigMap and status writes, and nothing read back or listed. The operator's own status
patches come back as watch events; before, each started a pass that re-read every shard and
listed every agent Lease (the list is N objects at N nodes). Counted on the stand-in API server."""

from __future__ import annotations

from falcopy.operator.model import ObjKey, RuleObject

from tests.operator.scale import falcorule_spec, manifest, namespace
from tests.operator.test_operator_e2e import create, objects_in_bundle
from tests.waiting import wait_for

CHANGES = 5


def _reads(apiserver, since: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    requests = [(m, p.split("?")[0]) for m, p in apiserver.store.requests[since:]]
    return {
        "configmap reads": sum(1 for m, p in requests if m == "GET" and "/configmaps" in p),
        "lease lists": sum(1 for m, p in requests if m == "GET" and p.endswith("/leases")),
        "status patches": sum(1 for m, p in requests if m == "PATCH" and p.endswith("/status")),
    }


def test_a_change_costs_one_pass_and_no_reads(make_operator, api, apiserver):
    # no resync within the test: every pass and request below is caused by the changes
    run = make_operator(shards=2, resync=3600)
    wait_for(lambda: run.state.reconciles >= 1, timeout=60, what="the first pass")
    since, passes = len(apiserver.store.requests), run.state.reconciles
    for i in range(CHANGES):
        ns = namespace(i)
        obj = RuleObject(ObjKey("FalcoRule", ns, f"change-{i}"), 1, "", falcorule_spec(ns, i))
        create(api, manifest(obj))
        wait_for(lambda n=i + 1: len(objects_in_bundle(apiserver)) == n, timeout=60,
                 what=f"change {i} published")
        wait_for(
            lambda o=obj: (apiserver.get("falcorules", o.key.namespace, o.key.name).get("status") or {}).get(
                "observedGeneration"
            ) == 1,
            timeout=60,
            what=f"change {i} status",
        )
    reads = _reads(apiserver, since)
    # the status patches of changes 0..3 came back as events long before the last change:
    # at most one pass per change (several changes may share one), none for a status write
    assert 1 <= run.state.reconciles - passes <= CHANGES, (run.state.reconciles - passes, reads)
    assert reads["configmap reads"] == 0, reads
    assert reads["lease lists"] == 0, reads
    assert reads["status patches"] == CHANGES, reads
