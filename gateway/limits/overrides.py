"""Effective limits per tenant: config defaults < overrides file < admin API overrides (per key).

The admin API's overrides (persisted in ClickHouse) win over the YAML overrides file, which wins
over the configured defaults; each source only sets the keys it names. A DELETE through the admin
API removes the admin overrides, so the file's and the defaults' values apply again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gateway.limits.model import BadLimits, Limits, apply, parse_overrides

Overrides = dict[str, dict[str, Any]]


def load_overrides_file(path: str | Path) -> Overrides:
    """Parse a YAML file `overrides: {tenant: {limit: value}}`; raises BadLimits."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise BadLimits(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise BadLimits(f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) - {"overrides"}:
        raise BadLimits(f"{path}: expected a mapping with the single key `overrides`")
    tenants = data.get("overrides") or {}
    if not isinstance(tenants, dict):
        raise BadLimits(f"{path}: overrides must map tenant IDs to limits")
    result: Overrides = {}
    for tenant, limits in tenants.items():
        try:
            result[str(tenant)] = parse_overrides(limits or {})
        except BadLimits as exc:
            raise BadLimits(f"{path}: overrides.{tenant}.{exc}") from None
    return result


class TenantLimits:
    """Resolves a tenant's effective Limits from the three sources, cached per tenant."""

    def __init__(self, defaults: Limits) -> None:
        self.defaults = defaults
        self._file: Overrides = {}
        self._admin: Overrides = {}
        self._cache: dict[str, Limits] = {}

    def for_tenant(self, tenant: str) -> Limits:
        limits = self._cache.get(tenant)
        if limits is None:
            limits = apply(
                self.defaults, self._file.get(tenant, {}), self._admin.get(tenant, {})
            )
            self._cache[tenant] = limits
        return limits

    def admin_overrides(self, tenant: str) -> dict[str, Any]:
        return dict(self._admin.get(tenant, {}))

    def file_overrides(self, tenant: str) -> dict[str, Any]:
        return dict(self._file.get(tenant, {}))

    def tenants_with_overrides(self) -> set[str]:
        return set(self._file) | set(self._admin)

    def set_file(self, overrides: Overrides) -> set[str]:
        """Replace the file's overrides; returns the tenants whose limits changed."""
        return self._replace(overrides, self._admin)

    def set_admin(self, overrides: Overrides) -> set[str]:
        """Replace the admin API's overrides; returns the tenants whose limits changed."""
        return self._replace(self._file, overrides)

    def set_admin_tenant(self, tenant: str, overrides: Mapping[str, Any] | None) -> None:
        admin = dict(self._admin)
        if overrides:
            admin[tenant] = dict(overrides)
        else:
            admin.pop(tenant, None)
        self._replace(self._file, admin)

    def _replace(self, file: Overrides, admin: Overrides) -> set[str]:
        affected = self.tenants_with_overrides() | set(file) | set(admin)
        before = {tenant: self.for_tenant(tenant) for tenant in affected}
        self._file, self._admin, self._cache = file, admin, {}
        return {tenant for tenant, old in before.items() if self.for_tenant(tenant) != old}
