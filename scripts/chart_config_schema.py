"""Write the agent's configuration model into the chart's values.schema.json.

The chart's ``config`` and ``falco`` values become falcopy.yaml, which the agent
loads with its pydantic model (agent/control/config.py); Helm checks values
against the same model's JSON schema, so a misspelt key fails at ``helm
install`` rather than at the agent's start.  The model's definitions are kept
one per line under ``definitions`` with the prefix ``cfg.``, so a regeneration
changes only those lines.

    python scripts/chart_config_schema.py          # rewrite the schema
    python scripts/chart_config_schema.py --check  # exit 1 if it is stale (run by the tests)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from falcopy.agent.control.config import AgentConfig

SCHEMA = Path(__file__).resolve().parents[1] / "charts" / "falcopy" / "values.schema.json"
PREFIX = "cfg."
ANCHOR = '  "definitions": {\n'


def _clean(node: Any) -> Any:
    """Drop pydantic's titles and defaults (noise for Helm) and point refs at definitions."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("title", "default"):
                continue
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                v = "#/definitions/" + PREFIX + v.removeprefix("#/$defs/")
            out[k] = _clean(v)
        return out
    if isinstance(node, list):
        return [_clean(x) for x in node]
    return node


def definitions() -> dict[str, Any]:
    schema = AgentConfig.model_json_schema(mode="validation")
    defs = {PREFIX + name: _clean(d) for name, d in schema.pop("$defs", {}).items()}
    defs[PREFIX + "AgentConfig"] = _clean(schema)
    return dict(sorted(defs.items()))


def render(text: str) -> str:
    lines = text.splitlines(keepends=True)
    kept = [ln for ln in lines if not ln.startswith(f'    "{PREFIX}')]
    body = "".join(kept)
    at = body.index(ANCHOR) + len(ANCHOR)
    generated = "".join(
        f"    {json.dumps(name)}: {json.dumps(d, sort_keys=True)},\n" for name, d in definitions().items()
    )
    out = body[:at] + generated + body[at:]
    json.loads(out)  # still one valid JSON document
    return out


def main(argv: list[str]) -> int:
    current = SCHEMA.read_text()
    wanted = render(current)
    if "--check" in argv:
        if current != wanted:
            print(f"{SCHEMA} is stale: run python scripts/chart_config_schema.py", file=sys.stderr)
            return 1
        return 0
    SCHEMA.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
