"""Chaos, bad input, HA and security tests of acinode on the real control plane (issue 10)."""
