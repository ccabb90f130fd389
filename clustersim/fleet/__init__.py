"""The fleet: a mesa model of nodes and tenants' processes, their latency and their metrics."""

from .model import Fleet
from .simulate import simulate

__all__ = ["Fleet", "simulate"]
