"""Kopf handlers: thin translations of events into calls on the node and pod services.

Importing this package registers the handlers with Kopf's default registry.
"""

from acinode.handlers import nodes, virtualnodes

__all__ = ["nodes", "virtualnodes"]
