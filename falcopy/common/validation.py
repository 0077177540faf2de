"""Value types shared by the configuration models of the agent and the operator."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must start with '/', got {value!r}")
    return value


#: an HTTP path served by one of falcopy's endpoints (``/healthz``, ``/k8s-audit``)
UrlPath = Annotated[str, AfterValidator(_url_path)]
