"""Start an aiohttp application on a TCP address, leaving nothing half-open on failure."""

from __future__ import annotations

import ssl
from typing import Any

from aiohttp import web


async def start_site(app: web.Application, host: str, port: int, ssl_ctx: ssl.SSLContext | None,
                     **runner_options: Any) -> web.AppRunner:
    """The runner serving ``app``; a failed bind (port taken) releases the runner before raising."""
    runner = web.AppRunner(app, access_log=None, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_ctx)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
