"""KernelError: a failed system call, carrying the Linux errno name and the reason."""

from __future__ import annotations


class KernelError(Exception):
    """A system call failed. ``errno`` is the Linux name (``EINVAL``, ``ENOMEM``, ``EAGAIN``...)."""

    def __init__(self, errno: str, message: str) -> None:
        super().__init__(f"{errno}: {message}")
        self.errno = errno
        self.message = message
