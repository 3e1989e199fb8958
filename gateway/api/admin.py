"""Admin API: tenants' usage and limits (`/api/v1/admin/...`), behind the admin bearer token.

Without a configured token the admin API is off and answers 404, as if it did not exist. The
token is compared in constant time (on SHA-256 digests); tenant credentials never pass it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.api import envelope
from gateway.app_keys import ADMIN_TOKEN, CONFIG, LAYOUT, LIMITS, STORE
from gateway.errors import Errors, GatewayError
from gateway.limits import override_store
from gateway.limits.model import LIMIT_NAMES, BadLimits, overrides_json, parse_overrides
from gateway.limits.service import LimitsService
from gateway.remote.read_handler import read_limited_body
from gateway.tenancy import tenant_problem

ACTOR_HEADER = "X-Admin-User"
_MAX_ACTOR = 200
_DEFAULT_AUDIT_LIMIT = 100


def token_fingerprint(token: str) -> bytes:
    """What the app keeps of the admin token (empty when the admin API is off)."""
    # Header bytes that are not UTF-8 arrive as surrogate escapes: hash them as the bytes sent.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest() if token else b""


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/v1/admin/tenants", tenants)
    path = "/api/v1/admin/tenants/{tenant}/limits"
    router.add_get(path, get_limits)
    router.add_put(path, put_limits)
    router.add_patch(path, patch_limits)
    router.add_delete(path, delete_limits)
    router.add_get("/api/v1/admin/audit", audit)


def require_admin(request: web.Request) -> None:
    """Raise unless the request carries the admin token (404 when the admin API is off)."""
    expected = request.app[ADMIN_TOKEN]
    if not expected:
        raise GatewayError(Errors.ADMIN_DISABLED)
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GatewayError(Errors.ADMIN_UNAUTHORIZED, detail="send the admin bearer token")
    if not hmac.compare_digest(token_fingerprint(token.strip()), expected):
        raise GatewayError(Errors.ADMIN_UNAUTHORIZED, detail="wrong admin token")


async def tenants(request: web.Request) -> web.Response:
    """Every tenant: active series, budget, utilisation, samples/s, discards by reason."""
    require_admin(request)
    service = request.app[LIMITS]
    names = (
        set(service.tracker.tenants())
        | service.registry.tenants_with_overrides()
        | set(service.stats)
    )
    return envelope.success({"tenants": [_usage(service, name) for name in sorted(names)]})


def _usage(service: LimitsService, tenant: str) -> dict[str, Any]:
    active = service.tracker.count(tenant)
    limit = service.limits_for(tenant).max_global_series_per_user
    stats = service.stats.get(tenant)
    return {
        "tenant": tenant,
        "active_series": active,
        "series_limit": limit,
        "utilisation_percent": round(100 * active / limit, 2) if limit else None,
        "samples_per_second": round(stats.samples_per_second(), 2) if stats else 0.0,
        "stored_samples": stats.stored if stats else 0,
        "discarded_samples": dict(sorted(stats.discarded.items())) if stats else {},
        "has_overrides": tenant in service.registry.tenants_with_overrides(),
    }


def _tenant(request: web.Request) -> str:
    tenant = request.match_info["tenant"]
    problem = tenant_problem(tenant)
    if problem is not None:
        raise GatewayError(Errors.TENANT_INVALID, tenant=tenant[:200], why=problem)
    return tenant


def _limits_view(service: LimitsService, tenant: str) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "limits": service.limits_for(tenant).to_json(),
        "overrides": overrides_json(service.registry.admin_overrides(tenant)),
        "file_overrides": overrides_json(service.registry.file_overrides(tenant)),
    }


async def get_limits(request: web.Request) -> web.Response:
    """The tenant's effective limits and where they come from."""
    require_admin(request)
    return envelope.success(_limits_view(request.app[LIMITS], _tenant(request)))


async def _body(request: web.Request) -> Any:
    """The JSON body, refused (413) past `admin.max_body_bytes` before it is buffered."""
    limit = request.app[CONFIG].admin.max_body_bytes
    data = await read_limited_body(request, limit, "admin.max_body_bytes")
    try:
        return json.loads(data or b"null")
    except ValueError as exc:
        raise GatewayError(Errors.BAD_LIMITS, detail=f"the body is not JSON: {exc}") from None


def _parse(data: Any) -> dict[str, Any]:
    try:
        return parse_overrides(data)
    except BadLimits as exc:
        raise GatewayError(Errors.BAD_LIMITS, detail=str(exc)) from None


async def put_limits(request: web.Request) -> web.Response:
    """Replace the tenant's admin overrides with the body's limits."""
    require_admin(request)
    tenant = _tenant(request)
    overrides = _parse(await _body(request))
    return await _change(request, tenant, "put", lambda _: overrides)


async def patch_limits(request: web.Request) -> web.Response:
    """Change the named limits; a null value removes that override.

    The change is merged into the tenant's overrides as stored (not as this replica last
    reloaded them), so a change made through another replica just before is kept.
    """
    require_admin(request)
    tenant = _tenant(request)
    data = await _body(request)
    if not isinstance(data, dict):
        raise GatewayError(Errors.BAD_LIMITS, detail="expected a JSON object keyed by limit name")
    removed = {key for key, value in data.items() if value is None}
    for key in removed:
        if key not in LIMIT_NAMES:
            raise GatewayError(Errors.BAD_LIMITS, detail=f"{key}: unknown limit")
    changes = _parse({key: value for key, value in data.items() if value is not None})

    def merge(stored: dict[str, Any]) -> dict[str, Any]:
        merged = {key: value for key, value in stored.items() if key not in removed}
        merged.update(changes)
        return merged

    return await _change(request, tenant, "patch", merge)


async def delete_limits(request: web.Request) -> web.Response:
    """Remove the tenant's admin overrides (the file's and the defaults apply again)."""
    require_admin(request)
    return await _change(request, _tenant(request), "delete", lambda _: {})


async def _change(
    request: web.Request,
    tenant: str,
    action: str,
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> web.Response:
    """Read-modify-write the tenant's stored overrides, then apply them on this replica."""
    service = request.app[LIMITS]
    actor = request.headers.get(ACTOR_HEADER, "").strip()[:_MAX_ACTOR] or "admin"
    if not _is_text(actor):
        raise GatewayError(Errors.BAD_LIMITS, detail=f"the {ACTOR_HEADER} header is not UTF-8 text")
    template = override_store.AuditEntry(
        at_ms=0, tenant=tenant, actor=actor, remote=request.remote or "", action=action,
        old={}, new={},
    )
    layout = request.app[LAYOUT]
    newer_than = service.admin_version(tenant) + 1
    entry = await request.app[STORE].run(
        lambda client: override_store.change_override(
            client, layout, template, change, newer_than
        )
    )
    service.set_admin_overrides(tenant, parse_overrides(entry.new), entry.at_ms)
    return envelope.success(_limits_view(service, tenant))


def _is_text(value: str) -> bool:
    """Whether a header value is valid UTF-8 (other bytes arrive as surrogate escapes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


async def audit(request: web.Request) -> web.Response:
    """Limit changes, newest first (`tenant` and `limit` parameters)."""
    require_admin(request)
    tenant = request.query.get("tenant") or None
    limit = envelope.parse_limit(request.query.get("limit")) or _DEFAULT_AUDIT_LIMIT
    layout = request.app[LAYOUT]
    entries = await request.app[STORE].run(
        lambda client: override_store.read_audit(client, layout, tenant, limit)
    )
    return envelope.success([entry.to_json() for entry in entries])
