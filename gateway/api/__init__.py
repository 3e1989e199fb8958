"""HTTP APIs: Prometheus query API (read-back part), health, the gateway's own metrics."""
