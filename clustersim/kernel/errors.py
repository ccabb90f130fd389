"""KernelError: a failed system call, carrying the Linux errno name and the reason."""

from __future__ import annotations

from ..units import UnitError, parse_duration, parse_size


class KernelError(Exception):
    """A system call failed. ``errno`` is the Linux name (``EINVAL``, ``ENOMEM``, ``EAGAIN``...)."""

    def __init__(self, errno: str, message: str) -> None:
        super().__init__(f"{errno}: {message}")
        self.errno = errno
        self.message = message


def size_arg(key: str, value: object) -> int:
    """Bytes from a syscall or tunable argument; a bad one is EINVAL naming the key and the forms."""
    if hasattr(value, "item") and not isinstance(value, str):   # numpy scalars from vectorised callers
        value = value.item()
    try:
        return parse_size(value, key)
    except UnitError as err:
        raise KernelError("EINVAL", str(err)) from None


def duration_arg(key: str, value: object) -> float:
    """Seconds from a tunable or advance() argument; a bad one is EINVAL naming the key and the forms."""
    try:
        return parse_duration(value, key)
    except UnitError as err:
        raise KernelError("EINVAL", str(err)) from None
