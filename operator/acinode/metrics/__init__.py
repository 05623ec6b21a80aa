"""The operator's own Prometheus metrics: ``collector`` (a prometheus-client custom collector: what is measured,
read at scrape time through ``acinode.pods.protocols``), ``durations`` (the histograms kept between scrapes) and
``server`` (plain HTTP ``GET /metrics`` on its own port, in the text format 0.0.4).

See docs/monitoring.md for every metric and sample alerts.
"""
