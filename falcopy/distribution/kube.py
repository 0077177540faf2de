"""The Kubernetes API client configuration shared by the operator and the agent's Lease."""

from __future__ import annotations

import os

from kubernetes import client, config


def load_config() -> client.Configuration:
    """In-cluster service account, else the kubeconfig ($KUBECONFIG, read now: the
    client library reads the variable once at import)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)
    return client.Configuration.get_default_copy()


def api_client() -> client.ApiClient:
    return client.ApiClient(load_config())
