"""Prometheus remote protocols: pure codecs and the HTTP handlers that use them."""
