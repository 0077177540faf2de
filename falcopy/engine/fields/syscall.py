"""Field definitions of the ``syscall`` event source.

Names, types and argument forms follow Falco's syscall source (libsinsp
filterchecks plus the container plugin for ``container.*``/``k8s.*``), so a
Falco rules file that validates with Falco validates here.  Descriptions are
our own wording.  Values are produced by the agent's FieldSource
(``falcopy.agent.fields.syscall``); replay/tests read them from DictEvent.
"""

from __future__ import annotations

from falcopy.engine.fields.base import ArgMode, FieldDef, FieldType

S = FieldType.STRING
I = FieldType.INT  # noqa: E741 - short aliases keep the table readable
U = FieldType.UINT
B = FieldType.BOOL
T = FieldType.ABSTIME
R = FieldType.RELTIME
IP = FieldType.IPADDR
NET = FieldType.IPNET
P = FieldType.PORT
BUF = FieldType.BYTEBUF
FL = FieldType.FLAGS

N = ArgMode.NONE
IDX = ArgMode.INDEX_OPTIONAL
KEY = ArgMode.KEY_REQUIRED

# (name, type, description, arg mode, is_list, deprecated)
_Row = tuple[str, FieldType, str, ArgMode, bool, bool]


def _r(name: str, ftype: FieldType, desc: str, arg: ArgMode = N, is_list: bool = False,
       deprecated: bool = False) -> _Row:
    return (name, ftype, desc, arg, is_list, deprecated)


EVT_FIELDS: list[_Row] = [
    _r("evt.num", U, "sequence number of the event"),
    _r("evt.time", S, "event time as a clock string with nanoseconds"),
    _r("evt.time.s", S, "event time as a clock string without nanoseconds"),
    _r("evt.time.iso8601", S, "event time in ISO 8601 (UTC, nanoseconds)"),
    _r("evt.datetime", S, "event date and time with nanoseconds"),
    _r("evt.datetime.s", S, "event date and time without nanoseconds"),
    _r("evt.rawtime", T, "event time in nanoseconds since the epoch"),
    _r("evt.rawtime.s", T, "seconds part of evt.rawtime"),
    _r("evt.rawtime.ns", T, "fractional nanoseconds part of evt.rawtime"),
    _r("evt.reltime", R, "nanoseconds since the capture started"),
    _r("evt.reltime.s", R, "seconds part of evt.reltime"),
    _r("evt.reltime.ns", R, "fractional nanoseconds part of evt.reltime"),
    _r("evt.pluginname", S, "name of the plugin that produced the event"),
    _r("evt.plugininfo", S, "summary of a plugin event"),
    _r("evt.source", S, "name of the event source (syscall, k8s_audit...)"),
    _r("evt.is_async", B, "true for events produced asynchronously (not by a syscall)"),
    _r("evt.asynctype", S, "type name of an asynchronous event"),
    _r("evt.hostname", S, "host name of the machine that produced the event"),
    _r("evt.latency", R, "time between the enter and exit of the syscall", deprecated=True),
    _r("evt.latency.s", R, "seconds part of evt.latency", deprecated=True),
    _r("evt.latency.ns", R, "fractional nanoseconds part of evt.latency", deprecated=True),
    _r("evt.latency.human", S, "evt.latency as a readable string", deprecated=True),
    _r("evt.deltatime", R, "time since the previous event"),
    _r("evt.deltatime.s", R, "seconds part of evt.deltatime"),
    _r("evt.deltatime.ns", R, "fractional nanoseconds part of evt.deltatime"),
    _r("evt.outputtime", T, "time used for the output (enter or exit)"),
    _r("evt.dir", S, "direction: '>' enter, '<' exit (always exit since Falco 0.42)", deprecated=True),
    _r("evt.type", S, "event (syscall) name, e.g. open, execve"),
    _r("evt.type.is", U, "1 when the event type equals the argument", KEY),
    _r("syscall.type", S, "syscall name for syscall events, empty otherwise"),
    _r("evt.category", S, "event category: file, net, process, memory..."),
    _r("evt.cpu", I, "CPU that produced the event"),
    _r("evt.args", S, "all event arguments as one string"),
    _r("evt.arg", S, "one argument, by name (evt.arg.fd) or index (evt.arg[0])", KEY),
    _r("evt.rawarg", S, "one argument, by name, in raw form", KEY),
    _r("evt.info", S, "event arguments, or a description for events with special meaning"),
    _r("evt.buffer", BUF, "I/O buffer of read/write-type events"),
    _r("evt.buflen", U, "length of the I/O buffer"),
    _r("evt.res", S, "result as a string: SUCCESS or the errno name"),
    _r("evt.rawres", I, "raw numeric return value"),
    _r("evt.failed", B, "true when the syscall returned an error"),
    _r("evt.is_io", B, "true for events reading or writing data"),
    _r("evt.is_io_read", B, "true for read-type I/O events"),
    _r("evt.is_io_write", B, "true for write-type I/O events"),
    _r("evt.io_dir", S, "r or w for I/O events"),
    _r("evt.is_wait", B, "true for events that make the thread wait"),
    _r("evt.wait_latency", R, "time spent waiting in the syscall", deprecated=True),
    _r("evt.is_syslog", B, "true for writes to /dev/log"),
    _r("evt.count", U, "1 for every event (for counting)"),
    _r("evt.count.error", U, "1 for events that returned an error"),
    _r("evt.count.error.file", U, "1 for file events that returned an error"),
    _r("evt.count.error.net", U, "1 for network events that returned an error"),
    _r("evt.count.error.memory", U, "1 for memory events that returned an error"),
    _r("evt.count.error.other", U, "1 for other events that returned an error"),
    _r("evt.count.exit", U, "1 for exit events"),
    _r("evt.around", U, "events around a given time (capture filtering only)", KEY),
    _r("evt.abspath", S, "absolute path computed from dirfd and name (*at syscalls)"),
    _r("evt.abspath.src", S, "source absolute path of a rename/link-type *at syscall"),
    _r("evt.abspath.dst", S, "destination absolute path of a rename/link-type *at syscall"),
    _r("evt.is_open_read", B, "true for open events that open for reading"),
    _r("evt.is_open_write", B, "true for open events that open for writing"),
    _r("evt.is_open_exec", B, "true for open events that create an executable file"),
    _r("evt.is_open_create", B, "true for open events that created the file"),
]

PROC_FIELDS: list[_Row] = [
    _r("proc.exe", S, "first command line argument (argv[0]) of the process"),
    _r("proc.pexe", S, "proc.exe of the parent"),
    _r("proc.aexe", S, "proc.exe of an ancestor: [1] parent, [2] grandparent...; "
       "without index, any ancestor", IDX),
    _r("proc.exepath", S, "full path of the executable"),
    _r("proc.pexepath", S, "proc.exepath of the parent"),
    _r("proc.aexepath", S, "proc.exepath of an ancestor (index) or of any ancestor", IDX),
    _r("proc.name", S, "name of the executable (comm-like, not truncated)"),
    _r("proc.pname", S, "name of the parent process"),
    _r("proc.aname", S, "name of an ancestor (index) or of any ancestor", IDX),
    _r("proc.args", S, "command line arguments, without the executable name"),
    _r("proc.cmdline", S, "proc.name followed by proc.args"),
    _r("proc.cmdnargs", U, "number of command line arguments"),
    _r("proc.cmdlenargs", U, "total length of the command line arguments"),
    _r("proc.pcmdline", S, "proc.cmdline of the parent"),
    _r("proc.acmdline", S, "proc.cmdline of an ancestor (index) or of any ancestor", IDX),
    _r("proc.exeline", S, "proc.exe followed by proc.args"),
    _r("proc.env", S, "environment of the process, or one variable with [NAME]",
       ArgMode.KEY_OPTIONAL),
    _r("proc.aenv", S, "environment variable searched in the process and its ancestors",
       ArgMode.KEY_OPTIONAL),
    _r("proc.cwd", S, "current working directory"),
    _r("proc.loginshellid", I, "pid of the oldest shell among the ancestors"),
    _r("proc.tty", U, "controlling terminal, 0 when none"),
    _r("proc.pid", I, "process id"),
    _r("proc.ppid", I, "parent process id"),
    _r("proc.apid", I, "pid of an ancestor (index) or of any ancestor", IDX),
    _r("proc.vpid", I, "process id inside its pid namespace"),
    _r("proc.pvpid", I, "parent process id inside its pid namespace"),
    _r("proc.sid", I, "session id"),
    _r("proc.sname", S, "name of the session leader"),
    _r("proc.sid.exe", S, "proc.exe of the session leader"),
    _r("proc.sid.exepath", S, "proc.exepath of the session leader"),
    _r("proc.vpgid", I, "process group id inside the pid namespace"),
    _r("proc.vpgid.name", S, "name of the process group leader"),
    _r("proc.vpgid.exe", S, "proc.exe of the process group leader"),
    _r("proc.vpgid.exepath", S, "proc.exepath of the process group leader"),
    _r("proc.pgid", I, "process group id"),
    _r("proc.pgid.name", S, "name of the process group leader (host namespace)"),
    _r("proc.pgid.exe", S, "proc.exe of the process group leader (host namespace)"),
    _r("proc.pgid.exepath", S, "proc.exepath of the process group leader (host namespace)"),
    _r("proc.duration", R, "nanoseconds since the process started"),
    _r("proc.ppid.duration", R, "nanoseconds since the parent started"),
    _r("proc.pid.ts", T, "start time of the process"),
    _r("proc.ppid.ts", T, "start time of the parent"),
    _r("proc.is_exe_writable", B, "true when the executable is writable by the process user"),
    _r("proc.is_exe_upper_layer", B, "true when the executable lives in the upper layer of an overlayfs"),
    _r("proc.is_exe_lower_layer", B, "true when the executable lives in a lower layer of an overlayfs"),
    _r("proc.is_exe_from_memfd", B, "true when the executable is a memfd (fileless execution)"),
    _r("proc.is_sid_leader", B, "true when the process leads its session"),
    _r("proc.is_vpgid_leader", B, "true when the process leads its process group"),
    _r("proc.exe_ino", I, "inode of the executable"),
    _r("proc.exe_ino.ctime", T, "ctime of the executable's inode"),
    _r("proc.exe_ino.mtime", T, "mtime of the executable's inode"),
    _r("proc.exe_ino.ctime_duration_proc_start", R,
       "nanoseconds between the executable's ctime and the process start"),
    _r("proc.exe_ino.ctime_duration_pidns_start", R,
       "nanoseconds between the pid namespace start and the executable's ctime"),
    _r("proc.pidns_init_start_ts", T, "start time of the pid namespace's init process"),
    _r("proc.fdopencount", U, "number of open file descriptors"),
    _r("proc.fdlimit", I, "maximum number of file descriptors"),
    _r("proc.fdusage", U, "open file descriptors as a percentage of the limit"),
    _r("proc.vmsize", U, "total virtual memory (KiB)"),
    _r("proc.vmrss", U, "resident memory (KiB)"),
    _r("proc.vmswap", U, "swapped memory (KiB)"),
    _r("proc.nthreads", U, "number of threads of the process"),
    _r("proc.nchilds", U, "number of child threads"),
    _r("proc.stdin.type", S, "type of file descriptor 0"),
    _r("proc.stdout.type", S, "type of file descriptor 1"),
    _r("proc.stderr.type", S, "type of file descriptor 2"),
    _r("proc.stdin.name", S, "name of file descriptor 0"),
    _r("proc.stdout.name", S, "name of file descriptor 1"),
    _r("proc.stderr.name", S, "name of file descriptor 2"),
]

THREAD_FIELDS: list[_Row] = [
    _r("thread.tid", I, "thread id"),
    _r("thread.ismain", B, "true for the main thread of a process"),
    _r("thread.vtid", I, "thread id inside its pid namespace"),
    _r("thread.exectime", R, "CPU time of the last scheduled run (switch events)"),
    _r("thread.totexectime", R, "total CPU time of the thread (switch events)"),
    _r("thread.cgroups", S, "all cgroups of the thread"),
    _r("thread.cgroup", S, "cgroup of the thread for one subsystem: [cpuacct]", KEY),
    _r("thread.nametid", S, "process name and thread id"),
    _r("thread.cap_permitted", S, "permitted capabilities set"),
    _r("thread.cap_inheritable", S, "inheritable capabilities set"),
    _r("thread.cap_effective", S, "effective capabilities set"),
    _r("thread.vmsize", U, "virtual memory of the thread (KiB)"),
    _r("thread.vmrss", U, "resident memory of the thread (KiB)"),
]

FD_FIELDS: list[_Row] = [
    _r("fd.num", I, "number of the file descriptor"),
    _r("fd.type", S, "kind of descriptor: file, directory, ipv4, ipv6, unix, pipe, event, "
       "signalfd, eventpoll, inotify, timerfd, netlink, bpf, userfaultfd, io_uring, memfd, pidfd"),
    _r("fd.typechar", S, "kind of descriptor as one character (f, 4, 6, u, p, e, s, l, i, t, "
       "n, b, o...)"),
    _r("fd.name", S, "full name: the path for files, the connection tuple for sockets"),
    _r("fd.directory", S, "directory of a file descriptor's path"),
    _r("fd.filename", S, "last path element of a file descriptor's path"),
    _r("fd.ip", IP, "client or server address (condition only)"),
    _r("fd.cip", IP, "client address"),
    _r("fd.sip", IP, "server address"),
    _r("fd.lip", IP, "local address"),
    _r("fd.rip", IP, "remote address"),
    _r("fd.port", P, "client or server port (condition only)"),
    _r("fd.cport", P, "client port"),
    _r("fd.sport", P, "server port"),
    _r("fd.lport", P, "local port"),
    _r("fd.rport", P, "remote port"),
    _r("fd.l4proto", S, "transport protocol: tcp, udp, icmp, raw"),
    _r("fd.sockfamily", S, "socket family: ip or unix"),
    _r("fd.is_server", B, "true when the process owning the descriptor is the server"),
    _r("fd.uid", S, "unique descriptor id (thread id and fd number)"),
    _r("fd.containername", S, "container name followed by fd.name"),
    _r("fd.containerdirectory", S, "container name followed by fd.directory"),
    _r("fd.proto", P, "protocol port (condition only)"),
    _r("fd.cproto", S, "client protocol name"),
    _r("fd.sproto", S, "server protocol name"),
    _r("fd.lproto", S, "local protocol name"),
    _r("fd.rproto", S, "remote protocol name"),
    _r("fd.net", NET, "client or server network (condition only)"),
    _r("fd.cnet", NET, "client network"),
    _r("fd.snet", NET, "server network"),
    _r("fd.lnet", NET, "local network"),
    _r("fd.rnet", NET, "remote network"),
    _r("fd.connected", B, "true for a connected socket"),
    _r("fd.name_changed", B, "true when the event changed fd.name (connect, accept...)"),
    _r("fd.cip.name", S, "domain name resolved for the client address"),
    _r("fd.sip.name", S, "domain name resolved for the server address"),
    _r("fd.lip.name", S, "domain name resolved for the local address"),
    _r("fd.rip.name", S, "domain name resolved for the remote address"),
    _r("fd.dev", I, "device number of the file"),
    _r("fd.dev.major", I, "major device number of the file"),
    _r("fd.dev.minor", I, "minor device number of the file"),
    _r("fd.ino", I, "inode number of the file"),
    _r("fd.nameraw", S, "name as passed to the syscall, before path normalisation"),
    _r("fd.types", S, "types of the descriptors of the process, or of one fd: fd.types[3]", IDX),
]

FS_FIELDS: list[_Row] = [
    _r("fs.path.name", S, "path involved in a filesystem event (open, unlink, rename...)"),
    _r("fs.path.nameraw", S, "fs.path.name before normalisation"),
    _r("fs.path.source", S, "source path of a rename/link/symlink event"),
    _r("fs.path.sourceraw", S, "fs.path.source before normalisation"),
    _r("fs.path.target", S, "target path of a rename/link/symlink event"),
    _r("fs.path.targetraw", S, "fs.path.target before normalisation"),
]

USER_GROUP_FIELDS: list[_Row] = [
    _r("user.uid", U, "effective user id"),
    _r("user.name", S, "effective user name"),
    _r("user.homedir", S, "home directory of the user"),
    _r("user.shell", S, "login shell of the user"),
    _r("user.loginuid", I, "audit login uid (-1 when unset)"),
    _r("user.loginname", S, "name of the audit login user"),
    _r("group.gid", U, "effective group id"),
    _r("group.name", S, "effective group name"),
]

CONTAINER_FIELDS: list[_Row] = [
    _r("container.id", S, "short (12 characters) container id, 'host' outside containers"),
    _r("container.full_id", S, "full container id, 'host' outside containers"),
    _r("container.name", S, "container name"),
    _r("container.image", S, "image name as used by the container"),
    _r("container.image.id", S, "image id"),
    _r("container.type", S, "container runtime: docker, containerd, cri-o, podman..."),
    _r("container.privileged", B, "true when the container runs privileged"),
    _r("container.mounts", S, "all mounts as comma-separated source:dest:mode:rdwr:propagation entries"),
    _r("container.mount", S, "one mount, by index or by source path", KEY),
    _r("container.mount.source", S, "mount source, by index or by destination path", KEY),
    _r("container.mount.dest", S, "mount destination, by index or by source path", KEY),
    _r("container.mount.mode", S, "mount mode, by index or by source path", KEY),
    _r("container.mount.rdwr", S, "mount read-write flag, by index or by source path", KEY),
    _r("container.mount.propagation", S, "mount propagation, by index or by source path", KEY),
    _r("container.image.repository", S, "repository part of the image name"),
    _r("container.image.tag", S, "tag part of the image name"),
    _r("container.image.digest", S, "digest of the image"),
    _r("container.healthcheck", S, "health check command of the container"),
    _r("container.liveness_probe", S, "liveness probe command (Kubernetes)"),
    _r("container.readiness_probe", S, "readiness probe command (Kubernetes)"),
    _r("container.start_ts", T, "container start time"),
    _r("container.duration", R, "nanoseconds since the container started"),
    _r("container.ip", S, "primary IP address of the container"),
    _r("container.cni.json", S, "CNI result of the container as JSON"),
    _r("container.host_pid", B, "true when the container shares the host pid namespace"),
    _r("container.host_network", B, "true when the container shares the host network namespace"),
    _r("container.host_ipc", B, "true when the container shares the host IPC namespace"),
    _r("container.label", S, "one container label: container.label[key]", KEY),
    _r("container.labels", S, "all container labels as key:value entries"),
    _r("proc.is_container_healthcheck", B, "true when the process is the container's health check"),
    _r("proc.is_container_liveness_probe", B, "true when the process is a Kubernetes liveness probe"),
    _r("proc.is_container_readiness_probe", B, "true when the process is a Kubernetes readiness probe"),
    # An output-only placeholder: expanded to the container fields the
    # agent is configured to add (Falco's -pc/-pk behaviour).
    _r("container.info", S, "container description for outputs (expanded from configuration)"),
]

K8S_FIELDS: list[_Row] = [
    _r("k8s.pod.name", S, "Kubernetes pod name"),
    _r("k8s.pod.uid", S, "Kubernetes pod UID"),
    _r("k8s.pod.id", S, "alias of k8s.pod.uid", deprecated=True),
    _r("k8s.pod.sandbox_id", S, "short id of the pod sandbox"),
    _r("k8s.pod.full_sandbox_id", S, "full id of the pod sandbox"),
    _r("k8s.pod.label", S, "one pod label: k8s.pod.label[app]", KEY),
    _r("k8s.pod.labels", S, "all pod labels as key:value entries"),
    _r("k8s.pod.ip", S, "pod IP address"),
    _r("k8s.pod.cni.json", S, "CNI result of the pod as JSON"),
    _r("k8s.ns.name", S, "Kubernetes namespace of the pod"),
    # Falco's removed in-process Kubernetes client served these; deprecated aliases of
    # the k8smeta.* fields below, with the same values (the operator's collector).
    _r("k8s.ns.id", S, "namespace UID", deprecated=True),
    _r("k8s.ns.uid", S, "namespace UID", deprecated=True),
    _r("k8s.ns.label", S, "one namespace label", KEY, deprecated=True),
    _r("k8s.ns.labels", S, "all namespace labels", deprecated=True),
    _r("k8s.rc.name", S, "replication controller name", deprecated=True),
    _r("k8s.rc.id", S, "replication controller UID", deprecated=True),
    _r("k8s.rc.uid", S, "replication controller UID", deprecated=True),
    _r("k8s.rc.label", S, "one replication controller label", KEY, deprecated=True),
    _r("k8s.rc.labels", S, "all replication controller labels", deprecated=True),
    _r("k8s.svc.name", S, "service name", deprecated=True),
    _r("k8s.svc.id", S, "service UID", deprecated=True),
    _r("k8s.svc.uid", S, "service UID", deprecated=True),
    _r("k8s.svc.label", S, "one service label", KEY, deprecated=True),
    _r("k8s.svc.labels", S, "all service labels", deprecated=True),
    _r("k8s.rs.name", S, "replica set name", deprecated=True),
    _r("k8s.rs.id", S, "replica set UID", deprecated=True),
    _r("k8s.rs.uid", S, "replica set UID", deprecated=True),
    _r("k8s.rs.label", S, "one replica set label", KEY, deprecated=True),
    _r("k8s.rs.labels", S, "all replica set labels", deprecated=True),
    _r("k8s.deployment.name", S, "deployment name", deprecated=True),
    _r("k8s.deployment.id", S, "deployment UID", deprecated=True),
    _r("k8s.deployment.uid", S, "deployment UID", deprecated=True),
    _r("k8s.deployment.label", S, "one deployment label", KEY, deprecated=True),
    _r("k8s.deployment.labels", S, "all deployment labels", deprecated=True),
]

#: k8smeta plugin fields (cluster-wide metadata); the agent fills them from the
#: kubelet and the operator's collector, <NA> otherwise.
K8SMETA_FIELDS: list[_Row] = [
    row
    for kind, what in (("pod", "pod"), ("ns", "namespace"), ("deployment", "deployment"),
                       ("svc", "service"), ("rs", "replica set"), ("rc", "replication controller"))
    for row in (
        _r(f"k8smeta.{kind}.name", S, f"{what} name"),
        _r(f"k8smeta.{kind}.uid", S, f"{what} UID"),
        _r(f"k8smeta.{kind}.label", S, f"one {what} label", KEY),
        _r(f"k8smeta.{kind}.labels", S, f"all {what} labels as key:value entries", N, True),
    )
] + [_r("k8smeta.pod.ip", S, "pod IP address"),
     _r("k8smeta.pod.sandbox_id", S, "pod sandbox id")]

ALL_ROWS: list[_Row] = (EVT_FIELDS + PROC_FIELDS + THREAD_FIELDS + FD_FIELDS + FS_FIELDS
                        + USER_GROUP_FIELDS + CONTAINER_FIELDS + K8S_FIELDS + K8SMETA_FIELDS)


def syscall_fields() -> dict[str, FieldDef]:
    """All syscall-source field definitions keyed by name."""
    return {
        name: FieldDef(name=name, type=ftype, desc=desc, arg=arg, is_list=is_list,
                       deprecated=deprecated)
        for name, ftype, desc, arg, is_list, deprecated in ALL_ROWS
    }


SYSCALL_FIELDS: dict[str, FieldDef] = syscall_fields()
