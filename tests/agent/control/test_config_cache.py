"""The validated configuration cached by content hash (agent/control/config_cache.py): a
hit gives exactly the settings validation gives, anything that could change them misses,
an entry someone else could have written is ignored, and errors stay those of validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from falcopy.agent.control import config_cache
from falcopy.agent.control.config import AgentConfig, ConfigError, load_config
from falcopy.agent.enrichment.config import EngineConfig
from falcopy.agent.state.procfs import HostPaths

REPO = Path(__file__).resolve().parents[3]

CONFIG = """
json_output: true
priority: warning
file_output: {enabled: true, filename: /tmp/alerts.json}
metrics: {enabled: true, interval: 15m}
plugins:
  - name: container
    library_path: libcontainer.so
    init_config: {label_max_len: 100, with_size: false}
grpc: {enabled: false, bind_address: "unix:///run/falco/falco.sock"}
rules:
  - disable: {rule: "Read sensitive*"}
append_output:
  - match: {source: syscall}
    extra_fields: [evt.hostname, {home: "%proc.env[HOME]"}]
falcopy:
  aggregation: {enabled: true, window: 30s}
  enrichment:
    kubelet: {enabled: false}
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("FALCOPY_CACHE_DIR", str(d))
    return d


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each call of AgentConfig.model_validate (a miss validates, a hit does not)."""
    calls: list[Any] = []
    validate = AgentConfig.model_validate

    def counting(data: Any, *args: Any, **kwargs: Any) -> AgentConfig:
        calls.append(data)
        return validate(data, *args, **kwargs)

    monkeypatch.setattr(AgentConfig, "model_validate", counting)
    return calls


def _write(tmp_path: Path, text: str = CONFIG) -> Path:
    p = tmp_path / "falcopy.yaml"
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob(f"*{config_cache.SUFFIX}"))


@pytest.mark.parametrize("which", ["falcopy", "falco", "repository"])
def test_a_hit_gives_the_validated_settings(which: str, tmp_path: Path, cache: Path, compat_dir: Path,
                                            validations: list[Any]) -> None:
    path = {"falcopy": _write(tmp_path), "falco": compat_dir / "falco.yaml",
            "repository": REPO / "config" / "falcopy.yaml"}[which]
    overrides = ["webserver.listen_port=9999", "rules[].disable.tag=network"]
    validated = load_config(path, overrides)
    assert len(validations) == 1 and len(_entries(cache)) == 1
    cached = load_config(path, overrides)
    assert len(validations) == 1, "a hit does not validate"
    assert cached is not validated
    assert cached == validated
    assert cached.model_dump() == validated.model_dump()
    # the nested objects are the models' own types, with their methods
    assert type(cached.falcopy.host) is HostPaths and cached.falcopy.host == validated.falcopy.host
    assert all(type(e) is EngineConfig for e in cached.falcopy.enrichment.engines.values())
    assert cached.rule_selection() == validated.rule_selection()
    assert cached.engine.ring_buffer_bytes() == validated.engine.ring_buffer_bytes()
    assert cached.inactive_falco_keys() == validated.inactive_falco_keys()
    assert cached.falcopy.aggregation.window_seconds() == validated.falcopy.aggregation.window_seconds()
    assert cached.webserver.listen_port == 9999


def test_a_file_without_includes_is_not_even_parsed_on_a_hit(tmp_path: Path, cache: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import falcopy.agent.control.config as config_module

    reads: list[Path] = []
    read = config_module.read_yaml_file

    def counting(path: Path) -> Any:
        reads.append(path)
        return read(path)

    monkeypatch.setattr(config_module, "read_yaml_file", counting)
    plain = _write(tmp_path)  # mentions watch_config_files only through the defaults
    load_config(plain)
    assert load_config(plain).json_output is True and reads == [plain]
    (tmp_path / "inc.yaml").write_text("priority: error\n")
    including = tmp_path / "including.yaml"
    including.write_text("config_files: [inc.yaml]\nwatch_config_files: false\n")
    assert load_config(including).priority == "Error"
    assert load_config(including).priority == "Error"  # a hit, through the merged document
    assert reads[1:] == [including, tmp_path / "inc.yaml"] * 2


def test_a_changed_file_override_or_environment_misses(tmp_path: Path, cache: Path,
                                                       validations: list[Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path)
    load_config(path)
    load_config(path)
    assert len(validations) == 1
    path.write_text(path.read_text().replace("priority: warning", "priority: error"))
    assert load_config(path).priority == "Error" and len(validations) == 2
    assert load_config(path, ["json_output=false"]).json_output is False and len(validations) == 3
    # a default read from the environment: HOST_ROOT moves the host's /proc
    monkeypatch.setenv("HOST_ROOT", "/host")
    assert load_config(path).falcopy.host.proc == "/host/proc" and len(validations) == 4
    monkeypatch.delenv("HOST_ROOT")
    assert load_config(path).falcopy.host.proc == "/proc" and len(validations) == 4  # hit again


def test_an_included_file_is_part_of_the_key(tmp_path: Path, cache: Path, validations: list[Any]) -> None:
    (tmp_path / "conf.d").mkdir()
    extra = tmp_path / "conf.d" / "10-out.yaml"
    extra.write_text("json_output: true\n")
    path = _write(tmp_path, "config_files: [conf.d]\n")
    assert load_config(path).json_output is True
    assert load_config(path).json_output is True and len(validations) == 1
    extra.write_text("json_output: false\n")
    assert load_config(path).json_output is False and len(validations) == 2
    (tmp_path / "conf.d" / "20-more.yaml").write_text("priority: notice\n")
    assert load_config(path).priority == "Notice" and len(validations) == 3


def test_entries_someone_else_could_write_are_ignored(tmp_path: Path, cache: Path,
                                                     validations: list[Any]) -> None:
    path = _write(tmp_path)
    load_config(path)
    [entry] = _entries(cache)
    # an entry changed behind the agent's back: trusted only while it is the agent's alone
    planted = json.loads(entry.read_text())
    planted["json_output"] = False
    entry.write_text(json.dumps(planted))
    assert load_config(path).json_output is False and len(validations) == 1  # its own: used
    os.chmod(entry, 0o666)
    assert load_config(path).json_output is True and len(validations) == 2
    os.chmod(entry, 0o600)
    os.chown(entry, 12345, 12345)
    assert load_config(path).json_output is True and len(validations) == 3
    os.chown(entry, os.geteuid(), os.getegid())
    os.chmod(cache, 0o777)
    assert load_config(path).json_output is True and len(validations) == 4


def test_a_damaged_entry_is_validated_instead(tmp_path: Path, cache: Path, validations: list[Any]) -> None:
    path = _write(tmp_path)
    load_config(path)
    [entry] = _entries(cache)
    entry.write_text("{not json")
    assert load_config(path).json_output is True and len(validations) == 2


def test_no_cache_or_an_unwritable_one_only_costs_the_validation(tmp_path: Path, validations: list[Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FALCOPY_CACHE_DIR", str(blocker / "sub"))
    assert load_config(path).json_output is True and load_config(path).json_output is True
    assert len(validations) == 2 and not (blocker / "sub").exists()
    monkeypatch.setenv("FALCOPY_CACHE_DIR", "")  # empty: no cache
    assert load_config(path).json_output is True and len(validations) == 3


def test_a_broken_configuration_is_never_cached(tmp_path: Path, cache: Path) -> None:
    good = _write(tmp_path)
    load_config(good)
    assert len(_entries(cache)) == 1
    good.write_text(good.read_text().replace("priority: warning", "priority: loud"))
    errors = []
    for _ in range(2):  # the same precise error at every start
        with pytest.raises(ConfigError) as err:
            load_config(good)
        errors.append(err.value.messages)
    assert errors[0] == errors[1] and len(errors[0]) == 1
    assert errors[0][0].startswith(f"{good}:2:1: priority: unknown priority 'loud'")
    assert len(_entries(cache)) == 1
    with pytest.raises(ConfigError, match=r"-o 'webserver.listen_port=x': webserver.listen_port: "
                                          r"Input should be a valid integer"):
        load_config(None, ["webserver.listen_port=x"])


_FRESH = """
import sys
from falcopy.agent.control.config import AgentConfig, load_config
cfg = load_config(sys.argv[1])
print(cfg.json_output, cfg.priority, AgentConfig.__pydantic_complete__)
"""


def test_a_restart_constructs_without_building_the_schemas(tmp_path: Path, cache: Path) -> None:
    """In a fresh interpreter, as the agent starts: the first start validates (the models'
    schemas are built), the next one is constructed from the entry (no schema built)."""
    path = _write(tmp_path)
    runs = [subprocess.run([sys.executable, "-c", _FRESH, str(path)], cwd=REPO, capture_output=True,
                           text=True, timeout=120, env={**os.environ, "FALCOPY_CACHE_DIR": str(cache)})
            for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:] + runs[1].stderr[-2000:]
    assert [r.stdout.split() for r in runs] == [["True", "Warning", "True"], ["True", "Warning", "False"]]
