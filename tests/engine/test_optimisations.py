"""The hot-path rewrites (implied evt.type dropped, or-merging, negated
membership, macro memo, shared first tests) never change a verdict.

The upstream rules are compiled twice, optimised and literally, and both
rulesets judge the same events with ``rule_matching: all``: randomised events
whose field values are drawn from the values the rules themselves compare
with (so that many rules fire), and the benchmark's lazily computed events.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from falcopy.engine.event import DictEvent
from falcopy.engine.fields import default_sources
from falcopy.engine.fields.base import FieldSource
from falcopy.engine.loader import Loader, rules_inputs
from falcopy.engine.ruleset import Ruleset
from tests.bench.engine_bench import BenchSource, build_stream

FILES = ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")


def _ruleset(compat_dir: Path, source: FieldSource, optimize: bool) -> tuple[Ruleset, Loader]:
    loader = Loader({"syscall": source}, optimize=optimize)
    loader.collect(rules_inputs([compat_dir / f for f in FILES]))
    rules = loader.compile()
    assert not loader.errors
    return Ruleset(rules, rule_matching="all"), loader


def _value_pool(loader: Loader) -> list[str]:
    pool = {v for li in loader.collector.lists.values() for v in li.items}
    pool |= {"/etc/shadow", "/etc/passwd", "/root/.ssh/authorized_keys", "/dev/shm/x", "/proc/1/environ",
             "/var/log/syslog", "/usr/bin/x", "/tmp/x", "host", "bash", "sh", "nginx", "runc:[1:CHILD]",
             "-c /dev/shm/x", "stratum+tcp://pool", "10.0.0.1", "169.254.169.254"}
    return sorted(pool)


HOT = ["bash", "sh", "nc", "ncat", "curl", "wget", "apt", "dpkg", "ssh", "sshd", "sudo", "runc:[1:CHILD]",
       "containerd-shim", "/etc/shadow", "/etc/sudoers", "/root/.bashrc", "/etc", "/root", "/usr/bin", "/bin",
       "/etc/pam.d", "/dev/shm/x", "/proc/self/environ", "-c", "host", "kubectl", "nginx", "python3", "node",
       "npm", "xmrig", "/var/run/docker.sock", "/sys/kernel/debug", "release_agent", "mount", "debugfs"]


def _random_events(pool: list[str], types: list[str], n: int, seed: int = 11) -> list[DictEvent]:
    rnd = random.Random(seed)
    out = []
    big = pool

    def pick() -> str:
        return rnd.choice(HOT) if rnd.random() < 0.6 else rnd.choice(big)
    for _ in range(n):
        pool = [pick() for _ in range(8)]
        name = rnd.choice(pool)
        values: dict[str, Any] = {
            "evt.type": rnd.choice(types), "proc.name": name, "proc.exe": name,
            "proc.exepath": "/usr/bin/" + name, "proc.pname": rnd.choice(pool),
            "proc.aname": [rnd.choice(pool) for _ in range(rnd.randint(0, 4))],
            "proc.aname[2]": rnd.choice(pool), "proc.cmdline": f"{name} {rnd.choice(pool)}",
            "proc.args": rnd.choice(pool), "proc.pcmdline": rnd.choice(pool),
            "proc.tty": rnd.choice([0, 34816]), "fd.name": rnd.choice(pool),
            "fd.directory": rnd.choice(pool), "fd.filename": rnd.choice(pool),
            "fd.typechar": rnd.choice(["f", "4", "u"]), "fd.num": rnd.choice([-1, 3]),
            "evt.is_open_read": rnd.random() < 0.5, "evt.is_open_write": rnd.random() < 0.5,
            "container.id": rnd.choice(["host", "0123456789ab"]),
            "container.image.repository": rnd.choice(pool),
            "user.name": rnd.choice([*pool, "root"]), "user.uid": rnd.choice([0, 1000]),
            "evt.arg.flags": rnd.choice(["O_RDONLY", "O_WRONLY|O_CREAT", "O_TMPFILE"]),
            "evt.arg.target": rnd.choice(pool), "evt.arg.newpath": rnd.choice(pool),
            "fd.sip": rnd.choice(["10.0.0.1", "169.254.169.254", "8.8.8.8"]),
            "fd.sport": rnd.choice([22, 443, 3333]), "fd.l4proto": rnd.choice(["tcp", "udp"]),
            "proc.is_exe_from_memfd": rnd.random() < 0.1,
        }
        # leave some fields missing, the other half of the missing-value semantics
        for k in rnd.sample(sorted(values), k=rnd.randint(0, 6)):
            if k != "evt.type":
                del values[k]
        out.append(DictEvent(values))
    return out


def _verdicts(rs: Ruleset, events: list[Any]) -> list[list[str]]:
    return [[r.name for r in rs.evaluate(e)] for e in events]


def test_rewrites_keep_verdicts_on_randomised_events(compat_dir: Path) -> None:
    src = default_sources()["syscall"]
    fast, loader = _ruleset(compat_dir, src, True)
    slow, _ = _ruleset(compat_dir, src, False)
    types = sorted(fast.evttypes("syscall") or [])
    events = _random_events(_value_pool(loader), types, 6000)
    got, want = _verdicts(fast, events), _verdicts(slow, events)
    assert got == want
    fired = {name for names in want for name in names}
    assert len(fired) >= 20, f"the events must exercise many rules, got {sorted(fired)}"


def test_rewrites_keep_verdicts_on_lazy_events(compat_dir: Path) -> None:
    src = BenchSource()
    fast, _ = _ruleset(compat_dir, src, True)
    slow, _ = _ruleset(compat_dir, src, False)
    events = build_stream(20000, seed=3)
    got, want = _verdicts(fast, events), _verdicts(slow, events)
    assert got == want
    assert sum(1 for names in want if names) > 100
