"""Thin async adapters to the Kubernetes API: the only code that speaks HTTP to the API server."""
