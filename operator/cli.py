"""`falcopy operator`: run the FalcoRule operator (or write the CRDs)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click
from pydantic import ValidationError


@click.command("operator")
@click.option(
    "--namespace",
    envvar="FALCOPY_OPERATOR_NAMESPACE",
    default="falcopy",
    show_default=True,
    help="release namespace: rule ConfigMaps and agent Leases",
)
@click.option(
    "--configmap-prefix",
    envvar="FALCOPY_OPERATOR_CONFIGMAP_PREFIX",
    default="falcopy-rules",
    show_default=True,
)
@click.option(
    "--shards",
    envvar="FALCOPY_OPERATOR_SHARDS",
    type=int,
    default=4,
    show_default=True,
    help="number of rule ConfigMaps (<prefix>-0..N-1), mounted as one projected volume",
)
@click.option(
    "--shard-budget",
    envvar="FALCOPY_OPERATOR_SHARD_BUDGET",
    type=int,
    default=900 * 1024,
    show_default=True,
    help="bytes per ConfigMap (the API server's limit is 1 MiB)",
)
@click.option(
    "--default-rules",
    "default_rules",
    envvar="FALCOPY_OPERATOR_DEFAULT_RULES",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="the agents' default rules files/dirs (default: the packaged rules)",
)
@click.option(
    "--allow-default-overrides/--no-allow-default-overrides",
    envvar="FALCOPY_OPERATOR_ALLOW_OVERRIDES",
    default=False,
    show_default=True,
    help="let ClusterFalcoRules redefine, append to, override or disable default items",
)
@click.option(
    "--quota-bytes",
    envvar="FALCOPY_OPERATOR_QUOTA_BYTES",
    type=int,
    default=128 * 1024,
    show_default=True,
    help="rendered bytes the FalcoRules of one namespace may use (0: no limit)",
)
@click.option(
    "--quota-rules",
    envvar="FALCOPY_OPERATOR_QUOTA_RULES",
    type=int,
    default=200,
    show_default=True,
    help="rules one namespace may define (0: no limit)",
)
@click.option(
    "--quota-patterns",
    envvar="FALCOPY_OPERATOR_QUOTA_PATTERNS",
    type=int,
    default=50,
    show_default=True,
    help="regex/glob/iglob checks one namespace may use (0: no limit)",
)
@click.option(
    "--cluster-reserve",
    envvar="FALCOPY_OPERATOR_CLUSTER_RESERVE",
    type=float,
    default=0.25,
    show_default=True,
    help="share of the rules ConfigMaps' capacity only ClusterFalcoRules may use",
)
@click.option(
    "--tenant-precedence/--no-tenant-precedence",
    envvar="FALCOPY_OPERATOR_TENANT_PRECEDENCE",
    default=False,
    show_default=True,
    help="let FalcoRules take the first-match slot from cluster rules for their namespace's events",
)
@click.option(
    "--validation-timeout",
    envvar="FALCOPY_OPERATOR_VALIDATION_TIMEOUT",
    type=float,
    default=10.0,
    show_default=True,
    help="seconds one validation may take",
)
@click.option(
    "--debounce",
    envvar="FALCOPY_OPERATOR_DEBOUNCE",
    type=float,
    default=0.1,
    show_default=True,
    help="publish a burst of changes once none came for this many seconds ...",
)
@click.option(
    "--max-delay",
    envvar="FALCOPY_OPERATOR_MAX_DELAY",
    type=float,
    default=0.5,
    show_default=True,
    help="... or this many seconds after its first change",
)
@click.option(
    "--status-period",
    envvar="FALCOPY_OPERATOR_STATUS_PERIOD",
    type=float,
    default=5.0,
    show_default=True,
    help="seconds between two status writes that only update the node count",
)
@click.option(
    "--leader-election/--no-leader-election",
    envvar="FALCOPY_OPERATOR_LEADER_ELECTION",
    default=True,
    show_default=True,
    help="elect a leader among replicas with a Lease (only the leader writes)",
)
@click.option(
    "--leader-lease",
    envvar="FALCOPY_OPERATOR_LEADER_LEASE",
    default="falcopy-operator-leader",
    show_default=True,
    help="the leader Lease in the release namespace",
)
@click.option(
    "--leader-timing",
    envvar="FALCOPY_OPERATOR_LEADER_TIMING",
    default="15,10,2",
    show_default=True,
    help="lease duration, renew deadline and retry period in seconds",
)
@click.option("--node-ttl", envvar="FALCOPY_OPERATOR_NODE_TTL", type=float, default=90.0, show_default=True)
@click.option("--resync", envvar="FALCOPY_OPERATOR_RESYNC", type=float, default=10.0, show_default=True)
@click.option(
    "--webhook-port",
    envvar="FALCOPY_OPERATOR_WEBHOOK_PORT",
    type=int,
    default=None,
    help="serve the validating admission webhook on this port",
)
@click.option("--webhook-cert", envvar="FALCOPY_OPERATOR_WEBHOOK_CERT", type=click.Path(path_type=Path))
@click.option("--webhook-key", envvar="FALCOPY_OPERATOR_WEBHOOK_KEY", type=click.Path(path_type=Path))
@click.option(
    "--webhook-insecure",
    is_flag=True,
    envvar="FALCOPY_OPERATOR_WEBHOOK_INSECURE",
    help="plain HTTP admission server (TLS terminated elsewhere)",
)
@click.option(
    "--k8smeta-port",
    envvar="FALCOPY_OPERATOR_K8SMETA_PORT",
    type=int,
    default=None,
    help="collect Kubernetes workload metadata and stream each node's share to its agent on this port",
)
@click.option("--k8smeta-cert", envvar="FALCOPY_OPERATOR_K8SMETA_CERT", type=click.Path(path_type=Path))
@click.option("--k8smeta-key", envvar="FALCOPY_OPERATOR_K8SMETA_KEY", type=click.Path(path_type=Path))
@click.option(
    "--k8smeta-agent",
    "k8smeta_agents",
    envvar="FALCOPY_OPERATOR_K8SMETA_AGENTS",
    multiple=True,
    help="service account allowed to subscribe (system:serviceaccount:<ns>:<name>); repeatable",
)
@click.option("--k8smeta-heartbeat", envvar="FALCOPY_OPERATOR_K8SMETA_HEARTBEAT", type=float, default=15.0,
              show_default=True, help="seconds between bookmarks on an idle metadata stream")
@click.option("--k8smeta-backlog", envvar="FALCOPY_OPERATOR_K8SMETA_BACKLOG", type=int, default=1024,
              show_default=True, help="changes kept per node for reconnecting agents")
@click.option("--k8smeta-relist", envvar="FALCOPY_OPERATOR_K8SMETA_RELIST", type=float, default=300.0,
              show_default=True, help="seconds between full re-lists that drop objects a watch gap lost")
@click.option(
    "--k8smeta-insecure",
    is_flag=True,
    envvar="FALCOPY_OPERATOR_K8SMETA_INSECURE",
    help="plain HTTP metadata stream (TLS terminated elsewhere)",
)
@click.option(
    "--write-crds",
    type=click.Path(file_okay=False, path_type=Path),
    help="write the CRD manifests into this directory and exit",
)
@click.option("-v", "--verbose", is_flag=True)
def operator_cmd(
    namespace: str,
    configmap_prefix: str,
    shards: int,
    shard_budget: int,
    default_rules: tuple[Path, ...],
    allow_default_overrides: bool,
    quota_bytes: int,
    quota_rules: int,
    quota_patterns: int,
    cluster_reserve: float,
    tenant_precedence: bool,
    validation_timeout: float,
    debounce: float,
    max_delay: float,
    status_period: float,
    leader_election: bool,
    leader_lease: str,
    leader_timing: str,
    node_ttl: float,
    resync: float,
    webhook_port: int | None,
    webhook_cert: Path | None,
    webhook_key: Path | None,
    webhook_insecure: bool,
    k8smeta_port: int | None,
    k8smeta_cert: Path | None,
    k8smeta_key: Path | None,
    k8smeta_agents: tuple[str, ...],
    k8smeta_heartbeat: float,
    k8smeta_backlog: int,
    k8smeta_relist: float,
    k8smeta_insecure: bool,
    write_crds: Path | None,
    verbose: bool,
) -> None:
    """Validate FalcoRule / ClusterFalcoRule objects and publish them to the agents."""
    from falcopy.operator.crd import write_crds as write
    from falcopy.operator.settings import OperatorSettings

    if write_crds is not None:
        for path in write(write_crds):
            click.echo(str(path))
        return
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    raw: dict[str, object] = {
        "namespace": namespace,
        "configmap_prefix": configmap_prefix,
        "shards": shards,
        "shard_budget": shard_budget,
        "allow_default_overrides": allow_default_overrides,
        "quotas": {"bytes": quota_bytes, "rules": quota_rules, "patterns": quota_patterns},
        "cluster_reserve": cluster_reserve,
        "tenant_precedence": tenant_precedence,
        "validation_timeout": validation_timeout,
        "node_ttl": node_ttl,
        "resync": resync,
        "debounce": debounce,
        "max_delay": max_delay,
        "status_period": status_period,
    }
    try:
        duration, deadline, retry = (float(x) for x in leader_timing.split(","))
    except ValueError as exc:
        raise click.UsageError(f"--leader-timing: expected 'duration,renew_deadline,retry': {exc}") from exc
    raw["leader"] = {
        "enabled": leader_election,
        "lease": leader_lease,
        "duration": duration,
        "renew_deadline": deadline,
        "retry": retry,
    }
    if default_rules:
        raw["default_rules"] = list(default_rules)
    if webhook_port is not None:
        raw["webhook"] = {
            "port": webhook_port,
            "certfile": webhook_cert,
            "pkeyfile": webhook_key,
            "insecure": webhook_insecure,
        }
    if k8smeta_port is not None:
        raw["collector"] = {
            "port": k8smeta_port,
            "certfile": k8smeta_cert,
            "keyfile": k8smeta_key,
            "agents": list(k8smeta_agents),
            "insecure": k8smeta_insecure,
            "heartbeat_s": k8smeta_heartbeat,
            "backlog": k8smeta_backlog,
            "relist_s": k8smeta_relist,
        }
    try:
        settings = OperatorSettings.model_validate(raw)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from exc
    from falcopy.operator.app import COMPOSE_MEMORY, run_operator

    from falcopy.engine import compose_cache

    # the operator process loads the same few thousand small rules files again and again:
    # keep their composed trees in memory rather than churn the agents' disk cache
    compose_cache.keep_in_memory(COMPOSE_MEMORY, disk=False)

    try:
        asyncio.run(run_operator(settings))
    except ValueError as exc:  # the default rules do not load
        raise click.ClickException(str(exc)) from exc
