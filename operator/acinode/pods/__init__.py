"""Pods on virtual nodes: watching them, running them as ACI container groups, and syncing their status."""
