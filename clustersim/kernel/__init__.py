"""clustersim's model of one Linux node's memory management, behind a syscall-level API.

    from clustersim.kernel import Node, MADV, KernelError

See docs/kernel.md for the model, its simplifications and its sources.
"""

from .errors import KernelError
from .mman import MADV
from .node import Cgroup, Node
from .profiles import PROPOSALS, profile_names
from .task import Process
from .vma import RangeBatch, Region

__all__ = ["MADV", "PROPOSALS", "Cgroup", "KernelError", "Node", "Process", "RangeBatch", "Region", "profile_names"]
