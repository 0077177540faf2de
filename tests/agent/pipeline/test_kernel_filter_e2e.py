"""The rule-derived kernel filter, for real (issue 13).

- Soundness: two agents watch the same real actions, one with the kernel filter and
  one without; they raise the same alerts (project rules, upstream
  stable+incubating+sandbox), and the recorded stream of the unfiltered one replayed
  through the filter's reference (KernelFilter.admits) keeps every record that raised one.
- The flood: with the stable rules, an unthrottled open/close loop on a /tmp file runs
  while a copied cat reads /etc/shadow ten times: no kernel drop, ten alerts, and under
  1% of the loop's syscalls reach user space.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from falcopy.agent.events.record import SyscallRecord

from tests.agent.pipeline.agentrun import Agent, Hit, start_agent

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[3]
UPSTREAM = ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert cc, "a C compiler is needed to build the flood workload"
    out = tmp_path_factory.mktemp("kfwl") / "kfflood"
    subprocess.run([cc, "-O2", "-o", str(out), str(REPO / "tests" / "bench" / "workload.c")], check=True)
    return out


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of system binaries under names unique to this run."""
    d = tmp_path_factory.mktemp("kfbins")
    tag = os.getpid() % 100000
    for src in ("cat", "touch", "chmod", "ln"):
        path = shutil.which(src)
        assert path, src
        shutil.copy2(path, d / f"kf{src}{tag}")
    return d


def _bin(bins: Path, name: str) -> str:
    return str(bins / f"kf{name}{os.getpid() % 100000}")


# ------------------------------------------------------------------ soundness
@pytest.fixture(scope="module")
def pair(compat_dir: Path) -> Iterator[tuple[Agent, Agent]]:
    assert os.geteuid() == 0, "kernel tests need root (CI runs as root)"
    rules = {"project": [REPO / "rules" / "falcopy_rules.yaml"],
             "upstream": [compat_dir / f for f in UPSTREAM]}
    on = start_agent(rules, kernel_filter=True)
    # the unfiltered one sees the whole (shared, busy) machine: a deep ring
    off = start_agent(rules, kernel_filter=False, ring_size=256 << 20)
    yield on, off
    on.probe.close()
    off.probe.close()


def _key(h: Hit) -> tuple[str, tuple[tuple[str, str], ...]]:
    return h.rule, tuple(sorted((k, repr(v)) for k, v in h.fields.items()))


def catch_up(agent: Agent, sink: list[SyscallRecord] | None = None, ceiling_s: float = 120.0) -> None:
    """Process everything the agent's ring holds up to now: a marker process is started
    and records are consumed until its exit is seen (the ring is ordered)."""
    marker = subprocess.Popen(["/bin/true"])
    marker.wait()
    deadline = time.monotonic() + ceiling_s
    while time.monotonic() < deadline:
        recs = agent.probe.poll(50)
        if sink is not None:
            sink.extend(recs)
        for pipe in agent.pipelines.values():
            pipe.process(recs)
        if any(r.type == "procexit" and r.pid == marker.pid for r in recs):
            return
    pytest.fail(f"the agent did not catch up within {ceiling_s}s")


def run_both(on: Agent, off: Agent, action: Callable[[], None], attempts: int = 5
             ) -> tuple[list[Hit], list[Hit], list[SyscallRecord]]:
    """Our alerts from both agents for one run of ``action`` (repeated when a ring
    dropped records: the machine is shared), and the unfiltered agent's records."""
    for _ in range(attempts):
        for a in (on, off):
            catch_up(a)
            a.hits.clear()
        drops = (on.probe.drops(), off.probe.drops())
        errors: list[BaseException] = []
        records: list[SyscallRecord] = []

        def act(errors: list[BaseException] = errors) -> None:
            try:
                action()
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=act)
        worker.start()
        while worker.is_alive():
            for a, sink in ((on, None), (off, records)):
                recs = a.probe.poll(20)
                if sink is not None:
                    sink.extend(recs)
                for pipe in a.pipelines.values():
                    pipe.process(recs)
        worker.join()
        if errors:
            raise errors[0]
        catch_up(on)
        catch_up(off, records)
        if (on.probe.drops(), off.probe.drops()) == drops:
            return [h for h in on.hits if h.ours], [h for h in off.hits if h.ours], records
    pytest.fail("both rings never had a window without drops")


def actions(bins: Path, tmp: Path) -> None:
    """Real actions the default and upstream rules look at, among ordinary ones."""
    tag = os.getpid()
    run = subprocess.run
    for i in range(300):                       # ordinary file traffic no rule wants
        fd = os.open(tmp / f"noise-{i % 7}", os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
    run([_bin(bins, "cat"), "/etc/shadow"], capture_output=True, check=True)
    run([_bin(bins, "cat"), "/etc/../etc/../etc/shadow"], capture_output=True, check=True)
    run([_bin(bins, "cat"), "/etc/hostname", "/usr/lib/os-release"], capture_output=True, check=False)
    target = f"/etc/falcopy-kf-{tag}.tmp"
    try:
        run([_bin(bins, "touch"), target], check=True)
    finally:
        Path(target).unlink(missing_ok=True)
    mode = oct(os.stat("/etc/shadow").st_mode & 0o7777)[2:]
    run([_bin(bins, "chmod"), mode, "/etc/shadow"], check=True)
    run([_bin(bins, "ln"), "-sf", "/etc/shadow", str(tmp / "shadow-link")], check=True)
    shm = Path(f"/dev/shm/kf-true-{tag}")
    shutil.copy2("/bin/true", shm)
    try:
        run([str(shm)], check=True)
    finally:
        shm.unlink()
    log = Path(f"/var/log/falcopy-kf-{tag}.log")
    try:
        run(["python3", "-c", f"open({str(log)!r}, 'w').write('x')"], check=True)
    finally:
        log.unlink(missing_ok=True)
    # a redirect of a file opened by a shell, then its fd duplicated and closed
    run(["bash", "-c", f"exec 7>{tmp}/dup-target; exec 8>&7; echo x >&8; exec 7>&- 8>&-"], check=True)


def test_same_alerts_with_the_filter_on_and_off(pair: tuple[Agent, Agent], bins: Path,
                                                tmp_path: Path) -> None:
    on, off = pair
    hits_on, hits_off, _ = run_both(on, off, lambda: actions(bins, tmp_path))
    rules_off = {h.rule for h in hits_off}
    # the actions do reach the rules (else equality proves nothing)
    for expected in ("upstream:Read sensitive file untrusted",
                     "upstream:Directory traversal monitored file read",
                     "project:Write Below Etc Directory", "upstream:Create Symlink Over Sensitive Files"):
        assert expected in rules_off, sorted(rules_off)
    assert sorted(map(_key, hits_on)) == sorted(map(_key, hits_off)), (
        [(h.rule, h.ours, h.fields.get("proc.name")) for h in on.hits][:20], on.probe.drops_by_class())
    assert on.probe.filter_stats()["openat"][1] > 0, "the filter kept nothing in the kernel"


def test_recorded_stream_replayed_through_the_filter_keeps_every_alert(pair: tuple[Agent, Agent], bins: Path,
                                                                       tmp_path: Path) -> None:
    """The unfiltered recorded stream: every record that raised an alert is one the
    filter's reference admits (facts as the kernel sees them)."""
    from falcopy.agent.pipeline import Pipeline, kernel_filter
    from falcopy.agent.state import ProcessTable

    from falcopy.engine.kernel_filter import union

    on, off = pair
    _, hits_off, records = run_both(on, off, lambda: actions(bins, tmp_path))
    assert hits_off
    rulesets = [p.ruleset for p in off.pipelines.values()]
    kf = kernel_filter(rulesets[0])
    for rs in rulesets[1:]:
        kf = union(kf, kernel_filter(rs))
    alerting: list[SyscallRecord] = []
    for rs in rulesets:
        table = ProcessTable()
        table.bootstrap()
        pipe = Pipeline(rs, table, on_alert=lambda rule, ev: alerting.append(ev.rec))
        pipe.process(records)
    assert alerting
    for rec in alerting:
        assert kf.admits(rec.type, facts_of(rec)), (rec.type, rec.comm, rec.args)


def facts_of(rec: SyscallRecord) -> Any:
    """What the kernel knows of a record, as KernelFilter.admits takes it."""
    from falcopy.engine.kernel_filter import F_CREATE, F_DOTDOT, F_READ, F_TRUNC, F_WRITE, OPEN_TYPES, Facts

    path = flags = None
    is_dir = False
    if rec.type in OPEN_TYPES:
        raw = rec.args.get("name") or ""
        fl = 0o1101 if rec.type == "creat" else int(rec.args.get("flags") or 0)
        acc = fl & 3
        flags = ((F_READ if acc in (0, 2) else 0) | (F_WRITE if acc in (1, 2) else 0)
                 | (F_CREATE if fl & 0o100 else 0)
                 | (F_TRUNC if rec.type != "creat" and fl & 0o1000 else 0)
                 | (F_DOTDOT if "../" in raw else 0))
        is_dir = bool(fl & 0o200000) and rec.type != "creat"
        full = raw if raw.startswith("/") else f"{rec.args.get('dirpath', '')}/{raw}"
        canonical = "//" not in full and "/." not in full and not (len(full) > 1 and full.endswith("/"))
        path = full if canonical and len(full.encode()) < 251 else None
    return Facts(comm=rec.comm, euid=rec.euid, res=rec.res, path=path, flags=flags, is_dir=is_dir)


# ------------------------------------------------------------------ the flood
def test_flood_of_tmp_opens_hides_no_shadow_read(compat_dir: Path, workload: Path, bins: Path) -> None:
    assert os.geteuid() == 0, "kernel tests need root (CI runs as root)"
    agent = start_agent({"stable": [compat_dir / "falco_rules.yaml"]})
    try:
        agent.sync()
        agent.hits.clear()
        drops0 = agent.probe.drops_by_class()
        flood = subprocess.Popen([str(workload), "tmpflood", "8"], stdout=subprocess.PIPE, text=True)
        cat = _bin(bins, "cat")
        reads: list[int] = []

        def read_shadow() -> None:
            time.sleep(0.5)  # the flood is under way (a start-up delay, not a synchronisation)
            for _ in range(10):
                p = subprocess.run([cat, "/etc/shadow"], capture_output=True, check=True)
                reads.append(p.returncode)

        reader = threading.Thread(target=read_shadow)
        reader.start()
        from_flood = 0
        while flood.poll() is None or reader.is_alive():
            recs = agent.probe.poll(50)
            from_flood += sum(1 for r in recs if r.pid == flood.pid)
            for pipe in agent.pipelines.values():
                pipe.process(recs)
        reader.join()
        ops = int(flood.communicate()[0].strip())
        agent.sync()
        drops = agent.probe.drops_by_class()
        hits = [h for h in agent.hits if h.ours and h.rule == "stable:Read sensitive file untrusted"
                and h.fields["proc.name"] == Path(cat).name]
        assert drops == drops0, f"kernel drops during the flood: {drops0} -> {drops}"
        assert len(reads) == 10 and len(hits) == 10, [h.fields for h in hits]
        syscalls = 2 * ops
        assert syscalls > 100_000, f"the flood ran {ops} open+close only"
        assert from_flood < 0.01 * syscalls, f"{from_flood} of {syscalls} flood syscalls reached user space"
    finally:
        agent.probe.close()
