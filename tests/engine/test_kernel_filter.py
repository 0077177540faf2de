"""The kernel filter derivation (falcopy.engine.kernel_filter): sound over-approximation.

The property test builds random conditions from the operators and fields the
predicate vocabulary covers (plus some it does not), random events, and checks
that every event the compiled rule matches is admitted by the derived filter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from falcopy.engine import load_rules_files
from falcopy.engine.event import DictEvent
from falcopy.engine.kernel_filter import (
    F_CREATE,
    F_DOTDOT,
    F_READ,
    F_TRUNC,
    F_WRITE,
    PATH_MAX_BYTES,
    Facts,
    KernelFilter,
    derive,
    union,
)
from tests.engine.helpers import one_rule, ruleset

COMPAT = Path("/work/shared/compat")
OPEN_STATE = ("open", "openat", "close", "dup", "fcntl")

# --------------------------------------------------------------- event model
COMPS = ["etc", "tmp", "shadow", "pam.d", "lib", "x.so", "a", "sudoers"]
NAMES = ["cat", "sshd", "bash", "nginx", "kfcat-abcdefghij", "a-fifteen-chars"]
UIDS = [0, 1, 1000]


@st.composite
def events(draw: Any) -> tuple[Facts, dict[str, Any]]:
    comps = draw(st.lists(st.sampled_from(COMPS), min_size=1, max_size=4))
    path = "/" + "/".join(comps)
    if draw(st.booleans()) and draw(st.booleans()):
        path = "/tmp/" + "l" * 260 + path          # too long for the kernel key: unknown
    dotdot = draw(st.booleans())
    raw = ("/tmp/../.." + path) if dotdot else path
    acc = draw(st.sampled_from([0, 1, 2]))
    create, trunc = draw(st.booleans()), draw(st.booleans())
    res = draw(st.sampled_from([3, 0, -2, -13]))
    comm = draw(st.sampled_from(NAMES))[:15]
    euid = draw(st.sampled_from(UIDS))
    classes = ((F_READ if acc in (0, 2) else 0) | (F_WRITE if acc in (1, 2) else 0)
               | (F_CREATE if create else 0) | (F_TRUNC if trunc else 0) | (F_DOTDOT if dotdot else 0))
    known_path = path if len(path.encode()) < PATH_MAX_BYTES else None
    facts = Facts(comm=comm, euid=euid, res=res, path=known_path, flags=classes)
    names = ["O_TRUNC"] if trunc else []
    names += ["O_CREAT"] if create else []
    names.append(["O_RDONLY", "O_WRONLY", "O_RDWR"][acc])
    values = {
        "evt.type": "openat", "fd.name": path, "fd.nameraw": raw,
        "fd.directory": path.rsplit("/", 1)[0] or "/", "fd.filename": path.rsplit("/", 1)[1],
        "fd.typechar": "f", "fd.num": res if res >= 0 else -1,
        "proc.name": comm, "user.uid": euid, "evt.rawres": res,
        "evt.res": "SUCCESS" if res >= 0 else "ENOENT",
        "evt.is_open_read": acc in (0, 2), "evt.is_open_write": acc in (1, 2),
        "evt.is_open_create": create, "evt.arg.flags": "|".join(names),
    }
    return facts, values


# --------------------------------------------------------------- conditions
def _path() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(COMPS), min_size=1, max_size=3).map(lambda c: "/" + "/".join(c))


def _list(s: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(s, min_size=1, max_size=3).map(lambda v: "(" + ", ".join(v) + ")")


ATOMS = st.one_of(
    _path().map(lambda p: f"fd.name = {p}"),
    _list(_path()).map(lambda v: f"fd.name in {v}"),
    _path().map(lambda p: f"fd.name startswith {p}"),
    _path().map(lambda p: f"fd.name startswith {p}/"),
    _list(_path()).map(lambda v: f"fd.name pmatch {v}"),
    _path().map(lambda p: f"fd.name glob '{p}*'"),
    _path().map(lambda p: f"fd.name glob '{p}'"),
    st.sampled_from(COMPS).map(lambda c: f"fd.name contains {c}"),
    st.sampled_from(COMPS).map(lambda c: f"fd.name endswith {c}"),
    _path().map(lambda p: f"fd.directory = {p}"),
    _list(_path()).map(lambda v: f"fd.directory in {v}"),
    _path().map(lambda p: f"fd.directory startswith {p}"),
    st.sampled_from(COMPS).map(lambda c: f"fd.filename = {c}"),
    _list(st.sampled_from(COMPS)).map(lambda v: f"fd.filename in {v}"),
    st.sampled_from(NAMES).map(lambda n: f"proc.name = {n}"),
    st.sampled_from(NAMES).map(lambda n: f"proc.name != {n}"),
    _list(st.sampled_from(NAMES)).map(lambda v: f"proc.name in {v}"),
    st.sampled_from(NAMES).map(lambda n: f"proc.name startswith {n[:3]}"),
    st.sampled_from(UIDS).map(lambda u: f"user.uid = {u}"),
    st.sampled_from(UIDS).map(lambda u: f"user.uid != {u}"),
    _list(st.sampled_from(UIDS).map(str)).map(lambda v: f"user.uid in {v}"),
    st.sampled_from(["evt.is_open_read", "evt.is_open_write", "evt.is_open_create"]).flatmap(
        lambda f: st.sampled_from([f"{f} = true", f"{f} = false", f"{f} != true"])),
    st.just('evt.arg.flags contains "O_TRUNC"'),
    st.just("fd.nameraw contains '../'"),
    st.just("fd.nameraw glob '*../*'"),
    st.sampled_from(["evt.res = SUCCESS", "evt.res != SUCCESS", "evt.res = ENOENT", "evt.rawres >= 0",
                     "evt.rawres < 0", "evt.rawres > 0", "evt.rawres != 0", "fd.num >= 0", "fd.num = -1",
                     "fd.typechar = f"]),
)


def conditions(depth: int = 3) -> st.SearchStrategy[str]:
    if depth == 0:
        return ATOMS
    sub = conditions(depth - 1)
    return st.one_of(
        ATOMS,
        st.tuples(sub, sub).map(lambda ab: f"({ab[0]} and {ab[1]})"),
        st.tuples(sub, sub).map(lambda ab: f"({ab[0]} or {ab[1]})"),
        sub.map(lambda a: f"not ({a})"),
    )


def _filter_for(cond: str) -> tuple[Any, KernelFilter]:
    rs = one_rule(cond, evt_type="openat")
    return rs, derive(rs, {"openat"})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cond=conditions(), evs=st.lists(events(), min_size=1, max_size=8))
def test_no_matching_event_is_filtered(cond: str, evs: list[tuple[Facts, dict[str, Any]]]) -> None:
    rs, kf = _filter_for(cond)
    for facts, values in evs:
        if rs.evaluate(DictEvent(dict(values))):
            assert kf.admits("openat", facts), (cond, values, [c.describe() for c in
                                                               kf.types["openat"].clauses or []])


def test_the_generated_events_do_match_the_vocabulary() -> None:
    """The property test is only as good as its events: these checks hold on them."""
    ev = {"evt.type": "openat", "fd.name": "/etc/shadow", "fd.directory": "/etc", "fd.filename": "shadow",
          "proc.name": "cat", "user.uid": 0, "evt.is_open_read": True, "evt.rawres": 3, "evt.res": "SUCCESS",
          "fd.nameraw": "/tmp/../etc/shadow", "evt.arg.flags": "O_TRUNC|O_RDONLY", "fd.num": 3}
    for cond in ("fd.name startswith /etc", "fd.directory = /etc", "fd.filename in (shadow)",
                 "proc.name = cat",
                 "user.uid = 0", "evt.is_open_read = true", "evt.rawres >= 0", "evt.res = SUCCESS",
                 "fd.nameraw contains '../'", 'evt.arg.flags contains "O_TRUNC"', "fd.num >= 0"):
        rs = one_rule(cond, evt_type="openat")
        assert rs.evaluate(DictEvent(dict(ev))), cond


# --------------------------------------------------------------- what the filter is
def test_paths_become_exact_and_prefix_sets_and_the_rest_passes() -> None:
    _, kf = _filter_for("fd.name startswith /etc and evt.is_open_read = true and fd.name contains x")
    tf = kf.types["openat"]
    assert tf.clauses is not None and len(tf.clauses) == 1
    assert kf.admits("openat", Facts(path="/etc/passwd", flags=F_READ))
    assert not kf.admits("openat", Facts(path="/tmp/passwd", flags=F_READ))
    assert not kf.admits("openat", Facts(path="/etc/passwd", flags=F_WRITE))
    # unknown path (too long, not canonical): the path constraint cannot be checked
    assert kf.admits("openat", Facts(path=None, flags=F_READ))


def test_negations_exclude_exactly() -> None:
    _, kf = _filter_for("fd.name startswith /etc and not fd.name pmatch (/etc/ssl) "
                        "and not proc.name in (cat)")
    assert kf.admits("openat", Facts(path="/etc/shadow", comm="vi"))
    assert kf.admits("openat", Facts(path="/etc/ssl2", comm="vi"))       # pmatch is per component
    assert not kf.admits("openat", Facts(path="/etc/ssl/x", comm="vi"))
    assert not kf.admits("openat", Facts(path="/etc/ssl", comm="vi"))
    assert not kf.admits("openat", Facts(path="/etc/shadow", comm="cat"))


def test_long_process_names_compare_as_the_kernel_comm() -> None:
    # proc.name is the 15-byte comm: a longer name never equals it, so its negation excludes nothing
    _, kf = _filter_for("not proc.name in (a-name-longer-than-15, cat) and fd.name = /x")
    assert kf.admits("openat", Facts(path="/x", comm="a-name-longer-t"))
    assert not kf.admits("openat", Facts(path="/x", comm="cat"))


def test_state_and_fd_interest() -> None:
    rs = ruleset("""
- rule: shadow
  desc: d
  condition: evt.type = openat and fd.name = /etc/shadow
  output: "%fd.name"
  priority: WARNING
- rule: close of tmp
  desc: d
  condition: evt.type = close and fd.name startswith /tmp/keep and proc.name = cat
  output: "%fd.name"
  priority: WARNING
- rule: close by nginx
  desc: d
  condition: evt.type = close and proc.name = nginx
  output: "%proc.name"
  priority: WARNING
""")
    kf = derive(rs, {"openat", "close", "execve"}, state_types={"openat", "close"}, always={"execve"})
    assert kf.types["execve"].passes_all
    # opens: the rule's file, and the files a close rule reads the fd of
    assert kf.admits("openat", Facts(path="/etc/shadow", res=3))
    assert kf.admits("openat", Facts(path="/tmp/keep1", res=3))
    assert not kf.admits("openat", Facts(path="/tmp/flood", res=3))
    # a close passes while its fd is known; otherwise only for rules that read no fd
    assert kf.admits("close", Facts(comm="bash"))
    assert not kf.admits("close", Facts(comm="bash", fd_unknown=True))
    assert not kf.admits("close", Facts(comm="cat", fd_unknown=True))
    assert kf.admits("close", Facts(comm="nginx", fd_unknown=True))


def test_union_admits_what_either_admits() -> None:
    _, a = _filter_for("fd.name = /a")
    _, b = _filter_for("fd.name = /b and proc.name = cat")
    u = union(a, b)
    assert u.admits("openat", Facts(path="/a")) and u.admits("openat", Facts(path="/b", comm="cat"))
    assert not u.admits("openat", Facts(path="/c", comm="cat"))


def test_upstream_stable_rules_keep_tmp_opens_and_their_closes_in_the_kernel() -> None:
    from falcopy.agent.fields.syscall import AgentSyscallSource
    from falcopy.agent.pipeline import kernel_filter

    from falcopy.engine import default_sources

    sources = dict(default_sources())
    sources["syscall"] = AgentSyscallSource()
    res = load_rules_files([COMPAT / "falco_rules.yaml"], sources=sources)
    assert res.ok and res.ruleset is not None
    kf = kernel_filter(res.ruleset)
    for t in ("open", "openat", "openat2"):
        assert not kf.admits(t, Facts(comm="python3", path="/tmp/flood-1", res=3, flags=F_READ))
        assert not kf.admits(t, Facts(comm="python3", path="/usr/lib/x86_64-linux-gnu/libc.so.6", res=3,
                                      flags=F_READ))
        assert kf.admits(t, Facts(comm="kfcat", euid=0, path="/etc/shadow", res=3, flags=F_READ))
    assert not kf.admits("close", Facts(comm="python3", fd_unknown=True))
    assert kf.admits("close", Facts(comm="python3"))
    for t in ("execve", "clone", "procexit"):
        assert kf.types[t].passes_all


@pytest.mark.parametrize("files", [
    ["falco_rules.yaml"], ["falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"]])
def test_upstream_rules_derive_within_the_kernel_limits(files: list[str]) -> None:
    from falcopy.agent.fields.syscall import AgentSyscallSource
    from falcopy.agent.kernel.kfilter import encode
    from falcopy.agent.kernel.layout import EVENT_IDS
    from falcopy.agent.pipeline import kernel_filter

    from falcopy.engine import default_sources

    sources = dict(default_sources())
    sources["syscall"] = AgentSyscallSource()
    res = load_rules_files([COMPAT / f for f in files], sources=sources)
    assert res.ruleset is not None
    kf = kernel_filter(res.ruleset)
    tables = encode(kf, EVENT_IDS, 0)
    assert tables.types and len(tables.trie) < 65536 and len(tables.comm) < 16384
    assert all(tf.clauses is None or len(tf.clauses) <= 64 for tf in kf.types.values())
