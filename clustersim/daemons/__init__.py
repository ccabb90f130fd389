"""Userspace daemons that act on a node through its cgroup files, as a service manager's helpers do.

They sit above the kernel (they use only its observation and control files) and below the fleet, which
schedules them: ``senpai`` sizes a cgroup from its memory pressure.
"""
