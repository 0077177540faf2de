"""Load errors and warnings with Falco's codes, and the load result."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from falcopy.engine.ruleset import Ruleset

class LoadCode(StrEnum):
    """Falco's load result codes (``falco -V``): ``LOAD_ERR_*`` are errors, the rest warnings.
    Members are named without the ``LOAD_`` prefix; their value is Falco's code."""

    description: str

    def __new__(cls, code: str, description: str) -> LoadCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.description = description
        return member

    @property
    def is_error(self) -> bool:
        return self.startswith("LOAD_ERR_")

    # errors
    ERR_FILE_READ = ("LOAD_ERR_FILE_READ", "Could not read rules file")
    ERR_YAML_PARSE = ("LOAD_ERR_YAML_PARSE", "Invalid yaml")
    ERR_YAML_VALIDATE = ("LOAD_ERR_YAML_VALIDATE", "Error validating internal structure of YAML file")
    ERR_COMPILE_CONDITION = ("LOAD_ERR_COMPILE_CONDITION", "Error compiling condition")
    ERR_COMPILE_OUTPUT = ("LOAD_ERR_COMPILE_OUTPUT", "Error compiling output")
    ERR_VALIDATE = ("LOAD_ERR_VALIDATE", "Error validating rule/macro/list/exception objects")
    ERR_EXTENSION = ("LOAD_ERR_EXTENSION", "Error in extension item")
    # warnings
    UNKNOWN_SOURCE = ("LOAD_UNKNOWN_SOURCE", "Unknown event source")
    UNSAFE_NA_CHECK = ("LOAD_UNSAFE_NA_CHECK", "Unsafe <NA> comparison in condition")
    NO_EVTTYPE = ("LOAD_NO_EVTTYPE", "Condition has no event-type restriction")
    BOOL_CONVERSION = ("LOAD_BOOL_CONVERSION", "Condition has bool conversion")
    UNKNOWN_FILTER = ("LOAD_UNKNOWN_FILTER", "Unknown field or event-type in condition or output")
    UNUSED_MACRO = ("LOAD_UNUSED_MACRO", "Unused macro")
    UNUSED_LIST = ("LOAD_UNUSED_LIST", "Unused list")
    UNKNOWN_ITEM = ("LOAD_UNKNOWN_ITEM", "Unknown rules file item")
    DEPRECATED_ITEM = ("LOAD_DEPRECATED_ITEM", "Used deprecated item")
    WARNING_EXTENSION = ("LOAD_WARNING_EXTENSION", "Extension item has a warning")
    APPEND_NO_VALUES = ("LOAD_APPEND_NO_VALUES", "Overriding/appending list with no values")
    EXCEPTION_NAME_NOT_UNIQUE = (
        "LOAD_EXCEPTION_NAME_NOT_UNIQUE", "Multiple exceptions defined with the same name")
    INVALID_MACRO_NAME = ("LOAD_INVALID_MACRO_NAME", "Invalid macro name")
    INVALID_LIST_NAME = ("LOAD_INVALID_LIST_NAME", "Invalid list name")
    COMPILE_CONDITION = ("LOAD_COMPILE_CONDITION", "Condition has issues")
    UNKNOWN_KEY = ("LOAD_UNKNOWN_KEY", "Unknown key")
    # falcopy's own (Falco captures every syscall through its raw hooks and has no such case)
    UNCAPTURABLE_EVTTYPE = ("LOAD_UNCAPTURABLE_EVTTYPE", "Event type cannot be captured on this system")
    UNAVAILABLE_FIELD = ("LOAD_UNAVAILABLE_FIELD", "Field never has a value in this configuration")

#: warnings meaning a rule can never (or only partly) fire here: ``validate --strict`` fails on them
NEVER_FIRES_CODES: frozenset[str] = frozenset({LoadCode.UNKNOWN_SOURCE, LoadCode.UNCAPTURABLE_EVTTYPE})


@dataclass(frozen=True, slots=True)
class LoadMessage:
    code: LoadCode
    message: str
    file: str
    line: int
    column: int
    item_type: str = ""
    item_name: str = ""
    offset: int = 0
    snippet: str = ""
    #: a warning made an error (``validate --strict``)
    promoted: bool = False

    def __post_init__(self) -> None:
        # a code outside Falco's table is a bug: fail where the message is made
        object.__setattr__(self, "code", LoadCode(self.code))

    @property
    def is_error(self) -> bool:
        return self.promoted or self.code.is_error

    @property
    def codedesc(self) -> str:
        return self.code.description

    def __str__(self) -> str:
        kind = "error" if self.is_error else "warning"
        item = f" ({self.item_type} '{self.item_name}')" if self.item_name else \
            (f" ({self.item_type})" if self.item_type else "")
        # a file that could not be read has no position: name it alone
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {kind} {self.code}: {self.message}{item}"

    def to_falco(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "codedesc": self.codedesc,
            "message": self.message,
            "context": {
                "locations": [{
                    "item_type": self.item_type,
                    "item_name": self.item_name,
                    "position": {"name": self.file, "line": self.line, "column": self.column,
                                 "offset": self.offset},
                }],
                "snippet": self.snippet,
            },
        }


@dataclass
class LoadResult:
    errors: list[LoadMessage] = field(default_factory=list)
    warnings: list[LoadMessage] = field(default_factory=list)
    ruleset: Ruleset | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"rules": 0, "macros": 0, "lists": 0})
    #: the input names in load order (for per-file results)
    names: list[str] = field(default_factory=list)

    def strict(self) -> LoadResult:
        """This result with the never-fires warnings (``NEVER_FIRES_CODES``) as errors."""
        from dataclasses import replace

        promoted = [replace(m, promoted=True) for m in self.warnings if m.code in NEVER_FIRES_CODES]
        if not promoted:
            return self
        return replace(self, errors=[*self.errors, *promoted], ruleset=None,
                       warnings=[m for m in self.warnings if m.code not in NEVER_FIRES_CODES])

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def messages(self) -> list[LoadMessage]:
        return sorted([*self.errors, *self.warnings], key=lambda m: (m.file, m.line, m.column))

    def to_falco_json(self) -> dict[str, Any]:
        """The shape of ``falco -V FILE -o json_output=true``: one result per file."""
        results = []
        for name in self.names:
            errs = [m.to_falco() for m in self.errors if m.file == name]
            warns = [m.to_falco() for m in self.warnings if m.file == name]
            results.append({
                "name": name,
                "successful": not errs,
                "schema_valid": True,
                "schema_warnings": [],
                "errors": errs,
                "warnings": warns,
            })
        return {"falco_load_results": results}
