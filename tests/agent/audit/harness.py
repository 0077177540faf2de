"""A real webhook on loopback whose events run through a real ruleset."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from falcopy.agent.audit import AuditWebhook, AuditWebhookConfig

from falcopy.engine import RulesInput, load_rules, load_rules_files
from falcopy.engine.fields.k8s_audit import AuditEvent


@functools.cache
def load_ruleset(paths: tuple[Path, ...]) -> Any:
    """Compile once per set of files: the upstream files are large."""
    result = load_rules_files(list(paths))
    assert result.ok, "\n".join(str(m) for m in result.errors)
    return result.ruleset


@functools.cache
def load_ruleset_inputs(inputs: tuple[tuple[str, str], ...]) -> Any:
    """Compile (name, YAML text) pairs once."""
    result = load_rules([RulesInput(name, content) for name, content in inputs])
    assert result.ok, "\n".join(str(m) for m in result.errors)
    return result.ruleset


@dataclass
class Harness:
    webhook: AuditWebhook
    session: aiohttp.ClientSession
    ruleset: Any = None
    alerts: list[tuple[str, Any, AuditEvent]] = field(default_factory=list)
    seen: list[AuditEvent] = field(default_factory=list)

    def on_event(self, event: AuditEvent) -> None:
        self.seen.append(event)
        if self.ruleset is None:
            return
        for rule in self.ruleset.evaluate(event):
            self.alerts.append((rule.name, rule.priority, event))

    @property
    def url(self) -> str:
        return self.webhook.url

    def counts(self) -> Counter[str]:
        return Counter(name for name, _, _ in self.alerts)

    async def post(self, body: bytes | str | dict[str, Any], *,
                   content_type: str = "application/json") -> tuple[int, Any]:
        if isinstance(body, dict):
            import orjson

            body = orjson.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        async with self.session.post(self.url, data=body,
                                     headers={"Content-Type": content_type}) as resp:
            text = await resp.text()
            try:
                payload: Any = await resp.json(content_type=None)
            except ValueError:
                payload = text
            return resp.status, payload


@asynccontextmanager
async def running_webhook(ruleset: Any = None, **config: Any) -> AsyncIterator[Harness]:
    settings = AuditWebhookConfig(listen_address="127.0.0.1", listen_port=0, **config)
    holder: dict[str, Harness] = {}
    webhook = AuditWebhook(settings, lambda event: holder["h"].on_event(event))
    await webhook.start()
    try:
        async with aiohttp.ClientSession() as session:
            harness = Harness(webhook=webhook, session=session, ruleset=ruleset)
            holder["h"] = harness
            yield harness
    finally:
        await webhook.stop()
