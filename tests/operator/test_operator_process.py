"""`falcopy operator` as a process, and the admission webhook over verified TLS."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
from falcopy.agent.control.lease import LeaseReporter
from falcopy.operator.settings import WebhookSettings

from tests.operator.conftest import RELEASE_NS, REPO, load_example
from tests.operator.test_operator_e2e import NGINX, _free_port, _review, create, objects_in_bundle
from tests.waiting import wait_for


def test_cli_operator_process(apiserver, api, tmp_path):
    env = {**os.environ, "FALCOPY_OPERATOR_NAMESPACE": RELEASE_NS, "FALCOPY_OPERATOR_RESYNC": "0.5"}
    log = (tmp_path / "operator.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "falcopy", "operator", "--shards", "2"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        create(api, load_example(NGINX))
        wait_for(lambda: objects_in_bundle(apiserver), timeout=30, what="bundle from the operator process")
        assert {cm["metadata"]["name"] for cm in apiserver.objects("configmaps", RELEASE_NS)} == {
            "falcopy-rules-0",
            "falcopy-rules-1",
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, (tmp_path / "operator.log").read_text()[-3000:]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _certs(d: Path) -> tuple[Path, Path, Path]:
    ca_key, ca, key, csr, cert, ext = (
        d / n for n in ("ca.key", "ca.pem", "tls.key", "tls.csr", "tls.pem", "ext")
    )
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "1",
        "-subj",
        "/CN=falcopy-test-ca",
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=falcopy-operator",
    )
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "1",
        "-extfile",
        str(ext),
    )
    return ca, cert, key


def test_admission_webhook_over_verified_tls(make_operator, tmp_path):
    ca, cert, key = _certs(tmp_path)
    port = _free_port()
    make_operator(webhook=WebhookSettings(host="127.0.0.1", port=port, certfile=cert, pkeyfile=key))
    url = f"https://127.0.0.1:{port}/validate-falcorules"
    trust = ssl.create_default_context(cafile=str(ca))
    bad = load_example(NGINX)
    bad["spec"]["rules"][0]["priority"] = "WARNING"
    bad["spec"]["rules"][0]["output"] = "x %no.such.field"
    answer = wait_for(
        lambda: httpx.post(url, json=_review(bad), verify=trust, timeout=5).json()["response"],
        what="TLS admission server",
    )
    assert answer["allowed"] is False and "no.such.field" in answer["status"]["message"]
    # an untrusted client (no CA) is refused at the TLS layer
    try:
        httpx.post(url, json=_review(bad), timeout=5)
        raise AssertionError("the server certificate was accepted without its CA")
    except httpx.ConnectError:
        pass


def test_lease_reporter_thread_renews(apiserver):
    reporter = LeaseReporter("node-x", RELEASE_NS, period=0.2)
    reporter.start()
    try:
        reporter.loaded("v1")
        lease = wait_for(
            lambda: (
                (x := apiserver.get("leases", RELEASE_NS, "falcopy-agent-node-x"))
                and x["metadata"]["annotations"]["falcopy.io/rules-version"] == "v1"
                and x
            )
        )
        first = lease["spec"]["renewTime"]
        reporter.failed("rules.d/x.yaml:3:5: error LOAD_ERR_COMPILE_CONDITION: ...")
        lease = wait_for(
            lambda: (
                (x := apiserver.get("leases", RELEASE_NS, "falcopy-agent-node-x"))
                and x["metadata"]["annotations"]["falcopy.io/rules-error"]
                and x
            )
        )
        assert lease["metadata"]["annotations"]["falcopy.io/rules-version"] == "v1"
        wait_for(
            lambda: apiserver.get("leases", RELEASE_NS, "falcopy-agent-node-x")["spec"]["renewTime"] != first
        )
    finally:
        reporter.stop()
