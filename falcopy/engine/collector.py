"""Decode rules-file items and collect them in definition order.

This is Falco's reader + collector stage: each YAML item becomes a list,
macro or rule definition, an append/override to an earlier one, an
``enabled`` toggle or a version requirement, with Falco's validation
messages.  Nothing is compiled here; conditions stay text
(:class:`~falcopy.engine.source_text.SourceText`) because Falco appends and
substitutes lists textually before parsing.

The item records are in :mod:`falcopy.engine.items`, a rule's exceptions
(decoding, validation, appends) in :mod:`falcopy.engine.rule_exceptions`.

Size (~570 lines): one decoder per item kind (list, macro, rule, each with
its ``append``/``override`` forms, and the version requirements), with
Falco's messages; they share the YAML accessors and the definition-order
bookkeeping, which splitting them apart would have to expose.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ruamel.yaml.nodes import ScalarNode

from falcopy.engine import rule_exceptions, tenancy, versions
from falcopy.engine.alert_keys import FALCOPY_RULE_KEYS, AlertKeyError, parse_rule_keys
from falcopy.engine.items import Definition, ListInfo, LoadFailure, MacroInfo, RuleInfo, Warn
from falcopy.engine.messages import LoadCode
from falcopy.engine.priority import Priority
from falcopy.engine.reader import Document, YMap, YSeq, warn_unknown_keys
from falcopy.engine.source_text import SourceText, concat

LIST_KEYS = frozenset({"list", "items", "append", "override"})
MACRO_KEYS = frozenset({"macro", "condition", "append", "override"})
RULE_KEYS = frozenset({"rule", "condition", "output", "desc", "priority", "source", "enabled", "capture",
                       "capture_duration", "warn_evttypes", "skip-if-unknown-filter", "tags",
                       "exceptions", "override", "append"})

OVERRIDE_APPEND = {
    "list": {"items"},
    "macro": {"condition"},
    "rule": {"condition", "output", "desc", "tags", "exceptions"},
}
OVERRIDE_REPLACE = {
    "list": {"items"},
    "macro": {"condition"},
    "rule": {"condition", "output", "desc", "priority", "capture", "capture_duration", "tags",
             "exceptions", "enabled", "warn_evttypes", "skip-if-unknown-filter"},
}
_NAME_RE = re.compile(r"[^()\"'\s=,]+")

WARNING_APPEND = ("'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under "
                  "'override' instead.")
WARNING_ENABLED = ("The standalone 'enabled' key usage is deprecated. The correct approach requires also a "
                   "'replace' entry under the 'override' key (i.e. 'enabled: replace').")
ERROR_OVERRIDE_APPEND = ("Keys 'override' and 'append: true' cannot be used together. Add an 'append' "
                         "entry (e.g. 'condition: append') under 'override' instead.")


FieldCheck = Callable[[str, str], bool]      # (source, field expression) -> known


class Collector:
    def __init__(self, warn: Warn, field_known: FieldCheck, known_sources: set[str]) -> None:
        self.lists: dict[str, ListInfo] = {}
        self.macros: dict[str, MacroInfo] = {}
        self.rules: dict[str, RuleInfo] = {}
        self.cur_index = 0
        self.required_engine: tuple[tuple[int, int, int], str] | None = None
        self.required_plugins: list[tuple[str, str, list[tuple[str, str]], int]] = []
        self.warn = warn
        self.field_known = field_known
        self.known_sources = known_sources
        #: namespace of the input being read (None: cluster-wide); see falcopy.engine.tenancy
        self.namespace: str | None = None
        #: None: the first broken item stops the load (Falco's behaviour); a list: broken
        #: items are recorded here and skipped, so one pass reports them all (`falcopy validate`)
        self.item_errors: list[LoadFailure] | None = None

    # ----------------------------------------------------------------- helpers
    def _next(self) -> int:
        i = self.cur_index
        self.cur_index += 1
        return i

    @staticmethod
    def _fail(code: str, msg: str, loc: int, itype: str, iname: str) -> LoadFailure:
        return LoadFailure(code, msg, loc, itype, iname)

    def _str(self, doc: Document, item: YMap, key: str, itype: str, iname: str) -> str:
        node = item.vnode[key]
        if not isinstance(node, ScalarNode):
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML scalar value", item.vloc[key],
                             itype, iname)
        return str(node.value)

    def _text(self, doc: Document, item: YMap, key: str, itype: str, iname: str) -> SourceText:
        self._str(doc, item, key, itype, iname)
        return doc.source_text(item.vnode[key])

    def _bool(self, item: YMap, key: str, itype: str, iname: str) -> bool:
        v = item[key]
        if isinstance(v, bool):
            return v
        # yaml-cpp's as<bool> (Falco) also takes the YAML 1.1 spellings
        if isinstance(v, str) and v.lower() in ("yes", "on", "y", "true"):
            return True
        if isinstance(v, str) and v.lower() in ("no", "off", "n", "false"):
            return False
        raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML scalar value", item.vloc[key],
                         itype, iname)

    def _required(self, item: YMap, key: str, itype: str, iname: str) -> None:
        if key not in item:
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, f"Item has no mapping for key '{key}'", item.loc,
                             itype, iname)
        v = item[key]
        if v is None or (isinstance(v, str) and v == ""):
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, f"Mapping for key '{key}' is empty", item.vloc[key],
                             itype, iname)

    def _unknown_keys(self, item: YMap, allowed: frozenset[str], itype: str, iname: str) -> None:
        warn_unknown_keys(item, allowed, itype, iname, self.warn)

    def _known_field(self, source: str) -> rule_exceptions.FieldCheck:
        """The field check for exceptions of a rule of ``source`` (None: a source not checked)."""
        if source not in self.known_sources:
            return None
        return lambda expr: self.field_known(source, expr)

    def _name(self, item: YMap, key: str, itype: str) -> str:
        v = item[key]
        if v is None or v == "":
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, f"Mapping for key '{key}' is empty", item.vloc[key],
                             itype, "")
        if not isinstance(item.vnode[key], ScalarNode):
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML scalar value", item.vloc[key],
                             itype, "")
        return str(item.vnode[key].value)

    def _overrides(self, item: YMap, kind: str, name: str, append_flag: bool) -> tuple[set[str], set[str]]:
        ov = item["override"]
        loc = item.vloc["override"]
        if not isinstance(ov, YMap):
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML map value", loc, "overrides",
                             name)
        if append_flag:
            raise self._fail(LoadCode.ERR_VALIDATE, ERROR_OVERRIDE_APPEND, loc, "overrides", name)
        app: set[str] = set()
        rep: set[str] = set()
        for key, op in ov.items():
            kloc = ov.kloc[key]
            if op == "append":
                if key not in OVERRIDE_APPEND[kind]:
                    raise self._fail(LoadCode.ERR_VALIDATE,
                                     f"Key '{key}' cannot be appended to, use 'replace' instead",
                                     kloc, "overrides", name)
                app.add(key)
            elif op == "replace":
                if key not in OVERRIDE_REPLACE[kind]:
                    raise self._fail(LoadCode.ERR_VALIDATE, f"Key '{key}' cannot be replaced", kloc,
                                     "overrides", name)
                rep.add(key)
            else:
                raise self._fail(LoadCode.ERR_VALIDATE,
                                 f"Invalid override operation for key '{key}': must be either 'append' or "
                                 "'replace'", ov.vloc[key], "overrides", name)
            if key not in item:
                what = "An append" if op == "append" else "A replace"
                raise self._fail(LoadCode.ERR_VALIDATE,
                                 f"{what} override for '{key}' was specified but '{key}' is not defined",
                                 kloc, "overrides", name)
        for key in item:
            if key in (kind, "override") or key not in (LIST_KEYS | MACRO_KEYS | RULE_KEYS):
                continue
            if key not in app and key not in rep:
                raise self._fail(LoadCode.ERR_VALIDATE,
                                 f"Unexpected key '{key}': no corresponding entry under 'override' is "
                                 "defined.",
                                 item.kloc[key], "overrides", name)
        return app, rep

    # ----------------------------------------------------------------- items
    def read_document(self, doc: Document) -> None:
        root = doc.root
        if root is None:
            return
        data = doc.convert(root)
        if data is None:
            return
        if isinstance(data, str | int | float | bool):
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Rules content is not yaml", doc.loc(root),
                             "rules content", "")
        if not isinstance(data, YSeq):
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Rules content is not yaml array of objects",
                             doc.loc(root), "rules content", "")
        for i, item in enumerate(data):
            if item is None:
                continue
            try:
                if not isinstance(item, YMap):
                    msg = "Unexpected element type. Each element should be a yaml associative array."
                    raise self._fail(LoadCode.ERR_YAML_VALIDATE, msg, data.iloc[i], "rules content item", "")
                self.read_item(doc, item)
            except LoadFailure as failure:
                if self.item_errors is None:
                    raise
                self.item_errors.append(failure)

    def read_item(self, doc: Document, item: YMap) -> None:
        confined = self.namespace is not None and self._confine(item)
        self._read_item(doc, item)
        if confined:
            kind = next(k for k in ("list", "macro", "rule") if k in item)
            table = {"list": self.lists, "macro": self.macros, "rule": self.rules}[kind]
            defined = table.get(str(item[kind]))
            if defined is not None and defined.namespace is None:
                defined.namespace = self.namespace

    def _confine(self, item: YMap) -> bool:
        """A namespaced input's item: only its namespace's names, only syscall rules."""
        ns = self.namespace
        assert ns is not None
        for kind, table in (("list", self.lists), ("macro", self.macros), ("rule", self.rules)):
            if kind not in item:
                continue
            name = self._name(item, kind, kind)
            loc = item.vloc[kind]
            if not tenancy.name_allowed(kind, name, ns):
                own = (tenancy.qualified_rule if kind == "rule" else tenancy.qualified_name)("<name>", ns)
                raise self._fail(LoadCode.ERR_VALIDATE,
                                 f"A rules file of namespace '{ns}' may only name its own {kind}s ('{own}')",
                                 loc, kind, name)
            prev = table.get(name)
            if prev is not None and prev.namespace != ns:
                raise self._fail(LoadCode.ERR_VALIDATE,
                                 f"A rules file of namespace '{ns}' cannot change a {kind} defined "
                                 "outside it", loc, kind, name)
            if kind == "rule" and item.get("source") not in (None, "syscall"):
                raise self._fail(LoadCode.ERR_VALIDATE,
                                 f"A rules file of namespace '{ns}' may only hold syscall rules", loc, kind,
                                 name)
            return True
        return False

    def _read_item(self, doc: Document, item: YMap) -> None:
        if "required_engine_version" in item:
            self._engine_version(item)
        elif "required_plugin_versions" in item:
            self._plugin_versions(item)
        elif "list" in item:
            self._list(doc, item)
        elif "macro" in item:
            self._macro(doc, item)
        elif "rule" in item:
            self._rule(doc, item)
        else:
            self.warn(LoadCode.UNKNOWN_ITEM, "Unknown top level item", item.loc, "rules content item", "")

    def _engine_version(self, item: YMap) -> None:
        itype = "required_engine_version"
        self._unknown_keys(item, frozenset({"required_engine_version"}), itype, "")
        raw = item["required_engine_version"]
        req = versions.engine_version_requirement(raw)
        if req is None:
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML scalar value",
                             item.vloc["required_engine_version"], itype, "")
        current = versions.parse_semver(versions.ENGINE_VERSION)
        assert current is not None
        if req > current:
            raise self._fail(LoadCode.ERR_VALIDATE,
                             f"Rules require engine version {raw}, but engine version is "
                             f"{versions.ENGINE_VERSION}", item.vloc["required_engine_version"], itype, "")
        if self.required_engine is None or req > self.required_engine[0]:
            self.required_engine = (req, str(raw))

    def _plugin_versions(self, item: YMap) -> None:
        itype = "required plugin versions"
        self._unknown_keys(item, frozenset({"required_plugin_versions"}), itype, "")
        seq = item["required_plugin_versions"]
        if not isinstance(seq, YSeq):
            raise self._fail(LoadCode.ERR_YAML_VALIDATE,
                             "Value of required_plugin_versions must be a sequence",
                             item.vloc["required_plugin_versions"], itype, "")
        for i, entry in enumerate(seq):
            eloc = seq.iloc[i]
            if not isinstance(entry, YMap):
                raise self._fail(LoadCode.ERR_YAML_VALIDATE,
                                 "Unexpected element type. Each element should be a yaml associative array.",
                                 eloc, "required plugin versions entry", "")
            for k in ("name", "version"):
                if k not in entry or entry[k] in (None, ""):
                    raise self._fail(LoadCode.ERR_YAML_VALIDATE, f"Item has no mapping for key '{k}'", eloc,
                                     "required plugin versions entry", str(entry.get("name", "")))
            alts: list[tuple[str, str]] = []
            for alt in entry.get("alternatives") or []:
                if not isinstance(alt, YMap) or "name" not in alt or "version" not in alt:
                    raise self._fail(LoadCode.ERR_YAML_VALIDATE,
                                     "Item has no mapping for key 'name' or 'version'", eloc,
                                     "required plugin versions alternative", str(entry["name"]))
                alts.append((str(alt["name"]), str(alt["version"])))
            self.required_plugins.append((str(entry["name"]), str(entry["version"]), alts, eloc))

    def check_plugin_requirements(self) -> None:
        for name, version, alts, loc in self.required_plugins:
            candidates = [(name, version), *alts]
            if any(versions.satisfies(versions.PROVIDED_PLUGINS.get(n, "0.0.0"), v) and
                   n in versions.PROVIDED_PLUGINS for n, v in candidates):
                continue
            wanted = ", ".join(f"{n} (>= {v})" for n, v in candidates)
            raise self._fail(LoadCode.ERR_VALIDATE,
                             f"Plugin requirement not satisfied, must load one of: {wanted}", loc,
                             "required plugin versions entry", name)

    # lists and macros ---------------------------------------------------------
    def _list_or_macro_head(self, item: YMap, itype: str,
                            allowed: frozenset[str]) -> tuple[str, bool, set[str], set[str]]:
        """Checks lists and macros share: (name, append, keys an override appends, keys it replaces)."""
        name = self._name(item, itype, itype)
        self._unknown_keys(item, allowed, itype, name)
        if not _NAME_RE.fullmatch(name):
            title = itype.capitalize()
            self.warn(LoadCode.INVALID_LIST_NAME if itype == "list" else LoadCode.INVALID_MACRO_NAME,
                      f"{title} has an invalid name. {title} names should match a regular expression: "
                      "^[^()\"'\\s=,]+$", item.vloc[itype], itype, name)
        append = self._bool(item, "append", itype, name) if "append" in item else False
        if append:
            self.warn(LoadCode.DEPRECATED_ITEM, WARNING_APPEND, item.kloc["append"], itype, name)
        app: set[str] = set()
        rep: set[str] = set()
        if "override" in item:
            app, rep = self._overrides(item, itype, name, append)
        return name, append, app, rep

    # lists ------------------------------------------------------------------
    def _list(self, doc: Document, item: YMap) -> None:
        itype = "list"
        name, append, app, rep = self._list_or_macro_head(item, itype, LIST_KEYS)
        if "items" not in item:
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Item has no mapping for key 'items'", item.loc,
                             itype, name)
        items = item["items"]
        if items is None:
            items = YSeq()
        if not isinstance(items, YSeq):
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML sequence value",
                             item.vloc["items"], itype, name)
        values: list[str] = []
        for i, _v in enumerate(items):
            node = items.inode[i]
            if not isinstance(node, ScalarNode):
                raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML scalar value",
                                 items.iloc[i], "list", name)
            values.append(str(node.value))
        loc = item.vloc["list"]
        if append or "items" in app:
            prev = self._changed(self.lists, itype, name, loc, replace=False)
            prev.items = prev.items + values
            return
        if "items" in rep:
            self._changed(self.lists, itype, name, loc, replace=True).items = values
            return
        self._define(self.lists, ListInfo(name, values, loc))

    def _changed(self, table: dict[str, Any], itype: str, name: str, loc: int, replace: bool) -> Any:
        """The earlier list or macro an append or a replace changes, made visible from here on."""
        prev = table.get(name)
        if prev is None:
            if replace:
                msg = f"An replace to a {itype} was requested but no {itype} by that name already exists"
            else:
                msg = (f"{itype.capitalize()} has 'append' key or an append override but no {itype} "
                       "by that name already exists")
            raise self._fail(LoadCode.ERR_VALIDATE, msg, loc, itype, name)
        prev.visibility = self._next()
        return prev

    def _define(self, table: dict[str, Any], info: Definition) -> None:
        idx = self._next()
        prev = table.get(info.name)
        if prev is not None:
            info.index = prev.index
            info.visibility = idx
            table[info.name] = info
        else:
            info.index = info.visibility = idx
            table[info.name] = info

    # macros -----------------------------------------------------------------
    def _macro(self, doc: Document, item: YMap) -> None:
        itype = "macro"
        name, append, app, rep = self._list_or_macro_head(item, itype, MACRO_KEYS)
        self._required(item, "condition", itype, name)
        cond = self._text(doc, item, "condition", "macro", name)
        loc = item.vloc["macro"]
        if append or "condition" in app:
            prev = self._changed(self.macros, itype, name, loc, replace=False)
            prev.cond = concat(prev.cond, (" ", cond.loc_at(0)), cond)
            return
        if "condition" in rep:
            self._changed(self.macros, itype, name, loc, replace=True).cond = cond
            return
        self._define(self.macros, MacroInfo(name, cond, loc))

    def _rule(self, doc: Document, item: YMap) -> None:
        name = self._name(item, "rule", "rule")
        itype = "rule"
        self._unknown_keys(item, RULE_KEYS | FALCOPY_RULE_KEYS, itype, name)
        append = self._bool(item, "append", itype, name) if "append" in item else False
        if append:
            self.warn(LoadCode.DEPRECATED_ITEM, WARNING_APPEND, item.kloc["append"], itype, name)
        loc = item.vloc["rule"]
        if "override" in item:
            app, rep = self._overrides(item, "rule", name, append)
            prev = self.rules.get(name)
            if prev is None:
                what = "'append' key or an append override" if app else "a replace override"
                raise self._fail(LoadCode.ERR_VALIDATE,
                                 f"Rule has {what} but no rule by that name already exists", loc, itype, name)
            if app:
                self._append_rule(doc, item, prev, app, name)
            if rep:
                self._replace_rule(doc, item, prev, rep, name)
            self._alert_keys(item, prev, name)
            prev.visibility = self._next()
            return
        if append:
            prev = self.rules.get(name)
            if prev is None:
                raise self._fail(LoadCode.ERR_VALIDATE,
                                 "Rule has 'append' key or an append override but no rule by that name "
                                 "already exists", loc, itype, name)
            keys = {k for k in ("condition", "exceptions", "output", "desc", "tags") if k in item}
            if "condition" not in keys and "exceptions" not in keys:
                raise self._fail(LoadCode.ERR_VALIDATE,
                                 "Appended rule must have exceptions or condition property", loc, itype, name)
            self._append_rule(doc, item, prev, keys, name)
            self._alert_keys(item, prev, name)
            prev.visibility = self._next()
            return
        required = ("condition", "output", "desc", "priority")
        if not any(k in item for k in required):
            if "enabled" in item:
                enabled = self._bool(item, "enabled", itype, name)
                prev = self.rules.get(name)
                if prev is None:
                    raise self._fail(LoadCode.ERR_VALIDATE,
                                     "Rule has 'enabled' key but no rule by that name already exists", loc,
                                     itype, name)
                self.warn(LoadCode.DEPRECATED_ITEM, WARNING_ENABLED, item.kloc["enabled"], itype, name)
                prev.enabled = enabled
                return
        for k in required:
            self._required(item, k, itype, name)
        cond = self._text(doc, item, "condition", "rule", name)
        output = self._output(doc, item, name)
        desc = self._str(doc, item, "desc", itype, name)
        prio = self._priority(item, name)
        source = str(item["source"]) if item.get("source") is not None else "syscall"
        info = RuleInfo(name=name, cond=cond, output=output, desc=desc, priority=prio, loc=loc,
                        source=source)
        self._rule_options(doc, item, info, name)
        self._alert_keys(item, info, name)
        if "exceptions" in item:
            info.exceptions = rule_exceptions.decode(item, name, True, self.warn)
            for ex in info.exceptions:
                rule_exceptions.validate(ex, self._known_field(source))
        self._define(self.rules, info)

    def _output(self, doc: Document, item: YMap, name: str) -> SourceText:
        text = self._text(doc, item, "output", "rule", name)
        stripped = text.text.strip()
        start = text.text.find(stripped) if stripped else 0
        return text.slice(start, start + len(stripped))

    def _priority(self, item: YMap, name: str) -> Priority:
        try:
            return Priority.parse(str(item["priority"]))
        except ValueError:
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Invalid priority", item.vloc["priority"],
                             "rule", name) from None

    def _tags(self, item: YMap, name: str) -> list[str]:
        tags = item["tags"]
        if tags is None:
            return []
        if not isinstance(tags, YSeq) or any(isinstance(t, YMap | YSeq) for t in tags):
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML sequence value",
                             item.vloc["tags"], "rule", name)
        return [str(t) for t in tags]

    def _rule_options(self, doc: Document, item: YMap, info: RuleInfo, name: str,
                      only: set[str] | None = None) -> None:
        def want(k: str) -> bool:
            return k in item and (only is None or k in only)
        if want("enabled"):
            info.enabled = self._bool(item, "enabled", "rule", name)
        if want("tags"):
            info.tags = self._tags(item, name)
        if want("warn_evttypes"):
            info.warn_evttypes = self._bool(item, "warn_evttypes", "rule", name)
        if want("skip-if-unknown-filter"):
            info.skip_if_unknown_filter = self._bool(item, "skip-if-unknown-filter", "rule", name)
        if want("capture"):
            info.capture = self._bool(item, "capture", "rule", name)
        if want("capture_duration"):
            v = item["capture_duration"]
            if not isinstance(v, int) or isinstance(v, bool):
                raise self._fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML scalar value",
                                 item.vloc["capture_duration"], "rule", name)
            info.capture_duration = v

    def _alert_keys(self, item: YMap, info: RuleInfo, name: str) -> None:
        """falcopy's ``aggregation`` / ``threshold`` keys; on an append or override item
        they replace the rule's setting (Falco ignores them there too, with a warning)."""
        if not FALCOPY_RULE_KEYS & item.keys():
            return
        try:
            keys = parse_rule_keys(item)
        except AlertKeyError as exc:
            raise self._fail(LoadCode.ERR_YAML_VALIDATE, exc.message, self._sub_loc(item, exc.path),
                             "rule", name) from None
        for fname, path in keys.fields:
            if not self.field_known(info.source, fname):
                raise self._fail(LoadCode.ERR_VALIDATE, f"'{fname}' is not a supported field ({path})",
                                 self._sub_loc(item, path), "rule", name)
        if "aggregation" in item:
            info.aggregation = keys.aggregation
        if "threshold" in item:
            info.threshold = keys.threshold

    @staticmethod
    def _sub_loc(item: YMap, path: str) -> int:
        """Position of ``a.b`` inside ``item`` (the deepest part the YAML has)."""
        head, _, sub = path.partition(".")
        value = item.get(head)
        if sub and isinstance(value, YMap) and sub.split(".")[0] in value.kloc:
            return value.vloc[sub.split(".")[0]]
        return item.vloc.get(head, item.loc)

    def _append_rule(self, doc: Document, item: YMap, prev: RuleInfo, keys: set[str], name: str) -> None:
        if "condition" in keys:
            cond = self._text(doc, item, "condition", "rule", name)
            prev.cond = concat(prev.cond, (" ", cond.loc_at(0)), cond)
        if "output" in keys:
            out = self._output(doc, item, name)
            prev.output = concat(prev.output, (" ", out.loc_at(0)), out)
        if "desc" in keys:
            prev.desc = prev.desc + " " + self._str(doc, item, "desc", "rule", name)
        if "tags" in keys:
            prev.tags = prev.tags + [t for t in self._tags(item, name) if t not in prev.tags]
        if "exceptions" in keys:
            rule_exceptions.append(prev.exceptions, rule_exceptions.decode(item, name, False, self.warn),
                                   self.warn, self._known_field(prev.source))

    def _replace_rule(self, doc: Document, item: YMap, prev: RuleInfo, keys: set[str], name: str) -> None:
        if "condition" in keys:
            prev.cond = self._text(doc, item, "condition", "rule", name)
        if "output" in keys:
            prev.output = self._output(doc, item, name)
        if "desc" in keys:
            prev.desc = self._str(doc, item, "desc", "rule", name)
        if "priority" in keys:
            prev.priority = self._priority(item, name)
        if "exceptions" in keys:
            prev.exceptions = rule_exceptions.decode(item, name, True, self.warn)
            for ex in prev.exceptions:
                rule_exceptions.validate(ex, self._known_field(prev.source))
        self._rule_options(doc, item, prev, name, only=keys)
