"""Local test images built from the host's static busybox with ``docker import``.

Nothing can be pulled in CI, so images are assembled from ``/bin/busybox``
(package busybox-static): a root filesystem with busybox and its applet links,
plus named stand-in programs (``nginx``, ``sudo``...) written as small shell
scripts.  The kernel names a process after the script file it executes, so a
script called ``nginx`` runs with ``proc.name`` = ``nginx``.

Builds are idempotent and fast: the image carries a label with a hash of its
contents and is rebuilt only when that hash changes.  Usable from any test::

    from tests.images import nginx_image, busybox_image, Container
    with Container(nginx_image(), interactive=True) as c:
        c.exec("ls", "/")
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from tests.waiting import CEILING_S, wait_until

BUSYBOX = Path("/bin/busybox")
HASH_LABEL = "io.falcopy.test.content-hash"

NGINX_REF = "nginx:1.25"
BUSYBOX_REF = "falcopy-test/busybox:1.36"
MODLOAD_REF = "falcopy-test/modload:1"

#: stand-in for nginx: blocks on its standard input (keep it open with
#: ``docker run -i``) without starting any other program, exits on EOF
NGINX_SCRIPT = "#!/bin/sh\n# falcopy test stand-in for nginx\nread -r _\nexit 0\n"
#: stand-in for sudo: runs its arguments (``sudo id``), as a permissive sudo would
SUDO_SCRIPT = '#!/bin/sh\n# falcopy test stand-in for sudo\n[ "$#" -gt 0 ] && exec "$@"\nexit 0\n'


def docker(*args: str, check: bool = True, input_bytes: bytes | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; a failure raises with docker's own message."""
    proc = subprocess.run(["docker", *args], input=input_bytes.decode("latin-1") if input_bytes else None,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def require_docker() -> None:
    """Fail (never skip) when the daemon is not answering: CI starts it via scripts/dockerd-up.sh."""
    try:
        proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=20)
    except FileNotFoundError as exc:
        raise AssertionError("docker CLI not installed (package docker.io)") from exc
    assert proc.returncode == 0, (
        f"docker daemon unavailable: {proc.stderr.strip()} - start it with scripts/dockerd-up.sh")
    assert BUSYBOX.exists(), f"{BUSYBOX} missing: install busybox-static"


def _busybox_applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True)
    return sorted(line.strip() for line in out.stdout.splitlines() if line.strip())


def _rootfs_tar(programs: dict[str, str], binaries: dict[str, bytes] | None = None) -> bytes:
    """A root filesystem tarball: busybox, its applets, /etc basics, ``programs`` {path: script},
    ``binaries`` {path: executable bytes}."""
    buf = io.BytesIO()
    now = 0  # fixed mtimes keep the tarball (and so the hash) reproducible
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "var", "var/log",
                  "proc", "sys", "dev"):
            add_dir(d)
        add_file("bin/busybox", BUSYBOX.read_bytes())
        own = {p.lstrip("/") for p in [*programs, *(binaries or {})]}
        for applet in _busybox_applets():
            rel = applet.lstrip("/")
            if rel == "bin/busybox" or rel in own:
                continue
            link = tarfile.TarInfo(rel)
            link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "/bin/busybox", now
            tar.addfile(link)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
                 0o644)
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644)
        for path, script in sorted(programs.items()):
            add_file(path.lstrip("/"), script.encode())
        for path, data in sorted((binaries or {}).items()):
            add_file(path.lstrip("/"), data)
    return buf.getvalue()


def build_image(ref: str, programs: dict[str, str] | None = None, cmd: Sequence[str] = ("/bin/sh",),
                labels: dict[str, str] | None = None, binaries: dict[str, bytes] | None = None) -> str:
    """Build (or reuse) image ``ref``; returns its id (``sha256:...``)."""
    programs = programs or {}
    tar_bytes = _rootfs_tar(programs, binaries)
    h = hashlib.sha256(tar_bytes)
    h.update(json.dumps([list(cmd), labels or {}], sort_keys=True).encode())
    digest = h.hexdigest()[:16]
    fmt = f'{{{{index .Config.Labels "{HASH_LABEL}"}}}}|{{{{.Id}}}}'
    existing = docker("image", "inspect", "--format", fmt, ref, check=False)
    if existing.returncode == 0:
        label, _, image_id = existing.stdout.strip().partition("|")
        if label == digest:
            return image_id
    changes = ["--change", f"CMD {json.dumps(list(cmd))}", "--change", f"LABEL {HASH_LABEL}={digest}"]
    for key, value in (labels or {}).items():
        changes += ["--change", f"LABEL {key}={json.dumps(value)}"]
    proc = subprocess.run(["docker", "import", *changes, "-", ref], input=tar_bytes,
                          capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"docker import {ref} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode().strip()


def nginx_image(ref: str = NGINX_REF) -> str:
    """An ``nginx`` image whose /usr/sbin/nginx is a blocking stand-in; returns ``ref``."""
    build_image(ref, {"/usr/sbin/nginx": NGINX_SCRIPT}, cmd=("/usr/sbin/nginx",))
    return ref


def busybox_image(ref: str = BUSYBOX_REF) -> str:
    """A busybox image with a ``sudo`` program; returns ``ref``."""
    build_image(ref, {"/usr/bin/sudo": SUDO_SCRIPT}, cmd=("/bin/sh",))
    return ref


def static_program(source: Path) -> bytes:
    """A C test helper compiled static (the images have no libc), as bytes."""
    with tempfile.TemporaryDirectory(prefix="falcopy-static-") as tmp:
        out = Path(tmp) / source.stem
        subprocess.run(["cc", "-static", "-O1", "-o", str(out), str(source)], check=True,
                       capture_output=True, timeout=120)
        return out.read_bytes()


def modload_image(ref: str = MODLOAD_REF) -> str:
    """A busybox image with ``/usr/bin/modload`` (tests/modload.c: init_module + finit_module)."""
    build_image(ref, binaries={"/usr/bin/modload": static_program(Path(__file__).parent / "modload.c")})
    return ref


class Container:
    """A running test container, removed on exit (``with Container(img) as c``)."""

    def __init__(self, image: str, *cmd: str, name: str | None = None, interactive: bool = False,
                 labels: dict[str, str] | None = None, extra: Sequence[str] = ()) -> None:
        self.image = image
        self.cmd = list(cmd)
        self.name = name or f"falcopy-test-{uuid.uuid4().hex[:10]}"
        self.interactive = interactive
        self.labels = labels or {}
        self.extra = list(extra)
        self.full_id = ""

    @property
    def id(self) -> str:
        return self.full_id[:12]

    def start(self) -> Container:
        args = ["run", "-d", "--name", self.name]
        if self.interactive:
            args.append("-i")
        for key, value in self.labels.items():
            args += ["--label", f"{key}={value}"]
        args += [*self.extra, self.image, *self.cmd]
        self.full_id = docker(*args).stdout.strip()
        self._wait_running()
        return self

    def _wait_running(self, timeout: float = CEILING_S) -> None:
        if wait_until(lambda: self.pid() > 0, timeout):
            return
        logs = docker("logs", self.name, check=False)
        raise RuntimeError(f"container {self.name} did not start: {logs.stdout}{logs.stderr}")

    def pid(self) -> int:
        out = docker("inspect", "--format", "{{.State.Pid}}", self.full_id, check=False)
        return int(out.stdout.strip() or 0) if out.returncode == 0 else 0

    def exec(self, *cmd: str, check: bool = True, tty: bool = False,
             timeout: float = 30) -> subprocess.CompletedProcess[str]:
        args = ["exec"] + (["-t"] if tty else []) + [self.full_id, *cmd]
        return docker(*args, check=check, timeout=timeout)

    def remove(self) -> None:
        if self.full_id:
            docker("rm", "-f", self.full_id, check=False)

    def __enter__(self) -> Container:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()
