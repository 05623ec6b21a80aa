"""Keeping virtual nodes alive: Node registration, Lease renewal and status heartbeats, one set per node."""
