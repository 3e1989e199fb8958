"""metrics-gateway: a Prometheus-compatible, multi-tenant metrics gateway on ClickHouse."""

__version__ = "0.1.0"
