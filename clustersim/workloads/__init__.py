"""Workload demand: real allocation profiles turned into span flows, their modulation over time, tenant
kinds, and which spans are hot. Imports nothing from the kernel, allocator or fleet layers."""

from clustersim.workloads.access import AccessPattern
from clustersim.workloads.demand import HeapDemand, SpanEvents
from clustersim.workloads.modulation import Diurnal, Modulation, Restarts, Spikes, Startup
from clustersim.workloads.profiles import Profile, Trace, list_profiles, list_traces, load_profile, load_trace
from clustersim.workloads.tenants import (
    BatchTenant,
    FileCacheTenant,
    make_tenant,
    tlb_factor,
)

__all__ = [
    "AccessPattern", "BatchTenant", "Diurnal", "FileCacheTenant", "HeapDemand", "Modulation",
    "Profile", "Restarts", "SpanEvents", "Spikes", "Startup", "Trace",
    "list_profiles", "list_traces", "load_profile", "load_trace", "make_tenant", "tlb_factor",
]
