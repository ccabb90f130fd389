"""Figures drawn from stored results only, never by re-running a simulation."""
