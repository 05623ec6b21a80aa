"""The operator's own Prometheus metrics: ``exposition`` (text format, histograms), ``collector`` (what is
measured, read from the services) and ``server`` (plain HTTP ``GET /metrics`` on its own port).

See docs/monitoring.md for every metric and sample alerts.
"""
