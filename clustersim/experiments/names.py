"""Names that become cgroup path components or file names: one safe character set, checked before use.

A tenant's replicas run in memcg leaves ``<cgroup>/<name>-<i>`` and node group and tenant names label
result rows and folders, so a name must be usable as one path component on any file system and in cgroupfs
(Documentation/admin-guide/cgroup-v2.rst: a cgroup is a directory; its name is one path component). The
model accepts only ``[A-Za-z0-9._-]``, never ``.`` or ``..`` and never empty; a cgroup path is such
components joined by ``/``, with no leading, trailing or doubled ``/``. NUL, spaces and every other byte
are refused, so no name can climb out of its folder or collide with a control file.
"""

from __future__ import annotations

import re

from pydantic_core import PydanticCustomError

_COMPONENT = re.compile(r"[A-Za-z0-9._-]+")
NAME_ALLOWED = "a name of [A-Za-z0-9._-] only, not '.' or '..'"
CGROUP_ALLOWED = ("a cgroup path like 'workload.slice/web': components of [A-Za-z0-9._-] joined by '/', "
                  "none empty, '.' or '..'")


def safe_component(text: str) -> bool:
    """True when ``text`` is one safe path component."""
    return bool(_COMPONENT.fullmatch(text)) and text not in (".", "..")


def safe_cgroup_path(text: str) -> bool:
    """True when ``text`` is safe components joined by single ``/``."""
    return all(safe_component(part) for part in text.split("/"))


def check_name(value: str) -> str:
    """A pydantic validator: ``value`` unchanged if it is a safe name."""
    if not safe_component(value):
        raise PydanticCustomError("name", NAME_ALLOWED)
    return value


def check_cgroup_path(value: str) -> str:
    """A pydantic validator: ``value`` unchanged if it is a safe cgroup path."""
    if not safe_cgroup_path(value):
        raise PydanticCustomError("name", CGROUP_ALLOWED)
    return value
