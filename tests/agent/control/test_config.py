"""falcopy.yaml: Falco's keys, -o overrides, and precise errors for broken files."""

from __future__ import annotations

import textwrap

import pytest
from falcopy.agent.control.config import ConfigError, load_config, parse_duration
from falcopy.agent.control.overrides import parse_key


def _write(tmp_path, text: str, name: str = "falcopy.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def test_falcos_own_falco_yaml_loads_unchanged(compat_dir) -> None:
    cfg = load_config(compat_dir / "falco.yaml")
    assert cfg.rules_files == [
        "/etc/falco/falco_rules.yaml",
        "/etc/falco/falco_rules.local.yaml",
        "/etc/falco/rules.d",
    ]
    assert cfg.priority == "Debug" and cfg.json_output is False
    assert cfg.webserver.listen_port == 8765 and cfg.webserver.k8s_healthz_endpoint == "/healthz"
    assert cfg.http_output.user_agent == "falcosecurity/falco"
    assert cfg.syscall_event_drops.actions == ["log", "alert"] and cfg.syscall_event_drops.rate == 0.03333
    assert cfg.metrics.interval == 3600.0
    assert cfg.append_output[0].suggested_output is True
    assert cfg.engine.ring_buffer_bytes() == 8 << 20
    assert any("plugins" in note for note in cfg.inactive_falco_keys())


def test_repository_default_config_is_valid(repo_root) -> None:
    cfg = load_config(repo_root / "config" / "falcopy.yaml")
    assert cfg.webserver.prometheus_metrics_enabled
    assert cfg.falcopy.k8s_audit.listen_port == 9765 and cfg.falcopy.k8s_audit.path == "/k8s-audit"


def test_defaults_without_file() -> None:
    cfg = load_config(None)
    assert cfg.stdout_output.enabled and cfg.syslog_output.enabled and not cfg.http_output.enabled
    assert cfg.queue_capacity() > 0  # never unbounded
    assert cfg.rule_matching == "first"


def test_overrides_like_falco(tmp_path) -> None:
    p = _write(
        tmp_path,
        """
        rules_files: [/a.yaml]
        append_output:
          - match: {source: syscall}
            extra_output: "on CPU %evt.cpu"
        """,
    )
    cfg = load_config(
        p,
        [
            "json_output=true",
            "http_output.enabled=true",
            "http_output.url=http://sidekick:2801/",
            "rules_files[]=/b.yaml",
            "rules_files[0]=/a2.yaml",
            "append_output[0].extra_fields[]=evt.hostname",
            'append_output[]={"match": {"tags": ["container"]}, "extra_output": "x"}',
            "rules[]={disable: {tag: network}}",
            "priority=warning",
            "falcopy.k8s_audit.listen_port=9999",
            "metrics.interval=1h30m",
            "syscall_event_drops.actions=[log]",
        ],
    )
    assert cfg.json_output is True and cfg.http_output.url == "http://sidekick:2801/"
    assert cfg.rules_files == ["/a2.yaml", "/b.yaml"]
    assert cfg.append_output[0].extra_fields == ["evt.hostname"]
    assert cfg.append_output[1].match.tags == ["container"]
    assert cfg.rule_selection() == [("disable", "tag", "network")]
    assert cfg.priority == "Warning"
    assert cfg.falcopy.k8s_audit.listen_port == 9999
    assert cfg.metrics.interval == 5400.0
    assert cfg.syscall_event_drops.actions == ["log"]


def test_override_key_syntax() -> None:
    assert parse_key("a.b[2].c[]") == ["a", "b", 2, "c", None]
    assert parse_key(r"static_fields.my\.field") == ["static_fields", "my.field"]


def test_env_expansion_and_escape(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SIDEKICK", "http://sk:2801/")
    p = _write(
        tmp_path,
        """
        http_output: {enabled: true, url: "${SIDEKICK}"}
        program_output: {program: "echo $${HOME}"}
        """,
    )
    cfg = load_config(p)
    assert cfg.http_output.url == "http://sk:2801/"
    assert cfg.program_output.program == "echo ${HOME}"


def test_config_files_merge(tmp_path) -> None:
    d = tmp_path / "config.d"
    d.mkdir()
    _write(d, "rules_files: [/extra.yaml]\nhttp_output: {enabled: true, url: 'http://x/'}\n", "10-a.yaml")
    _write(d, "json_output: true\n", "20-b.yml")
    _write(d, "webserver: {listen_port: nope}\n", "30-c.yaml")
    p = _write(tmp_path, "config_files: [config.d]\nrules_files: [/main.yaml]\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    # the error points into the included file that set the value
    assert f"{d}/30-c.yaml:1:13: webserver.listen_port" in str(err.value)
    (d / "30-c.yaml").unlink()
    cfg = load_config(p)
    assert cfg.rules_files == ["/main.yaml", "/extra.yaml"] and cfg.json_output and cfg.http_output.enabled


def test_host_paths_follow_host_root_env(monkeypatch) -> None:
    monkeypatch.delenv("HOST_ROOT", raising=False)
    assert (load_config(None).falcopy.host.root, load_config(None).falcopy.host.proc) == ("/", "/proc")
    monkeypatch.setenv("HOST_ROOT", "/host")
    host = load_config(None).falcopy.host
    assert (host.root, host.proc) == ("/host", "/host/proc")
    assert load_config(None, ["falcopy.host.proc=/hostproc"]).falcopy.host.proc == "/hostproc"


def test_deprecated_rules_file(tmp_path) -> None:
    cfg = load_config(_write(tmp_path, "rules_file: /etc/falco/old_rules.yaml\n"))
    assert cfg.rules_files == ["/etc/falco/old_rules.yaml"]


def test_parse_duration() -> None:
    assert parse_duration("100ms") == 0.1 and parse_duration("2m") == 120 and parse_duration(5) == 5.0
    with pytest.raises(ValueError):
        parse_duration("1 hour")


BROKEN: list[tuple[str, str, list[str]]] = [
    (
        "unknown top-level key",
        "json_output: true\nstdout_ouptut:\n  enabled: true\n",
        ["falcopy.yaml:2:1: stdout_ouptut: unknown key"],
    ),
    (
        "unknown nested key",
        "http_output:\n  enabled: false\n  timeout_ms: 5\n",
        ["falcopy.yaml:3:3: http_output.timeout_ms: unknown key"],
    ),
    (
        "bool expected",
        "json_output: maybe\n",
        ["falcopy.yaml:1:1: json_output: Input should be a valid boolean", "'maybe'"],
    ),
    (
        "port not a number",
        "webserver:\n  listen_port: http\n",
        ["falcopy.yaml:2:3: webserver.listen_port: Input should be a valid integer", "'http'"],
    ),
    (
        "port out of range",
        "webserver:\n  enabled: true\n  listen_port: 70000\n",
        ["falcopy.yaml:3:3: webserver.listen_port: Input should be less than or equal to 65535"],
    ),
    ("bad priority", "priority: severe\n", ["falcopy.yaml:1:1: priority: unknown priority 'severe'"]),
    (
        "section given as a scalar",
        "file_output: /var/log/falco.txt\n",
        ["falcopy.yaml:1:1: file_output: Input should be a valid dictionary or instance of FileOutput"],
    ),
    (
        "rules_files not a list",
        "rules_files: {a: 1}\n",
        ["falcopy.yaml:1:1: rules_files: Input should be a valid list"],
    ),
    (
        "http enabled without url",
        "json_output: true\nhttp_output:\n  enabled: true\n",
        ["falcopy.yaml:2:1: http_output.url: http_output.url is required when http_output is enabled"],
    ),
    (
        "http url without scheme",
        "http_output:\n  enabled: true\n  url: sidekick:2801\n",
        ["falcopy.yaml:3:3: http_output.url: http_output.url must be an http:// or https:// URL"],
    ),
    (
        "program enabled without program",
        "program_output:\n  enabled: true\n  program: '  '\n",
        ["falcopy.yaml:3:3: program_output.program: program_output.program is required"],
    ),
    (
        "unknown drop action",
        "syscall_event_drops:\n  actions:\n    - log\n    - panic\n",
        [
            "falcopy.yaml:4:7: syscall_event_drops.actions[1]: "
            "Input should be 'ignore', 'log', 'alert' or 'exit'"
        ],
    ),
    (
        "threshold above 1",
        "syscall_event_drops:\n  threshold: 1.5\n",
        ["falcopy.yaml:2:3: syscall_event_drops.threshold: Input should be less than or equal to 1"],
    ),
    (
        "negative queue capacity",
        "outputs_queue:\n  capacity: -1\n",
        ["falcopy.yaml:2:3: outputs_queue.capacity: Input should be greater than or equal to 0"],
    ),
    (
        "bad rule_matching",
        "rule_matching: any\n",
        ["falcopy.yaml:1:1: rule_matching: Input should be 'first' or 'all'"],
    ),
    (
        "rules selection with both rule and tag",
        "rules:\n  - disable:\n      rule: Foo\n      tag: bar\n",
        ["falcopy.yaml:2:5: rules[0].disable: give exactly one of 'rule' or 'tag'"],
    ),
    (
        "rules selection unknown action",
        "rules:\n  - enable: {rule: a}\n  - remove: {rule: b}\n",
        ["falcopy.yaml:3:5: rules[1].remove: unknown key"],
    ),
    (
        "append_output tags not a list",
        "append_output:\n  - match:\n      tags: container\n",
        ["falcopy.yaml:3:7: append_output[0].match.tags: Input should be a valid list"],
    ),
    (
        "metrics interval",
        "metrics:\n  enabled: true\n  interval: 10 minutes\n",
        ["falcopy.yaml:3:3: metrics.interval: expected a duration"],
    ),
    (
        "metrics interval too short",
        "metrics:\n  interval: 10ms\n",
        ["falcopy.yaml:2:3: metrics.interval: metrics.interval must be at least 100ms"],
    ),
    ("bad log level", "log_level: verbose\n", ["falcopy.yaml:1:1: log_level: Input should be 'emergency'"]),
    (
        "falcopy section unknown key",
        "falcopy:\n  host:\n    root: /host\n    sys: /host/sys\n",
        ["falcopy.yaml:4:5: falcopy.host.sys: unknown key"],
    ),
    (
        "audit path without slash",
        "falcopy:\n  k8s_audit:\n    path: k8s-audit\n",
        ["falcopy.yaml:3:5: falcopy.k8s_audit.path: must start with '/'"],
    ),
    (
        "healthz endpoint without slash",
        "webserver:\n  k8s_healthz_endpoint: healthz\n",
        ["falcopy.yaml:2:3: webserver.k8s_healthz_endpoint: must start with '/'"],
    ),
    (
        "engine kind unknown",
        "engine:\n  kind: kmodule\n",
        ["falcopy.yaml:2:3: engine.kind: Input should be 'modern_ebpf'"],
    ),
    (
        "YAML syntax error",
        "json_output: true\nhttp_output:\n  url: [unclosed\n",
        ["falcopy.yaml:", "YAML syntax error"],
    ),
    (
        "duplicate key",
        "json_output: true\njson_output: false\n",
        ["falcopy.yaml:2:1: YAML syntax error", "duplicate key"],
    ),
    (
        "top level is a list",
        "- json_output: true\n",
        ["falcopy.yaml:1:1: the configuration must be a mapping of keys, got a list"],
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_config_precise_error(tmp_path, case, text, expected) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    message = str(err.value)
    for part in expected:
        part = part.replace("falcopy.yaml:", f"{p}:")
        assert part in message, f"{case}: {part!r} not in {message!r}"


def test_every_error_reported_at_once(tmp_path) -> None:
    p = _write(tmp_path, "json_output: nope\nwebserver: {listen_port: x}\nfoo: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert len(err.value.messages) == 3
    assert [m.split(": ")[0] for m in err.value.messages] == [f"{p}:1:1", f"{p}:2:13", f"{p}:3:1"]


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("json_output", "-o 'json_output': expected key=value"),
        (
            "webserver.listen_port=abc",
            "-o 'webserver.listen_port=abc': webserver.listen_port: Input should be a valid integer",
        ),
        ("rules_files[5]=/x", "-o 'rules_files[5]=/x': index 5 is out of range"),
        ("nosuch.key=1", "-o 'nosuch.key=1': nosuch: unknown key"),
        ("append_output[]={match: [", "-o 'append_output[]={match: [': value is not valid YAML/JSON"),
        ("json_output.x=1", "-o 'json_output.x=1': json_output is not a mapping"),
    ],
)
def test_broken_overrides(tmp_path, option, expected) -> None:
    p = _write(tmp_path, "json_output: true\nrules_files: [/a]\n")
    with pytest.raises(ConfigError) as err:
        load_config(p, [option])
    assert expected in str(err.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"/nonexistent/falcopy\.yaml: cannot read configuration"):
        load_config("/nonexistent/falcopy.yaml")
