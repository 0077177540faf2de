"""The in-kernel interest filter, derived from a compiled ruleset.

For every event type the probe captures, :func:`derive` computes a predicate
that is true for every event some enabled rule *could* match: a sound
over-approximation.  It is a disjunction of :class:`Clause` (at most
:data:`MAX_CLAUSES` per type), each a conjunction of constraints the BPF
programs can check before a record leaves the kernel:

- the opened file's absolute path (``fd.name``: exact names and prefixes),
  its directory (``fd.directory``) and basename (``fd.filename``);
- the process name (``proc.name``, which is the record's comm) and effective
  uid (``user.uid``);
- the open-flag classes read / write / create (``evt.is_open_*``);
- success or failure of the call (``evt.res``, ``evt.rawres``, ``fd.num``).

Every other check becomes "any value" (unknown -> pass), in either polarity:
``not`` is pushed to the leaves first, so replacing a leaf by True can only
widen the predicate.

fd interest: an open that no clause admits is dropped in the kernel, and the
fd it returned is marked unknown to user space; a later event on that fd
(close, dup, fcntl...) then only passes through clauses of rules that read no
``fd.*`` field.  So that this never hides something a rule needs, the opens
also pass when the file satisfies :attr:`KernelFilter.fd_interest`: the
file-related part of every rule that reads the fd of a later event.

The module is pure: the agent encodes the result into BPF maps
(``falcopy.agent.kernel.kfilter``) and ``falcopy kernel-filter`` prints it.

Size (~660 lines): the derivation is one soundness argument (every rule tree
widened to clauses the kernel can check), and the clause algebra it rests on
(negation pushed to the leaves, product, union, path intersection,
compaction) is only meaningful with the atom translators that produce the
clauses; kept together so the widening can be checked in one read.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import partial

from falcopy.engine import ast, clause_algebra
from falcopy.engine.ruleset import CompiledRule, Ruleset

#: clauses per event type: the kernel keeps one bit per clause in a u64
MAX_CLAUSES = 64
#: bytes of path (plus its NUL) a kernel key holds
PATH_MAX_BYTES = 251
#: bytes of a process name the kernel compares (task comm without its NUL)
COMM_MAX_BYTES = 15
#: DNF size at which a conjunct is dropped (widening) instead of multiplied out
_PRODUCT_CAP = 512

OPEN_TYPES: frozenset[str] = frozenset({"open", "openat", "openat2", "creat"})

# open classes (bits of Clause.req / Clause.forbid): evt.is_open_read/write/create,
# evt.arg.flags contains O_TRUNC, and a raw name containing "../" (fd.nameraw)
F_READ, F_WRITE, F_CREATE, F_TRUNC, F_DOTDOT = 1, 2, 4, 8, 16
F_ALL = F_READ | F_WRITE | F_CREATE | F_TRUNC | F_DOTDOT
_FLAG_FIELDS = {"evt.is_open_read": F_READ, "evt.is_open_write": F_WRITE, "evt.is_open_create": F_CREATE}
_FLAG_NAMES = {F_READ: "read", F_WRITE: "write", F_CREATE: "create", F_TRUNC: "O_TRUNC",
               F_DOTDOT: "raw name with ../"}

# Clause.res
RES_ANY, RES_OK, RES_FAIL = 0, 1, 2

#: fields a regular file's fd has no value for: a check on them is false for a file
_SOCKET_ONLY_FIELDS = frozenset({
    "fd.sip", "fd.cip", "fd.rip", "fd.lip", "fd.ip", "fd.sport", "fd.cport", "fd.rport", "fd.lport",
    "fd.port", "fd.sproto", "fd.cproto", "fd.rproto", "fd.lproto", "fd.proto", "fd.l4proto", "fd.net",
    "fd.cnet", "fd.snet", "fd.lnet", "fd.rnet", "fd.sip.name", "fd.cip.name", "fd.rip.name",
    "fd.lip.name", "fd.sockfamily",
})
#: fd.type / fd.typechar values of the fds an open returns
_FILE_FD_TYPES = frozenset({"file", "directory", "f", "d"})
#: event types whose records name no fd (files by path, process lifecycle): the fd
#: interest ignores their rules
_NO_FD_TYPES = frozenset({
    "clone", "clone3", "fork", "vfork", "execve", "execveat", "procexit", "rename", "renameat",
    "renameat2", "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir", "link", "linkat", "symlink",
    "symlinkat", "chmod", "chown", "lchown", "chdir", "chroot", "mount", "umount2", "socket",
    "socketpair", "pipe", "pipe2", "memfd_create", "setuid", "setgid", "setreuid", "setregid",
    "setresuid", "setresgid", "capset", "setsid", "setpgid", "ptrace", "init_module", "bpf",
    "unshare", "userfaultfd", "prctl", "kill", "tkill", "tgkill", "container",
}) | OPEN_TYPES
#: field prefixes that read the event's fd (in a condition or an output)
_FD_READERS = ("fd.", "evt.arg", "evt.rawarg", "evt.info", "evt.abspath")


@dataclass(frozen=True, order=True)
class PathPat:
    """``text`` exactly (``exact``) or any path starting with it."""

    text: str
    exact: bool

    def matches(self, path: str) -> bool:
        return path == self.text if self.exact else path.startswith(self.text)

    def __str__(self) -> str:
        return self.text if self.exact else self.text + "*"


@dataclass(frozen=True)
class Clause:
    """A conjunction; ``None`` for a positive set means "any value"."""

    path: frozenset[PathPat] | None = None
    npath: frozenset[PathPat] = frozenset()
    dir: frozenset[str] | None = None
    ndir: frozenset[str] = frozenset()
    base: frozenset[str] | None = None
    nbase: frozenset[str] = frozenset()
    comm: frozenset[str] | None = None
    ncomm: frozenset[str] = frozenset()
    euid: frozenset[int] | None = None
    neuid: frozenset[int] = frozenset()
    req: int = 0
    forbid: int = 0
    res: int = RES_ANY
    #: the rule reads the event's fd: unusable for an fd user space never saw
    reads_fd: bool = False

    def unconstrained(self) -> bool:
        return self == Clause(reads_fd=self.reads_fd)

    def file_part(self) -> Clause:
        """Only the constraints on the file (what the fd interest can check at open)."""
        return Clause(path=self.path, npath=self.npath, dir=self.dir, ndir=self.ndir, base=self.base,
                      nbase=self.nbase)

    def without_file(self) -> Clause:
        return replace(self, path=None, npath=frozenset(), dir=None, ndir=frozenset(), base=None,
                       nbase=frozenset())

    def without_negatives(self) -> Clause:
        return replace(self, npath=frozenset(), ndir=frozenset(), nbase=frozenset(), ncomm=frozenset(),
                       neuid=frozenset(), forbid=0)

    def describe(self) -> str:
        parts: list[str] = []

        def pos(name: str, values: Iterable[object] | None) -> None:
            if values is not None:
                parts.append(f"{name} in ({', '.join(sorted(map(str, values)))})")

        def neg(name: str, values: Iterable[object]) -> None:
            vals = sorted(map(str, values))
            if vals:
                parts.append(f"not {name} in ({', '.join(vals)})")

        pos("fd.name", self.path)
        neg("fd.name", self.npath)
        pos("fd.directory", self.dir)
        neg("fd.directory", self.ndir)
        pos("fd.filename", self.base)
        neg("fd.filename", self.nbase)
        pos("proc.name", self.comm)
        neg("proc.name", self.ncomm)
        pos("user.uid", self.euid)
        neg("user.uid", self.neuid)
        for bit, name in _FLAG_NAMES.items():
            if self.req & bit:
                parts.append(f"open {name}")
            if self.forbid & bit:
                parts.append(f"not open {name}")
        if self.res:
            parts.append("success" if self.res == RES_OK else "failure")
        text = " and ".join(parts) or "any"
        return text + (" [reads fd]" if self.reads_fd else "")


TRUE: list[Clause] = [Clause()]


@dataclass(frozen=True)
class Facts:
    """What the kernel knows of one event (None: unknown, every constraint on it passes)."""

    comm: str = ""
    euid: int = 0
    res: int = 0
    path: str | None = None
    flags: int | None = None        # open classes (F_*), open family only
    known: int = F_ALL              # the classes the kernel could tell
    is_dir: bool = False            # an O_DIRECTORY open: fd.directory/filename differ
    fd_unknown: bool = False        # the event's fd was opened while filtered out


@dataclass
class TypeFilter:
    evt_type: str
    #: None: everything passes; else the clauses (an empty list passes nothing but state)
    clauses: list[Clause] | None
    #: the process/fd tables need these records whenever their fd is known
    state: bool = False
    why: list[str] = field(default_factory=list)

    @property
    def passes_all(self) -> bool:
        return self.clauses is None


@dataclass
class KernelFilter:
    types: dict[str, TypeFilter]
    #: open family: an open whose file satisfies one of these also passes (fd interest)
    fd_interest: list[Clause] | None

    def admits(self, evt_type: str, facts: Facts) -> bool:
        """The kernel's verdict, in Python (the reference the BPF code implements)."""
        tf = self.types.get(evt_type)
        if tf is None or tf.clauses is None:
            return True
        if not facts.fd_unknown and tf.state and evt_type not in OPEN_TYPES:
            return True
        clauses = [c for c in tf.clauses if not (facts.fd_unknown and c.reads_fd)]
        if any(clause_admits(c, facts) for c in clauses):
            return True
        if evt_type in OPEN_TYPES and facts.res >= 0:
            fdi = self.fd_interest
            return fdi is None or any(clause_admits(c, facts) for c in fdi)
        return False


def union(a: KernelFilter, b: KernelFilter) -> KernelFilter:
    """A filter admitting what either admits: what the kernel runs while a reload
    swaps the rules (widen, swap the ruleset, narrow)."""
    types: dict[str, TypeFilter] = {}
    for t in set(a.types) | set(b.types):
        x, y = a.types.get(t), b.types.get(t)
        if x is None or y is None or x.clauses is None or y.clauses is None:
            types[t] = TypeFilter(t, None, why=["reload: passes while either ruleset does"])
            continue
        merged = compact(x.clauses + y.clauses)
        types[t] = TypeFilter(t, merged, x.state or y.state, [*x.why, *y.why])
    fdi = None if a.fd_interest is None or b.fd_interest is None else compact(a.fd_interest + b.fd_interest)
    return KernelFilter(types, fdi)


def clause_admits(c: Clause, f: Facts) -> bool:
    if f.path is not None:
        if c.path is not None and not any(p.matches(f.path) for p in c.path):
            return False
        if any(p.matches(f.path) for p in c.npath):
            return False
        if not f.is_dir:
            d = _dirname(f.path)
            b = f.path[f.path.rfind("/") + 1:]
            if (c.dir is not None and d not in c.dir) or d in c.ndir:
                return False
            if (c.base is not None and b not in c.base) or b in c.nbase:
                return False
    if (c.comm is not None and f.comm not in c.comm) or f.comm in c.ncomm:
        return False
    if (c.euid is not None and f.euid not in c.euid) or f.euid in c.neuid:
        return False
    if f.flags is not None:
        req, forbid = c.req & f.known, c.forbid & f.known
        if (f.flags & req) != req or f.flags & forbid:
            return False
    if c.res == RES_OK and f.res < 0:
        return False
    return not (c.res == RES_FAIL and f.res >= 0)


def _dirname(path: str) -> str:
    i = path.rfind("/")
    return path[:i] if i > 0 else "/"


# ------------------------------------------------------------------ derivation
def derive(ruleset: Ruleset, types: Iterable[str], *, state_types: Iterable[str] = (),
           always: Iterable[str] = ()) -> KernelFilter:
    """The filter for the probe's event ``types``.  ``always`` pass whatever the rules
    say (process lifecycle); ``state_types`` pass whenever their fd is known."""
    rules = [r for r in ruleset.enabled_rules() if r.source == "syscall"]
    always, state = set(always), set(state_types)
    out: dict[str, TypeFilter] = {}
    for t in sorted(types):
        if t in always:
            out[t] = TypeFilter(t, None, why=["process lifecycle: always delivered"])
            continue
        out[t] = _derive_type(t, rules, t in state)
    return KernelFilter(out, _fd_interest(rules, types))


def _derive_type(t: str, rules: list[CompiledRule], state: bool) -> TypeFilter:
    clauses: list[Clause] = []
    why: list[str] = []
    if state:
        why.append("state: passes whenever user space knows its fd" if t not in OPEN_TYPES
                   else "state: opens of files no rule needs leave an fd user space does not know")
    for r in clause_algebra.rules_for(t, rules):
        got = clause_algebra.condition_clauses(r, t, lambda node: dnf(node, False, t, "event"), TRUE)
        if got is None:
            return TypeFilter(t, None, state, [*why, f"rule {r.name!r}: condition not available"])
        reads_fd = rule_reads_fd(r)
        got = [replace(c, reads_fd=reads_fd) for c in got]
        if t not in OPEN_TYPES:
            got = [c.without_file() for c in got]
        if any(c.unconstrained() for c in got):
            why.append(f"rule {r.name!r}: nothing the kernel can check")
        clauses.extend(got)
    merged = compact(clauses)
    if merged is None:
        return TypeFilter(t, None, state, [*why, f"more than {MAX_CLAUSES} clauses"])
    if any(c.unconstrained() and (t in OPEN_TYPES or not c.reads_fd) for c in merged):
        return TypeFilter(t, None, state, why)
    return TypeFilter(t, merged, state, why)


def _fd_interest(rules: list[CompiledRule], types: Iterable[str]) -> list[Clause] | None:
    """File constraints of every rule that reads the fd of a later event."""
    out: list[Clause] = []
    for t in sorted(set(types) - _NO_FD_TYPES):
        file_dnf = partial(dnf, neg=False, t=t, ctx="file")
        for r in clause_algebra.rules_for(t, rules):
            if not rule_reads_fd(r):
                continue
            got = clause_algebra.condition_clauses(r, t, file_dnf, TRUE)
            if got is None:
                return None
            out.extend(c.file_part() for c in got)
    merged = compact(out)
    if merged is None or any(c.unconstrained() for c in merged):
        return None
    return merged


def takes_fd(evt_type: str) -> bool:
    """Does a record of this type name an fd it acts on (as far as this module knows)."""
    return evt_type not in _NO_FD_TYPES


def rule_reads_fd(r: CompiledRule) -> bool:
    """Does the rule read the event's fd: in its condition, or in its output."""
    out = r.output
    if any(f"%{p}" in out or f"%({p}" in out for p in _FD_READERS) or "%evt.args" in out:
        return True
    tree = getattr(r, "tree", None)
    return tree is None or _tree_reads_fd(tree)


def _tree_reads_fd(node: ast.Node) -> bool:
    if isinstance(node, ast.FieldRef):
        return node.name.startswith(_FD_READERS)
    if isinstance(node, ast.And | ast.Or):
        return any(_tree_reads_fd(c) for c in node.children)
    if isinstance(node, ast.Not):
        return node.child is not None and _tree_reads_fd(node.child)
    if isinstance(node, ast.MacroRef):
        return node.body is not None and _tree_reads_fd(node.body)
    if isinstance(node, ast.Check):
        return any(n is not None and _tree_reads_fd(n) for n in (node.left, node.right))
    if isinstance(node, ast.Transform):
        return any(_tree_reads_fd(a) for a in node.args)
    return False


# ------------------------------------------------------------------ DNF
def dnf(node: ast.Node, neg: bool, t: str, ctx: str) -> list[Clause]:
    """``node`` (negated when ``neg``) as a list of clauses whose disjunction is implied
    by it.  ``ctx`` "event": the kernel checks the event itself; "file": the file an
    open returns, for a later event on its fd."""
    if isinstance(node, ast.MacroRef):
        assert node.body is not None
        return dnf(node.body, neg, t, ctx)
    if isinstance(node, ast.Not):
        assert node.child is not None
        return dnf(node.child, not neg, t, ctx)
    if isinstance(node, ast.And | ast.Or):
        parts = [dnf(c, neg, t, ctx) for c in node.children]
        if isinstance(node, ast.And) != neg:
            return _product(parts)
        return _union(parts)
    if isinstance(node, ast.Check):
        return _atom(node, neg, t, ctx)
    return TRUE


def _product(parts: list[list[Clause]]) -> list[Clause]:
    return clause_algebra.product(parts, conj, _PRODUCT_CAP, TRUE)


def _union(parts: list[list[Clause]]) -> list[Clause]:
    return clause_algebra.union(parts, _PRODUCT_CAP, TRUE)


def _inter_paths(a: frozenset[PathPat], b: frozenset[PathPat]) -> frozenset[PathPat]:
    out: set[PathPat] = set()
    for p, q in itertools.product(a, b):
        if p.exact and q.exact:
            if p.text == q.text:
                out.add(p)
        elif p.exact:
            if p.text.startswith(q.text):
                out.add(p)
        elif q.exact:
            if q.text.startswith(p.text):
                out.add(q)
        elif p.text.startswith(q.text):
            out.add(p)
        elif q.text.startswith(p.text):
            out.add(q)
    return frozenset(out)


def _excluded(p: PathPat, neg: frozenset[PathPat]) -> bool:
    """Every path ``p`` admits is in ``neg``."""
    return any(n.matches(p.text) and (p.exact or not n.exact) for n in neg)


def _inter(a: frozenset | None, b: frozenset | None) -> frozenset | None:  # type: ignore[type-arg]
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def conj(a: Clause, b: Clause) -> Clause | None:
    """``a and b``; None when no event satisfies both."""
    if a.path is not None and b.path is not None:
        path: frozenset[PathPat] | None = _inter_paths(a.path, b.path)
    else:
        path = a.path if b.path is None else b.path
    if a.res and b.res and a.res != b.res:
        return None
    c = Clause(path=path, npath=a.npath | b.npath, dir=_inter(a.dir, b.dir), ndir=a.ndir | b.ndir,
               base=_inter(a.base, b.base), nbase=a.nbase | b.nbase, comm=_inter(a.comm, b.comm),
               ncomm=a.ncomm | b.ncomm, euid=_inter(a.euid, b.euid), neuid=a.neuid | b.neuid,
               req=a.req | b.req, forbid=a.forbid | b.forbid, res=a.res or b.res,
               reads_fd=a.reads_fd or b.reads_fd)
    for pos, neg in ((c.dir, c.ndir), (c.base, c.nbase), (c.comm, c.ncomm), (c.euid, c.neuid)):
        if pos is not None and not (pos - neg):
            return None
    if c.path is not None and not any(not _excluded(p, c.npath) for p in c.path):
        return None
    if c.req & c.forbid:
        return None
    return c


# ------------------------------------------------------------------ atoms
def check_values(node: ast.Check) -> list[str] | None:
    """The literal values a check compares its field with (None: not a plain comparison)."""
    r = node.right
    if isinstance(r, ast.Value) and node.op in ("=", "==", "startswith", "glob", "pmatch", "!="):
        return [r.value]
    if isinstance(r, ast.ListValue) and node.op in ("in", "pmatch", "intersects"):
        return list(r.values)
    return None


def _utf8(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _atom(node: ast.Check, neg: bool, t: str, ctx: str) -> list[Clause]:
    left = node.left
    if not isinstance(left, ast.FieldRef) or node.modifier:
        return TRUE
    name, op = left.name, node.op
    if left.arg is not None:
        if name != "evt.arg":
            return TRUE
        name = f"evt.arg.{left.arg}"
    if op == "!=":
        neg, op = not neg, "="
    if ctx == "file":
        return _file_atom(node, name, op, neg)
    vals = check_values(node)
    if name in ("fd.name", "fd.directory", "fd.filename") and t in OPEN_TYPES and vals is not None:
        return _path_atom(name, op, vals, neg)
    if name == "proc.name" and op in ("=", "==", "in") and vals is not None:
        return _comm_atom(vals, neg)
    if name == "user.uid" and op in ("=", "==", "in") and vals is not None:
        try:
            uids = frozenset(int(v) for v in vals)
        except ValueError:
            return TRUE
        return [Clause(neuid=uids)] if neg else [Clause(euid=uids)]
    if t in OPEN_TYPES and isinstance(node.right, ast.Value):
        bit = _class_bit(name, op, node.right.value, neg)
        if bit:
            return [Clause(forbid=-bit)] if bit < 0 else [Clause(req=bit)]
    return _res_atom(node, name, op, neg, t)


def _class_bit(name: str, op: str, value: str, neg: bool) -> int:
    """The open class a check requires (> 0) or excludes (< 0); 0 when none."""
    if name in _FLAG_FIELDS and op in ("=", "=="):
        bit = _FLAG_FIELDS[name]
        return bit if (value.strip().lower() in ("true", "1")) != neg else -bit
    if name == "evt.arg.flags" and op == "contains" and value == "O_TRUNC":
        return -F_TRUNC if neg else F_TRUNC
    if name == "fd.nameraw":
        if op == "contains" and "../" in value:
            # contains X (X holding "../") implies "../"; only "../" itself negates exactly
            return F_DOTDOT if not neg else -F_DOTDOT if value == "../" else 0
        if op == "glob" and not neg and any("../" in seg for seg in re.split(r"[*?\[\]]", value)):
            return F_DOTDOT
    return 0


def _file_atom(node: ast.Check, name: str, op: str, neg: bool) -> list[Clause]:
    """A check evaluated on a regular file's fd, for the fd interest."""
    vals = check_values(node)
    if name in ("fd.name", "fd.directory", "fd.filename") and vals is not None:
        return _path_atom(name, op, vals, neg)
    if name in _SOCKET_ONLY_FIELDS and op != "exists":
        return TRUE if neg else []      # no value on a file: every comparison is false
    if name in ("fd.type", "fd.typechar") and op in ("=", "==", "in") and vals is not None:
        if not any(v in _FILE_FD_TYPES for v in vals):
            return TRUE if neg else []
    return TRUE


def _path_atom(name: str, op: str, vals: list[str], neg: bool) -> list[Clause]:
    if name == "fd.name":
        if op in ("=", "==", "in"):
            pats = [PathPat(v, True) for v in vals]
        elif op == "startswith":
            pats = [PathPat(v, False) for v in vals]
        elif op == "pmatch":
            # pmatch: the path is the pattern or below it; wider than that (a prefix)
            # for a positive check, exactly those two forms for a negated one
            pats = [PathPat(v, False) for v in vals] if not neg else \
                [p for v in vals for p in (PathPat(v, True), PathPat(v.rstrip("/") + "/", False))]
        elif op == "glob":
            pats = []
            for v in vals:
                cut = min((i for i, ch in enumerate(v) if ch in "*?["), default=-1)
                if cut < 0:
                    pats.append(PathPat(v, True))
                elif neg:
                    return TRUE         # the negation of a wildcard is not a set of prefixes
                else:
                    pats.append(PathPat(v[:cut], False))
        else:
            return TRUE
        if neg:
            kept = frozenset(p for p in pats if _path_fits(p))
            return [Clause(npath=kept)] if kept else TRUE
        return [Clause(path=frozenset(_fit_path(p) for p in pats))]
    if op not in ("=", "==", "in"):
        if name == "fd.directory" and op == "startswith" and not neg:
            # a file below a directory starting with X starts with X too
            return [Clause(path=frozenset(_fit_path(PathPat(v, False)) for v in vals))]
        return TRUE
    values = frozenset(vals)
    if neg:
        kept = frozenset(v for v in values if len(_utf8(v)) < PATH_MAX_BYTES)
        if not kept:
            return TRUE
        return [Clause(ndir=kept)] if name == "fd.directory" else [Clause(nbase=kept)]
    if any(len(_utf8(v)) >= PATH_MAX_BYTES for v in values):
        return TRUE
    return [Clause(dir=values)] if name == "fd.directory" else [Clause(base=values)]


def _path_fits(p: PathPat) -> bool:
    return len(_utf8(p.text)) + (1 if p.exact else 0) <= PATH_MAX_BYTES


def _fit_path(p: PathPat) -> PathPat:
    """A positive pattern as the kernel key holds it: a longer one widens to its prefix."""
    if _path_fits(p):
        return p
    raw = _utf8(p.text)[:PATH_MAX_BYTES]
    return PathPat(raw.decode("utf-8", "ignore"), False)


def _comm_atom(vals: list[str], neg: bool) -> list[Clause]:
    # proc.name is the record's comm: at most 15 bytes, so longer names never match
    fits = frozenset(v for v in vals if 0 < len(_utf8(v)) <= COMM_MAX_BYTES)
    if neg:
        return [Clause(ncomm=fits)] if fits else TRUE
    return [Clause(comm=fits)] if fits else []


def _res_atom(node: ast.Check, name: str, op: str, neg: bool, t: str) -> list[Clause]:
    """Checks that only hold on success (or only on failure) of the call."""
    r = node.right
    if not isinstance(r, ast.Value):
        return TRUE
    if name == "evt.res" and op in ("=", "=="):
        ok = r.value == "SUCCESS"
        return [Clause(res=RES_OK if ok != neg else RES_FAIL)] if ok or not neg else TRUE
    if not (name == "evt.rawres" or (name == "fd.num" and t in OPEN_TYPES)):
        return TRUE
    try:
        v = int(r.value)
    except ValueError:
        return TRUE
    if neg:
        op = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "=": "!=", "==": "!="}.get(op, "?")
    lo, hi = {"<": (None, v - 1), "<=": (None, v), ">": (v + 1, None), ">=": (v, None),
              "=": (v, v), "==": (v, v)}.get(op, (None, None))
    if lo is not None and lo >= 0:
        return [Clause(res=RES_OK)]
    if hi is not None and hi < 0:
        return [Clause(res=RES_FAIL)]
    return TRUE


# ------------------------------------------------------------------ compaction
def compact(clauses: list[Clause]) -> list[Clause] | None:
    """Merge clauses that differ in one positive set only; widen until at most
    MAX_CLAUSES remain (None: give up, everything passes)."""
    out = _merge(list(dict.fromkeys(clauses)))
    if len(out) > MAX_CLAUSES:
        out = _merge(list(dict.fromkeys(c.without_negatives() for c in out)))
    if len(out) > MAX_CLAUSES:
        out = _merge(list(dict.fromkeys(replace(c, comm=None, euid=None) for c in out)))
    return out if len(out) <= MAX_CLAUSES else None


_POS_FIELDS = ("path", "dir", "base", "comm", "euid")


def _merge(clauses: list[Clause]) -> list[Clause]:
    for f in _POS_FIELDS:
        groups: dict[Clause, frozenset | None] = {}  # type: ignore[type-arg]
        for c in clauses:
            key = replace(c, **{f: None})
            val = getattr(c, f)
            if key in groups:
                prev = groups[key]
                groups[key] = None if prev is None or val is None else prev | val
            else:
                groups[key] = val
        clauses = [replace(k, **{f: v}) for k, v in groups.items()]
    return clauses
