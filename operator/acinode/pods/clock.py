"""The pod controller's clock: acinode's one ``Clock`` (``acinode.clock``), named here for the pods package."""

from __future__ import annotations

from acinode.clock import SYSTEM, Clock, SystemClock

__all__ = ["SYSTEM", "Clock", "SystemClock"]
