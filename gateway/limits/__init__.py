"""Per-tenant limits: the Limits model, overrides, the active-series tracker, rate limiting."""
