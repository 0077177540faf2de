"""falcopy.yaml: Falco's falco.yaml keys plus falcopy's own ``falcopy:`` section.

A Falco user's falco.yaml loads unchanged.  Every key is typed; an unknown key
or a wrong type stops the agent with an error naming the key and the line
where it was written (see :func:`load_config`).  Keys Falco has that falcopy
accepts without acting on them are marked "accepted, not used" below and in
docs/outputs.md: they appear in real Falco files (plugins,
libs_logger...), so rejecting them would break unmodified configs.

Size: one schema for the whole file (~550 lines) on purpose: it mirrors falco.yaml
section by section, and the validation messages name keys by their full path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from falcopy.agent.audit.settings import AuditWebhookConfig
from falcopy.agent.control.capture_config import CaptureConfig, RecorderConfig
from falcopy.agent.control.overrides import apply_override
from falcopy.agent.control.yamlsource import ConfigError, RawConfig, merge_into, read_yaml_file
from falcopy.agent.enrichment.config import EnrichmentConfig
from falcopy.agent.enrichment.dns import DnsConfig
from falcopy.agent.state.procfs import HostPaths
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from falcopy.common.validation import UrlPath
from falcopy.engine.durations import parse_duration
from falcopy.engine.priority import Priority

__all__ = ["AgentConfig", "ConfigError", "load_config", "parse_duration"]


class _Section(BaseModel):
    # schemas are built when first validating: a configuration from the cache
    # (config_cache) is constructed without them
    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)


class _Loose(BaseModel):
    """Falco sections falcopy accepts but does not interpret: any content."""

    model_config = ConfigDict(extra="allow", defer_build=True)


def _priority(value: Any) -> str:
    """Falco's capitalised name for any accepted spelling (case-insensitive, ``info`` too)."""
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return Priority.parse(value).falco_name
    except ValueError:
        raise ValueError(
            f"unknown priority {value!r}; expected one of: {', '.join(Priority.spellings())}"
        ) from None


# --- rules selection and append_output -------------------------------------------------------


class RuleMatch(_Section):
    rule: str | None = None
    tag: str | None = None

    @model_validator(mode="after")
    def _one(self) -> RuleMatch:
        if (self.rule is None) == (self.tag is None):
            raise ValueError("give exactly one of 'rule' or 'tag'")
        return self


class RuleSelection(_Section):
    """One ``rules:`` item: ``{enable: {rule: name}}`` or ``{disable: {tag: t}}`` (wildcards allowed)."""

    enable: RuleMatch | None = None
    disable: RuleMatch | None = None

    @model_validator(mode="after")
    def _one(self) -> RuleSelection:
        if (self.enable is None) == (self.disable is None):
            raise ValueError("each item needs exactly one of 'enable' or 'disable'")
        return self

    def as_tuple(self) -> tuple[str, str, str]:
        """("enable"|"disable", "rule"|"tag", pattern)."""
        action, m = ("enable", self.enable) if self.enable is not None else ("disable", self.disable)
        assert m is not None
        return (action, "rule", m.rule) if m.rule is not None else (action, "tag", m.tag or "")


class AppendMatch(_Section):
    rule: str | None = None
    source: str | None = None
    tags: list[str] = Field(default_factory=list)


class AppendOutput(_Section):
    match: AppendMatch = Field(default_factory=AppendMatch)
    extra_output: str = ""
    #: each item: a field name (``evt.hostname``) or ``{name: format}``
    extra_fields: list[str | dict[str, str]] = Field(default_factory=list)
    suggested_output: bool = False

    @field_validator("extra_fields")
    @classmethod
    def _single_key(cls, items: list[str | dict[str, str]]) -> list[str | dict[str, str]]:
        for item in items:
            if isinstance(item, dict) and len(item) != 1:
                raise ValueError("each extra_fields item is a field name or a single {name: format} pair")
        return items


# --- outputs ----------------------------------------------------------------------------------


class Enabled(_Section):
    enabled: bool = True


class FileOutput(_Section):
    enabled: bool = False
    keep_alive: bool = False
    filename: str = "./events.txt"

    @model_validator(mode="after")
    def _name(self) -> FileOutput:
        if self.enabled and not self.filename:
            raise ValueError("file_output.filename is required when file_output is enabled")
        return self


class HttpOutput(_Section):
    enabled: bool = False
    url: str = ""
    user_agent: str = "falcosecurity/falco"
    insecure: bool = False
    ca_cert: str = ""
    ca_bundle: str = ""
    ca_path: str = "/etc/ssl/certs"
    mtls: bool = False
    client_cert: str = "/etc/ssl/certs/client.crt"
    client_key: str = "/etc/ssl/certs/client.key"
    echo: bool = False
    compress_uploads: bool = False
    keep_alive: bool = False
    max_consecutive_timeouts: int = Field(default=5, ge=0)
    # falcopy additions (Falco has no equivalent knobs)
    retries: int = Field(default=3, ge=0, le=20)
    retry_backoff_ms: int = Field(default=200, ge=0)
    concurrency: int = Field(default=4, ge=1, le=64)

    @model_validator(mode="after")
    def _url(self) -> HttpOutput:
        if self.enabled:
            if not self.url:
                raise ValueError("http_output.url is required when http_output is enabled")
            if not re.match(r"^https?://[^/\s]+", self.url):
                raise ValueError(f"http_output.url must be an http:// or https:// URL, got {self.url!r}")
        return self


class ProgramOutput(_Section):
    enabled: bool = False
    keep_alive: bool = False
    program: str = ""

    @model_validator(mode="after")
    def _prog(self) -> ProgramOutput:
        if self.enabled and not self.program.strip():
            raise ValueError("program_output.program is required when program_output is enabled")
        return self


class OutputsQueue(_Section):
    #: 0 in Falco means unbounded; falcopy never runs unbounded and uses DEFAULT_QUEUE_CAPACITY
    capacity: int = Field(default=0, ge=0)


DEFAULT_QUEUE_CAPACITY = 10000


# --- web server, logging, drops, metrics ---------------------------------------------------------


class Webserver(_Section):
    enabled: bool = True
    threadiness: int = Field(default=0, ge=0)  # requests served at once (0: one per CPU)
    listen_port: int = Field(default=8765, ge=0, le=65535)
    listen_address: str = "0.0.0.0"
    k8s_healthz_endpoint: UrlPath = "/healthz"
    prometheus_metrics_enabled: bool = False
    ssl_enabled: bool = False
    ssl_certificate: str = "/etc/falco/falco.pem"


class LibsLogger(_Section):
    enabled: bool = True
    severity: str = "info"


LogLevel = Literal["emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"]
DropAction = Literal["ignore", "log", "alert", "exit"]


class SyscallEventDrops(_Section):
    threshold: float = Field(default=0.1, ge=0.0, le=1.0)
    actions: list[DropAction] = Field(default_factory=lambda: ["log", "alert"])
    rate: float = Field(default=0.03333, gt=0.0)
    max_burst: int = Field(default=1, ge=1)
    simulate_drops: bool = False


class SyscallEventTimeouts(_Section):
    max_consecutives: int = Field(default=1000, ge=1)


#: what a duration key accepts as written (``1h``, ``500ms``, seconds): the chart's schema says so
_DURATION_SCHEMA = WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\d"}]})


class Metrics(_Section):
    enabled: bool = False
    interval: Annotated[float, _DURATION_SCHEMA] = 3600.0
    output_rule: bool = True
    output_file: str = ""
    rules_counters_enabled: bool = True
    resource_utilization_enabled: bool = True
    state_counters_enabled: bool = True
    kernel_event_counters_enabled: bool = True
    kernel_event_counters_per_cpu_enabled: bool = False
    libbpf_stats_enabled: bool = True
    plugins_metrics_enabled: bool = True
    kernel_iter_event_counters_enabled: bool = True
    jemalloc_stats_enabled: bool = False
    convert_memory_to_mb: bool = True
    include_empty_values: bool = False

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, v: Any) -> float:
        seconds = parse_duration(v)
        if seconds < 0.1:
            raise ValueError("metrics.interval must be at least 100ms")
        return seconds


class ModernEbpf(_Section):
    cpus_for_each_buffer: int = Field(default=2, ge=0)
    #: Falco's presets: 4 = 8 MiB per buffer; falcopy sizes its ring buffer the same way
    buf_size_preset: int = Field(default=4, ge=0, le=10)
    drop_failed_exit: bool = False
    disable_iterators: bool = False


class Engine(_Section):
    kind: Literal["modern_ebpf", "kmod", "ebpf", "replay", "nodriver", "gvisor"] = "modern_ebpf"
    modern_ebpf: ModernEbpf = Field(default_factory=ModernEbpf)
    kmod: _Loose = Field(default_factory=_Loose)  # accepted, not used
    ebpf: _Loose = Field(default_factory=_Loose)  # accepted, not used
    replay: _Loose = Field(default_factory=_Loose)  # accepted, not used
    gvisor: _Loose = Field(default_factory=_Loose)  # accepted, not used

    def ring_buffer_bytes(self) -> int:
        """Falco's buf_size_preset table: 1 MiB * 2**(preset-1), preset 0 = default (8 MiB)."""
        preset = self.modern_ebpf.buf_size_preset or 4
        return (1 << 20) << (preset - 1)


class BaseSyscalls(_Section):
    custom_set: list[str] = Field(default_factory=list)
    repair: bool = False
    all: bool = False


class FalcoLibs(_Section):
    thread_table_size: int = Field(default=262144, ge=1)
    thread_table_auto_purging_interval_s: int = Field(default=300, ge=1)
    thread_table_auto_purging_thread_timeout_s: int = Field(default=300, ge=1)
    snaplen: int = Field(default=80, ge=0)


class Plugin(_Section):
    name: str
    library_path: str = ""
    init_config: Any = None
    open_params: str = ""


# --- falcopy's own section ----------------------------------------------------------------------


class EventReader(_Section):
    """How the event thread reads the probe's ring buffer (docs/performance.md)."""

    #: longest sleep of the event thread when nothing arrives; a record wakes it at once,
    #: this only bounds how stale the drop counters can get
    idle_poll_ms: int = Field(default=1000, ge=1)
    #: while records keep arriving, read at most once per window: a batch per wake-up
    #: instead of a wake-up per record (0 = read as soon as woken)
    batch_window_us: int = Field(default=5000, ge=0, le=100_000)


class KernelFilterConfig(_Section):
    """The in-kernel interest filter derived from the rules (docs/kernel.md)."""

    enabled: bool = True
    #: ring bytes bulk records leave to critical ones (process lifecycle, exec,
    #: connections, privilege changes); 0 = a quarter of the ring
    critical_reserve_bytes: int = Field(default=0, ge=0)


class Aggregation(_Section):
    """Repeated alerts: first at once, then one summary per window (docs/outputs.md)."""

    #: off: one alert per match, as Falco (the Helm chart turns it on)
    enabled: bool = False
    #: a duration (60s, 5m) or seconds
    window: str | float = "60s"
    #: open windows at most; beyond it the oldest closes early (reported, never dropped)
    max_keys: int = Field(default=10_000, ge=1)
    #: values kept per varying field in a summary
    sample_size: int = Field(default=5, ge=0, le=100)
    #: more output fields left out of the default key (time, pid and fd fields always are)
    ignore_fields: list[str] = Field(default_factory=list)

    @field_validator("window")
    @classmethod
    def _window(cls, v: Any) -> str | float:
        if parse_duration(v) <= 0:
            raise ValueError(f"must be a positive duration, got {v!r}")
        return v

    def window_seconds(self) -> float:
        return parse_duration(self.window)


class Thresholds(_Section):
    """Bounds of the threshold rules' state (the thresholds themselves are rule keys)."""

    max_groups: int = Field(default=10_000, ge=1)
    #: distinct values listed in a threshold alert
    max_values: int = Field(default=50, ge=1, le=1000)


class RulesApi(_Section):
    """The operator's rules bundle watched through the API server (docs/operator.md):
    it stands in for ``volume``, the projected volume holding the same bundle; of the
    two copies the newer is loaded."""

    enabled: bool = False
    #: the release namespace; empty: $FALCOPY_NAMESPACE
    namespace: str = ""
    #: the bundle's shard ConfigMaps, shard 0 (the manifest) first
    configmaps: list[str] = Field(default_factory=list)
    #: the rules_files directory the bundle's projected volume is mounted on (may be absent)
    volume: str = ""
    #: seconds each watch request stays open (drawn between this and twice this)
    watch_timeout_s: int = Field(default=300, ge=1)

    @model_validator(mode="after")
    def _complete(self) -> RulesApi:
        if self.enabled and not self.configmaps:
            raise ValueError("falcopy.rules_api.configmaps: the bundle's ConfigMap names are needed "
                             "when enabled")
        if self.enabled and not self.volume:
            raise ValueError("falcopy.rules_api.volume: the rules_files directory the bundle stands for "
                             "is needed when enabled")
        return self


class FalcopySection(_Section):
    host: HostPaths = Field(default_factory=HostPaths)
    kernel_filter: KernelFilterConfig = Field(default_factory=KernelFilterConfig)
    #: compiled BPF object; empty = the one installed with the package
    bpf_object: str = ""
    #: container runtimes and kubelet (owned by falcopy.agent.enrichment)
    enrichment: EnrichmentConfig = Field(default_factory=EnrichmentConfig)
    k8s_audit: AuditWebhookConfig = Field(default_factory=AuditWebhookConfig)
    #: the names rules compare fd.*ip.name with: resolution, refresh, expiry (docs/enrichment.md)
    dns: DnsConfig = Field(default_factory=DnsConfig)
    #: the local syslog socket used by syslog_output (mount the host's /dev/log in a container)
    syslog_socket: str = "/dev/log"
    #: rules reload on changes of the rules files (in addition to SIGHUP), debounced
    reload_debounce_ms: int = Field(default=100, ge=0)
    rules_api: RulesApi = Field(default_factory=RulesApi)
    #: the flight recorder behind Falco's ``capture`` (docs/capture.md)
    capture: RecorderConfig = Field(default_factory=RecorderConfig)
    event_reader: EventReader = Field(default_factory=EventReader)
    aggregation: Aggregation = Field(default_factory=Aggregation)
    thresholds: Thresholds = Field(default_factory=Thresholds)


# --- the whole file ---------------------------------------------------------------------------


class AgentConfig(_Section):
    # config includes (Falco's config.d); merged by load_config before validation
    config_files: list[str] = Field(default_factory=list)
    watch_config_files: bool = True
    rules_files: list[str] = Field(default_factory=list)
    #: deprecated since Falco 0.38: merged into rules_files
    rules_file: list[str] | str | None = None
    rules: list[RuleSelection] = Field(default_factory=list)
    engine: Engine = Field(default_factory=Engine)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    load_plugins: list[str] = Field(default_factory=list)  # accepted, not used (see docs)
    plugins: list[Plugin] = Field(default_factory=list)  # accepted, not used
    plugins_hostinfo: bool = True  # accepted, not used
    time_format_iso_8601: bool = False
    buffer_format_base64: bool = False  # accepted, not used (no %evt.buffer output)
    priority: str = "debug"
    json_output: bool = False
    json_include_output_property: bool = True
    json_include_message_property: bool = False
    json_include_output_fields_property: bool = True
    json_include_tags_property: bool = True
    buffered_outputs: bool = False
    rule_matching: Literal["first", "all"] = "first"
    outputs_queue: OutputsQueue = Field(default_factory=OutputsQueue)
    append_output: list[AppendOutput] = Field(default_factory=lambda: [AppendOutput(suggested_output=True)])
    #: constants readable as ``static.<key>`` in rules and appended to outputs
    static_fields: dict[str, str] = Field(default_factory=dict)
    stdout_output: Enabled = Field(default_factory=Enabled)
    syslog_output: Enabled = Field(default_factory=Enabled)
    file_output: FileOutput = Field(default_factory=FileOutput)
    http_output: HttpOutput = Field(default_factory=HttpOutput)
    program_output: ProgramOutput = Field(default_factory=ProgramOutput)
    webserver: Webserver = Field(default_factory=Webserver)
    log_stderr: bool = True
    log_syslog: bool = True
    log_level: LogLevel = "info"
    libs_logger: LibsLogger = Field(default_factory=LibsLogger)  # accepted, not used
    #: ms a sink may take on one alert before it counts as failed
    output_timeout: int = Field(default=2000, gt=0)
    syscall_event_timeouts: SyscallEventTimeouts = Field(default_factory=SyscallEventTimeouts)
    syscall_event_drops: SyscallEventDrops = Field(default_factory=SyscallEventDrops)
    metrics: Metrics = Field(default_factory=Metrics)
    base_syscalls: BaseSyscalls = Field(default_factory=BaseSyscalls)
    falco_libs: FalcoLibs = Field(default_factory=FalcoLibs)
    # removed in Falco 0.44 but still present in older files: accepted, not used
    grpc: _Loose | None = None
    grpc_output: _Loose | None = None
    falcopy: FalcopySection = Field(default_factory=FalcopySection)

    @field_validator("priority", mode="before")
    @classmethod
    def _check_priority(cls, v: Any) -> str:
        return _priority(v)

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _deprecated_rules_file(self) -> AgentConfig:
        if self.rules_file and not self.rules_files:
            old = self.rules_file
            self.rules_files = [old] if isinstance(old, str) else list(old)
        return self

    @property
    def min_priority_name(self) -> str:
        return self.priority

    def queue_capacity(self) -> int:
        return self.outputs_queue.capacity or DEFAULT_QUEUE_CAPACITY

    def rule_selection(self) -> list[tuple[str, str, str]]:
        return [item.as_tuple() for item in self.rules]

    def hostname(self) -> str:
        """Falco's rule: FALCO_HOSTNAME wins over the kernel's hostname."""
        return os.environ.get("FALCO_HOSTNAME") or os.uname().nodename

    def inactive_falco_keys(self) -> list[str]:
        """Keys set in this file that falcopy accepts but does not act on (logged at start-up)."""
        notes = []
        if self.load_plugins or self.plugins:
            notes.append(
                "plugins/load_plugins: falcopy has container, k8s and k8s_audit support built in and "
                "loads no Falco plugins"
            )
        if self.engine.kind != "modern_ebpf":
            notes.append(f"engine.kind={self.engine.kind}: falcopy always uses its CO-RE eBPF probe")
        if self.grpc is not None or self.grpc_output is not None:
            notes.append("grpc/grpc_output: removed in Falco 0.44, ignored")
        if self.http_output.enabled and not (self.json_output and self.json_include_output_fields_property):
            notes.append(
                "http_output: falcosidekick accepts only JSON alerts with output_fields "
                "(json_output: true, json_include_output_fields_property: true)"
            )
        old = [self.rules_file] if isinstance(self.rules_file, str) else self.rules_file
        if old and old != self.rules_files:
            notes.append("rules_file is deprecated and ignored because rules_files is set")
        return notes


# --- loading ------------------------------------------------------------------------------------


def _describe(err: dict[str, Any]) -> str:
    etype = err.get("type", "")
    if etype in ("extra_forbidden", "unexpected_keyword_argument"):  # a model's / a dataclass's
        return "unknown key (not a Falco or falcopy setting)"
    if etype == "missing":
        return "required key is missing"
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if etype not in ("value_error", "assertion_error") and "input" in err:
        value = err["input"]
        if not isinstance(value, dict | list):
            msg += f" (got {value!r})"
    return msg


def _errors(raw: RawConfig, exc: ValidationError) -> list[str]:
    messages = []
    for err in exc.errors(include_url=False):
        loc = _clean_loc(raw.data, err.get("loc", ()))
        loc = _refine_loc(loc, str(err.get("msg", "")))
        key = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
        where = raw.where(loc)
        messages.append(f"{where}: {key or '<top>'}: {_describe(err)}")
    # a union failure produces one error per member; one line per key is clearer
    seen: dict[str, str] = {}
    for m in messages:
        seen.setdefault(m.split(": ", 2)[0] + m.split(": ", 2)[1], m)
    return list(seen.values())


def _clean_loc(data: Any, loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Drop pydantic's union/validator tags from an error location, keeping real keys."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_tag(part):
            out.append(part)  # a key that is missing (required) or unknown
            node = None
    return tuple(out)


def _refine_loc(loc: tuple[str | int, ...], msg: str) -> tuple[str | int, ...]:
    """Section checks name the exact key first ("http_output.url is required..."): point at it."""
    first = msg.removeprefix("Value error, ").split(" ", 1)[0]
    parts = tuple(first.split("."))
    if len(parts) > len(loc) and parts[: len(loc)] == tuple(str(p) for p in loc):
        return parts
    return loc


def _is_tag(part: str) -> bool:
    return "[" in part or part in ("str", "int", "float", "bool", "list", "dict", "none") or "-" in part


def find_default_config() -> Path | None:
    """``$FALCOPY_CONFIG``, then /etc/falcopy/falcopy.yaml, then the repository's config/falcopy.yaml."""
    env = os.environ.get("FALCOPY_CONFIG")
    if env:
        return Path(env)
    for candidate in (
        Path("/etc/falcopy/falcopy.yaml"),
        Path(__file__).resolve().parents[2] / "config" / "falcopy.yaml",
    ):
        if candidate.is_file():
            return candidate
    return None


def _include_paths(entries: list[Any], base: Path) -> list[Path]:
    out: list[Path] = []
    for entry in entries:
        p = Path(str(entry))
        if not p.is_absolute():
            p = base / p
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()))
        elif p.exists():
            out.append(p)
    return out


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> AgentConfig:
    """Read, merge (config_files), override (-o) and validate; raises ConfigError listing every problem.
    A configuration validated before from the same inputs comes from the cache (config_cache)."""
    from falcopy.agent.control import config_cache

    # a file that includes no other is cached by its bytes: a hit reads no YAML
    key = config_cache.source_key(AgentConfig, None if path is None else Path(path), overrides)
    config = config_cache.lookup(AgentConfig, key) if key is not None else None
    if config is not None:
        return config
    raw = _read_raw(path, overrides)
    if key is None:
        key = config_cache.data_key(AgentConfig, raw.data)
        config = config_cache.lookup(AgentConfig, key)
    if config is None:
        try:
            config = AgentConfig.model_validate(raw.data)
        except ValidationError as exc:
            raise ConfigError(_errors(raw, exc)) from exc
        config_cache.store(AgentConfig, key, config)
    return config


def _read_raw(path: str | Path | None, overrides: list[str] | tuple[str, ...]) -> RawConfig:
    """The merged document with the position of every key: the file, its config_files, -o."""
    raw = RawConfig()
    if path is not None:
        main = Path(path)
        data, positions = read_yaml_file(main)
        raw.files.append(str(main))
        merge_into(raw, data, positions)
        includes = raw.data.get("config_files") or []
        if isinstance(includes, list):
            for inc in _include_paths(includes, main.parent):
                if inc.resolve() == main.resolve():
                    continue
                inc_data, inc_pos = read_yaml_file(inc)
                inc_data.pop("config_files", None)  # Falco: no nested includes
                raw.files.append(str(inc))
                merge_into(raw, inc_data, inc_pos)
    errors: list[str] = []
    for option in overrides:
        try:
            apply_override(raw, option)
        except ConfigError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ConfigError(errors)
    return raw
