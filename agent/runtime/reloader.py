"""Hot reload: compile the rules (and the configuration) again off the event path and
hand the new ruleset to the event thread only if everything loads cleanly; a broken
rules file never replaces a working ruleset (it raises Falco's "hot restart failure"
alert instead), and a rules bundle caught mid-update is retried."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falcopy.agent.control.config import ConfigError, load_config
from falcopy.agent.control.falco_metrics import files_sha256
from falcopy.agent.runtime.selection import derive_kernel_filter, wanted_types

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("falcopy.agent")

RELOAD_FAILURE_RULE = "Falco internal: hot restart failure"
#: a rules bundle still mid-update after this long is reported as a reload failure
BUNDLE_STALE_S = 60.0


class RulesReloader:
    """Reloads the rules of ``agent`` (the :class:`~falcopy.agent.app.Agent`, which this
    layer cannot import); call :meth:`reload` on the agent's asyncio loop."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        #: made on the first reload: asyncio is imported after the first alert (Agent.run)
        self._lock: asyncio.Lock | None = None
        self._retry_handle: asyncio.TimerHandle | None = None
        self._retry_tasks: set[asyncio.Task[bool]] = set()
        self._incomplete_since: float | None = None
        self._incomplete_reported = False

    async def reload(self, reason: str) -> bool:
        """Compile the rules again off the event path; swap only if they load cleanly."""
        import asyncio

        from falcopy.distribution.bundle import BundleIncomplete

        agent = self.agent
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            loop = asyncio.get_running_loop()
            config = agent.config
            paths = agent.rules_paths
            try:
                if agent.config_path is not None:
                    config = await loop.run_in_executor(None, load_config, agent.config_path, agent.overrides)
                    if not agent.cli_rules and config.rules_files:
                        paths = [Path(p) for p in config.rules_files]
                result = await loop.run_in_executor(None, agent.load_rules, config, paths)
            except BundleIncomplete as exc:
                return self._deferred(str(exc))
            except ConfigError as exc:
                return self._failed(reason, list(exc.messages))
            except Exception as exc:  # a reload must never take the running agent down
                log.exception("reload failed")
                return self._failed(reason, [f"{type(exc).__name__}: {exc}"])
            self._incomplete_since, self._incomplete_reported = None, False  # a complete set was read
            if not result.ok or result.ruleset is None:
                return self._failed(reason, [str(e) for e in result.errors])
            if agent.read_serial < agent.rules_serial:  # both copies older than the running bundle
                log.warning("rules bundle serial %d is older than the running %d: not loaded",
                            agent.read_serial, agent.rules_serial)
                return False
            agent.report(result)  # the new set's warnings
            ruleset = result.ruleset
            names = agent.watch_names(ruleset)
            dns = agent.dns
            if dns is not None:
                # the new rules go live knowing their new names' addresses, or after a bounded wait;
                # the running rules keep detecting meanwhile
                late = await loop.run_in_executor(None, dns.wait_resolved, names - agent.dns_names,
                                                  dns.config.reload_wait_s)
                if late:
                    log.warning("rules reload: no DNS answer yet for %s after %.1f s; the new rules go live "
                                "and match these names once they resolve", ", ".join(late),
                                dns.config.reload_wait_s)
            kf = await loop.run_in_executor(None, derive_kernel_filter, ruleset, config)
            types = wanted_types(ruleset, config)
            if agent.probe is not None:
                # verifying newly needed programs takes a while: here, not on the event thread
                try:
                    await loop.run_in_executor(None, agent.probe.preload, types)
                except OSError as exc:
                    return self._failed(reason, [f"loading probe programs: {exc}"])
            agent.handover.offer(ruleset, types, kf)
            agent.wake_event_thread()
            if agent.pipeline is None:  # no event thread (tests without capture)
                pending = agent.handover.take()
                if pending is not None:
                    agent.swap_outputs(pending[0])
            agent.rules_paths = paths
            if dns is not None:
                dns.watch(names)    # the old rules' other names retire after their refresh
            agent.dns_names = names
            agent.rules_version, agent.rules_serial = agent.read_version, agent.read_serial
            agent.falco_metrics.rules_files = files_sha256(paths)
            agent.falco_metrics.reload_ts_ns = time.time_ns()
            if agent.reporter is not None:
                agent.reporter.loaded(agent.rules_version)
            enabled = sum(1 for r in ruleset.rules if r.enabled)
            agent.metrics.rules_loaded.set(enabled)
            agent.metrics.rule_reloads.labels(result="success").inc()
            log.info("rules reloaded (%s): %d rules", reason, enabled)
            return True

    def _deferred(self, why: str) -> bool:
        """A rules bundle is mid-update (kubelet synced some shards): keep the running
        rules and retry shortly (the next swap also triggers).  Still incomplete after
        BUNDLE_STALE_S (a hand-edited ConfigMap?): reported once as a failure, retried slower."""
        import asyncio

        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if self._incomplete_since is None:
            self._incomplete_since = now
            log.info("rules bundle mid-update (%s): keeping the running rules", why)
        stale = now - self._incomplete_since > BUNDLE_STALE_S
        if stale and not self._incomplete_reported:
            self._incomplete_reported = True
            stale_msg = f"rules bundle incomplete for {BUNDLE_STALE_S:.0f}s: {why}"
            self._failed("rules bundle", [stale_msg])
        if self._retry_handle is not None and not self._retry_handle.cancelled():
            return False

        def retry() -> None:
            self._retry_handle = None
            task = loop.create_task(self.reload("rules bundle retry"))
            self._retry_tasks.add(task)
            task.add_done_callback(self._retry_tasks.discard)

        self._retry_handle = loop.call_later(5.0 if stale else 1.0, retry)
        return False

    def _failed(self, reason: str, errors: list[str]) -> bool:
        agent = self.agent
        agent.metrics.rule_reloads.labels(result="failure").inc()
        for e in errors:
            log.error("%s", e)
        log.error("rules reload (%s) failed with %d error(s): keeping the rules that are running",
                  reason, len(errors))
        first = errors[0] if errors else "unknown error"
        if agent.reporter is not None:
            agent.reporter.failed(first)
        agent.emit_internal(
            RELOAD_FAILURE_RULE,
            "Critical",
            f"Falco internal: hot restart failure: {first}",
            {
                "reload.errors": len(errors),
                "reload.error": first,
                "reload.files": [str(p) for p in agent.rules_paths],
            },
        )
        return False
