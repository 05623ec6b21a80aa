"""Times as Kubernetes writes them: RFC 3339 in UTC with a ``Z``, at second precision (``2026-01-01T12:00:00Z``).

The one place that formats and parses them; pure (the caller passes the moment, nothing here reads a clock).
"""

from __future__ import annotations

import datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def rfc3339(moment: datetime.datetime) -> str:
    """``moment`` as Kubernetes writes times; a naive moment is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime(FORMAT)


def parse_rfc3339(text: str | None) -> datetime.datetime | None:
    """An aware datetime from an RFC 3339 time (``Z`` or an offset, fractions allowed); None if absent or
    malformed."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)
