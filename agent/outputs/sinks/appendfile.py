"""Open a file for appending alerts without letting another user steer the writes.

An agent running as root that follows a symbolic link, or appends to a file
someone else created, writes alert text (partly chosen by whoever triggered the
alert) into a file of the attacker's choosing. So: the last component is never
followed (``O_NOFOLLOW``), the file must be a regular file (or a character
device) owned by this process's user, and its directory must not be writable by
everyone unless the sticky bit stops others from replacing the file. The file is opened relative to
a descriptor of the checked directory, so the check and the open see the same
directory.
"""

from __future__ import annotations

import errno
import os
import stat


class UnsafeFileError(OSError):
    """The path is one falcopy refuses to write alerts to; the message says why."""


def open_append(path: str, mode: int = 0o640) -> int:
    """A descriptor open for appending to ``path`` (created if missing), or an OSError naming the problem."""
    directory, name = os.path.split(os.path.abspath(path))
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = os.fstat(dir_fd)
        if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
            raise UnsafeFileError(
                f"{path}: directory {directory} is writable by every user and has no sticky bit, "
                "so anyone could replace the file; use a directory only falcopy's user can write to")
        try:
            fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
                         | os.O_NONBLOCK, mode, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
                raise UnsafeFileError(f"{path} is a symbolic link: falcopy does not follow it") from None
            raise
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        # character devices (/dev/null, a console) cannot be made by an unprivileged user
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            raise UnsafeFileError(f"{path} is neither a regular file nor a character device")
        if st.st_uid != os.geteuid():
            raise UnsafeFileError(
                f"{path} is owned by uid {st.st_uid}, not by falcopy's user (uid {os.geteuid()}): "
                "refusing to append to a file another user created")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
