"""The CRDs in the chart are the ones the operator generates, and the examples satisfy them."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from falcopy.operator.crd import KINDS, crd, crd_filename, crd_yaml
from ruamel.yaml import YAML

from falcopy.cli import main

REPO = Path(__file__).resolve().parents[2]
CHART_CRDS = REPO / "charts" / "falcopy" / "crds"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_chart_crd_is_generated(kind: str) -> None:
    assert (CHART_CRDS / crd_filename(kind)).read_text() == crd_yaml(kind), (
        "run: falcopy operator --write-crds"
    )


def test_cli_writes_crds(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["operator", "--write-crds", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(crd_filename(k) for k in KINDS)


def _schema(kind: str) -> dict:
    return crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _examples() -> list[Path]:
    return sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
def test_examples_match_the_schema(path: Path) -> None:
    doc = YAML(typ="safe").load(path.read_text())
    jsonschema.validate(doc, _schema(doc["kind"]))


def test_schema_rejects_unknown_priority_and_bad_names() -> None:
    doc = YAML(typ="safe").load((REPO / "examples" / "falcorule-nginx-unauthorized-process.yaml").read_text())
    doc["spec"]["rules"][0]["priority"] = "LOUD"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema("FalcoRule"))
    doc["spec"]["rules"][0]["priority"] = "WARNING"
    doc["spec"]["macros"][0]["macro"] = "has space"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema("FalcoRule"))


def test_printer_columns_and_status_subresource() -> None:
    version = crd("FalcoRule")["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Valid",
        "Rules",
        "Nodes",
        "Priority",
        "Reason",
        "Age",
    ]
    assert crd("ClusterFalcoRule")["spec"]["scope"] == "Cluster"
