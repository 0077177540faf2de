"""Every comparison operator and transformer, with libsinsp's edge cases."""

from __future__ import annotations

import pytest

from falcopy.engine.transformers import getopt
from tests.engine.helpers import load, matches


# ---------------------------------------------------------------- missing values
@pytest.mark.parametrize("cond", [
    "proc.name = bash", "proc.name != bash", "proc.name contains ba", "proc.name startswith b",
    "proc.name endswith h", "proc.name glob 'b*'", "proc.name in (bash, sh)", "proc.name pmatch (/bin)",
    "proc.name icontains BA", "proc.name regex 'b.*'", "proc.pid > 1", "proc.pid < 1", "proc.pid != 1",
    "proc.name intersects (bash)", "proc.name exists", "tolower(proc.name) = bash",
    "proc.name = val(proc.pname)",
])
def test_a_check_on_a_missing_value_is_false(cond: str) -> None:
    assert not matches(cond, {})


def test_negating_a_check_on_a_missing_value_is_true() -> None:
    assert matches("not proc.name = bash", {})
    assert matches("not proc.name exists", {})
    assert not matches("not proc.name exists", {"proc.name": "bash"})


# ---------------------------------------------------------------- string operators
@pytest.mark.parametrize(("cond", "value", "expected"), [
    ("proc.name = bash", "bash", True),
    ("proc.name == bash", "bash", True),
    ("proc.name = bash", "Bash", False),
    ("proc.name != bash", "zsh", True),
    ("proc.name != bash", "bash", False),
    ("proc.name contains as", "bash", True),
    ("proc.name contains '' ", "bash", True),
    ("proc.name icontains AS", "bASh", True),
    ("proc.name startswith ba", "bash", True),
    ("proc.name startswith sh", "bash", False),
    ("proc.name endswith sh", "bash", True),
    ("proc.name glob 'b*'", "bash", True),
    ("proc.name glob 'b*'", "xbash", False),          # glob is a full match
    ("proc.name glob 'b?sh'", "bash", True),
    ("proc.name glob '[bz]sh'", "zsh", True),
    ("proc.name glob 'B*'", "bash", False),
    ("proc.name iglob 'B*'", "bash", True),
    ("fd.name glob '/etc/*'", "/etc/ssh/sshd_config", True),  # '*' crosses '/' (fnmatch without FNM_PATHNAME)
    ("proc.name regex 'ba.*'", "bash", True),
    ("proc.name regex 'ba'", "bash", False),          # anchored: the whole value must match
    ("proc.name regex 'as'", "bash", False),
    ("proc.name regex '[[:alpha:]]+'", "bash", True),  # POSIX classes (RE2 posix_syntax)
    ("proc.name regex 'b(a|o)sh'", "bosh", True),
    ("proc.name in (bash, zsh)", "zsh", True),
    ("proc.name in (bash, zsh)", "sh", False),
    ("proc.name in ('my proc', zsh)", "my proc", True),
    ("proc.name intersects (bash, zsh)", "bash", True),
    ("proc.name = runc:[0:PARENT]", "runc:[0:PARENT]", True),   # bare string with brackets and colons
    ("proc.name = 'a\\'b'", "a'b", True),             # escaped quote inside a quoted string
    ('proc.name = "tab\\there"', "tab\there", True),
])
def test_string_operators(cond: str, value: str, expected: bool) -> None:
    assert matches(cond, {"proc.name": value, "fd.name": value}) is expected


def test_regex_uses_re2_posix_syntax() -> None:
    # Perl classes are not POSIX: RE2 in posix_syntax mode rejects \d, like Falco
    res = load("""
- rule: r
  desc: d
  condition: evt.type=open and proc.name regex '\\d+'
  output: o
  priority: INFO
""")
    assert not res.ok
    assert res.errors[0].code == "LOAD_ERR_COMPILE_CONDITION"
    assert "invalid regular expression" in res.errors[0].message


@pytest.mark.parametrize(("cond", "value", "expected"), [
    ("evt.buffer bcontains 2f6574632f", b"cat /etc/passwd", True),
    ("evt.buffer bcontains 2F6574632F", b"cat /etc/passwd", True),
    ("evt.buffer bcontains 0000", b"cat /etc/passwd", False),
    ("evt.buffer bstartswith 636174", b"cat /etc/passwd", True),
    ("evt.buffer bstartswith 6574", b"cat /etc/passwd", False),
])
def test_byte_operators(cond: str, value: bytes, expected: bool) -> None:
    assert matches(cond, {"evt.buffer": value}, evt_type="write") is expected


# ---------------------------------------------------------------- pmatch
@pytest.mark.parametrize(("value", "expected"), [
    ("/etc", True), ("/etc/passwd", True), ("/etc/ssh/sshd_config", True),
    ("/etcetera", False), ("/var/etc", False), ("/usr/local/bin/x", True), ("/usr/local", False),
    ("/var/lib/x/data.txt", True), ("/var/lib/x/data.bin", False),
])
def test_pmatch_matches_path_prefixes_by_component(value: str, expected: bool) -> None:
    cond = "fd.name pmatch (/etc, /usr/local/bin, /var/*/*/*.txt)"
    assert matches(cond, {"fd.name": value}) is expected


# ---------------------------------------------------------------- numbers, bools, addresses
@pytest.mark.parametrize(("cond", "pid", "expected"), [
    ("proc.pid = 42", 42, True), ("proc.pid = 0x2a", 42, True), ("proc.pid != 42", 42, False),
    ("proc.pid < 43", 42, True), ("proc.pid <= 42", 42, True), ("proc.pid > 42", 42, False),
    ("proc.pid >= 42", 42, True), ("proc.pid in (1, 42)", 42, True), ("proc.pid in (1, 2)", 42, False),
    ("proc.pid = 42", "42", True),                  # values recorded as text compare as numbers
])
def test_numeric_operators(cond: str, pid: object, expected: bool) -> None:
    assert matches(cond, {"proc.pid": pid}) is expected


def test_booleans() -> None:
    assert matches("evt.is_open_read = true", {"evt.is_open_read": True})
    assert not matches("evt.is_open_read = true", {"evt.is_open_read": False})
    assert matches("evt.is_open_read = false", {"evt.is_open_read": False})
    assert matches("evt.is_open_read = true", {"evt.is_open_read": 1})


def test_ip_addresses_and_networks() -> None:
    assert matches("fd.net = 10.0.0.0/8", {"fd.net": "10.1.2.3"}, evt_type="connect")
    assert not matches("fd.net = 10.0.0.0/8", {"fd.net": "192.168.1.1"}, evt_type="connect")
    assert matches("fd.net in (192.168.0.0/16, 10.0.0.0/8)", {"fd.net": "10.1.2.3"}, evt_type="connect")
    assert matches("fd.ip = 10.0.0.1", {"fd.ip": "10.0.0.1"}, evt_type="connect")
    assert matches("fd.ip = ::1", {"fd.ip": "0:0::1"}, evt_type="connect")
    assert not matches("fd.ip = 10.0.0.1", {"fd.ip": "10.0.0.2"}, evt_type="connect")
    assert matches("fd.sport in (22, 2222)", {"fd.sport": 2222}, evt_type="connect")


# ---------------------------------------------------------------- list-valued fields
def test_field_without_index_means_any_ancestor() -> None:
    chain = {"proc.aname": ["bash", "sshd", "systemd"]}
    assert matches("proc.aname = sshd", chain)
    assert not matches("proc.aname = cron", chain)
    assert matches("proc.aname startswith ss", chain)
    assert matches("proc.aname[2] = sshd", {"proc.aname[2]": "sshd"})
    assert not matches("proc.aname[2] = sshd", {"proc.aname[3]": "sshd"})


def test_in_on_ancestors_matches_any_ancestor_like_libsinsp() -> None:
    # libsinsp's compare_full_aname applies the operator to each ancestor and
    # stops at the first match, so `in` on proc.aname means "any ancestor in".
    assert matches("proc.aname in (bash, sshd, systemd, init)", {"proc.aname": ["bash", "sshd", "systemd"]})
    assert matches("proc.aname in (bash, sshd)", {"proc.aname": ["bash", "sshd", "systemd"]})
    assert not matches("proc.aname in (cron, init)", {"proc.aname": ["bash", "sshd", "systemd"]})
    assert matches("proc.aname intersects (cron, sshd)", {"proc.aname": ["bash", "sshd", "systemd"]})
    assert not matches("proc.aname intersects (cron)", {"proc.aname": ["bash", "sshd"]})
    assert not matches("proc.aname in (bash)", {"proc.aname": []})


# ---------------------------------------------------------------- modifiers
@pytest.mark.parametrize(("cond", "expected"), [
    ("proc.name startswith oneof (ba, zs)", True),
    ("proc.name startswith anyof (x, ba)", True),
    ("proc.name startswith allof (b, ba, bas)", True),
    ("proc.name startswith allof (b, z)", False),
    ("proc.name endswith oneof (sh, x)", True),
    ("proc.name contains anyof (zz, as)", True),
    ("proc.name contains allof (as, zz)", False),
])
def test_oneof_anyof_allof(cond: str, expected: bool) -> None:
    assert matches(cond, {"proc.name": "bash"}) is expected


def test_oneof_is_a_plain_value_when_not_followed_by_a_list() -> None:
    assert matches("proc.name = oneof", {"proc.name": "oneof"})


# ---------------------------------------------------------------- transformers and val()
@pytest.mark.parametrize(("cond", "values", "expected"), [
    ("tolower(proc.name) = bash", {"proc.name": "BaSh"}, True),
    ("toupper(proc.name) = BASH", {"proc.name": "bash"}, True),
    ("b64(proc.name) = hello", {"proc.name": "aGVsbG8="}, True),
    ("basename(proc.exepath) = ls", {"proc.exepath": "/usr/bin/ls"}, True),
    ("basename(proc.exepath) = ''", {"proc.exepath": "/usr/bin/"}, True),
    ("basename(proc.exepath) = ls", {"proc.exepath": "ls"}, True),
    ("len(proc.name) = 4", {"proc.name": "bash"}, True),
    ("len(proc.name) > 10", {"proc.name": "bash"}, False),
    ("len(proc.aname) = 3", {"proc.aname": ["a", "b", "c"]}, True),
    ("toupper(basename(proc.exepath)) = LS", {"proc.exepath": "/bin/ls"}, True),
    ("tolower(proc.aname) = sshd", {"proc.aname": ["BASH", "SSHD"]}, True),
    ("join(',', proc.aname) = 'a,b'", {"proc.aname": ["a", "b"]}, True),
    ("concat(proc.name, proc.pname) = bashsshd", {"proc.name": "bash", "proc.pname": "sshd"}, True),
    ("concat(proc.name, '-', proc.pname) = bash-sshd", {"proc.name": "bash", "proc.pname": "sshd"}, True),
    ("concat(proc.name, proc.pname) = bash", {"proc.name": "bash"}, False),
    ("getopt(proc.args, 'lt:') intersects (t)", {"proc.args": "-l -t 5 file"}, True),
    ("getopt(proc.args, 'lt:') intersects (x)", {"proc.args": "-l -t 5 file"}, False),
    ("proc.name = val(proc.pname)", {"proc.name": "bash", "proc.pname": "bash"}, True),
    ("proc.name = val(proc.pname)", {"proc.name": "bash", "proc.pname": "sshd"}, False),
    ("proc.name != val(proc.pname)", {"proc.name": "bash", "proc.pname": "sshd"}, True),
    ("proc.pid > val(proc.ppid)", {"proc.pid": 10, "proc.ppid": 2}, True),
    ("tolower(proc.name) = tolower(proc.pname)", {"proc.name": "Bash", "proc.pname": "BASH"}, True),
    ("proc.name startswith val(proc.pname)", {"proc.name": "bash5", "proc.pname": "bash"}, True),
])
def test_transformers(cond: str, values: dict[str, object], expected: bool) -> None:
    assert matches(cond, values) is expected


def test_getopt_follows_posix_rules() -> None:
    assert getopt("-abc -t5 x -z", "abct:z") == ["a", "b", "c", "t"]
    assert getopt(["-n", "-t", "3", "--", "-x"], "nt:x") == ["n", "t"]
    assert getopt(None, "a") is None


def test_transformer_type_errors_are_reported() -> None:
    res = load("""
- rule: r
  desc: d
  condition: evt.type=open and tolower(proc.pid) = 1
  output: o
  priority: INFO
""")
    assert [e.code for e in res.errors] == ["LOAD_ERR_COMPILE_CONDITION"]
    assert "transformer 'tolower'" in res.errors[0].message


# ---------------------------------------------------------------- evt.dir since Falco 0.42
def test_evt_dir_is_always_exit() -> None:
    assert matches("evt.dir = <", {})
    assert not matches("evt.dir = >", {})
    assert matches("evt.dir != >", {})
    res = load("""
- rule: r
  desc: d
  condition: evt.type=open and evt.dir=<
  output: o
  priority: INFO
""")
    assert res.ok
    assert [w.code for w in res.warnings] == ["LOAD_DEPRECATED_ITEM"]


# ---------------------------------------------------------------- precedence and syntax
@pytest.mark.parametrize(("cond", "expected"), [
    ("proc.name = bash or proc.name = a and proc.pid = 2", True),     # and binds tighter than or
    ("(proc.name = a or proc.name = bash) and proc.pid = 2", False),
    ("not proc.name = a and proc.pid = 1", True),                     # not binds tighter than and
    ("not (proc.name = bash and proc.pid = 1)", False),
    ("not not proc.name = bash", True),
    ("not(proc.name = a)", True),
    ("proc.name=bash and(proc.pid=1)", True),
    ("proc.name in(bash)", True),
])
def test_precedence(cond: str, expected: bool) -> None:
    assert matches(cond, {"proc.name": "bash", "proc.pid": 1}) is expected
