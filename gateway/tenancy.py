"""Who is asking: the tenant of a request, from credentials or X-Scope-OrgID.

Without configured credentials, `X-Scope-OrgID` selects the tenant and a request without it
belongs to the default tenant (`anonymous`), so a stock Prometheus config works. With
credentials configured, a bearer token or a basic-auth user maps to its tenant, a request
without valid credentials is refused (401), and an `X-Scope-OrgID` naming another tenant is
refused (403). Secrets are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping

from gateway.config import AuthConfig
from gateway.errors import Errors, GatewayError

TENANT_HEADER = "X-Scope-OrgID"
MAX_TENANT_LENGTH = 150
# Mimir's safe set: letters, digits and !-_.*'()
_TENANT_CHARS = re.compile(r"[A-Za-z0-9!\-_.*'()]+")


def tenant_problem(tenant: str) -> str | None:
    """Why `tenant` is not a valid tenant ID, or None when it is."""
    if not tenant:
        return "empty"
    if len(tenant) > MAX_TENANT_LENGTH:
        return f"longer than {MAX_TENANT_LENGTH} characters"
    if tenant in (".", ".."):
        return "'.' and '..' are not allowed"
    if not _TENANT_CHARS.fullmatch(tenant):
        return "only letters, digits and !-_.*'() are allowed"
    return None


def _fingerprint(secret: str) -> bytes:
    # Header bytes that are not UTF-8 arrive as surrogate escapes: hash them as the bytes sent.
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


class TenantResolver:
    """Maps a request's headers to its tenant."""

    def __init__(self, auth: AuthConfig, admin_token: str = "") -> None:
        self._default = auth.default_tenant
        # The admin token is refused as a tenant credential, with or without tenant auth.
        self._admin = _fingerprint(admin_token) if admin_token else None
        self._tokens: dict[bytes, str] = {}
        self._users: dict[bytes, tuple[bytes, str]] = {}
        for cred in auth.tenants:
            if cred.bearer_token:
                self._tokens[_fingerprint(cred.bearer_token)] = cred.tenant
            else:
                self._users[_fingerprint(cred.username)] = (
                    _fingerprint(cred.password),
                    cred.tenant,
                )

    @property
    def auth_enabled(self) -> bool:
        return bool(self._tokens or self._users)

    def resolve(self, headers: Mapping[str, str]) -> str:
        """The tenant of a request with these headers; raises GatewayError when refused."""
        if self._admin is not None:
            scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                _fingerprint(token.strip()), self._admin
            ):
                raise GatewayError(
                    Errors.UNAUTHENTICATED, detail="the admin token is not a tenant credential"
                )
        header = headers.get(TENANT_HEADER)
        if header is not None:
            header = header.strip()
            problem = tenant_problem(header)
            if problem is not None:
                raise GatewayError(Errors.TENANT_INVALID, tenant=header[:200], why=problem)
        if not self.auth_enabled:
            return header if header is not None else self._default
        tenant = self._from_credentials(headers.get("Authorization", ""))
        if header is not None and header != tenant:
            raise GatewayError(Errors.TENANT_MISMATCH, header=header)
        return tenant

    def _from_credentials(self, authorization: str) -> str:
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and credentials:
            tenant = self._tokens.get(_fingerprint(credentials))
            if tenant is not None:
                return tenant
            raise GatewayError(Errors.UNAUTHENTICATED, detail="unknown bearer token")
        if scheme.lower() == "basic" and credentials:
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise GatewayError(
                    Errors.UNAUTHENTICATED, detail="malformed basic credentials"
                ) from None
            user, _, password = decoded.partition(":")
            entry = self._users.get(_fingerprint(user))
            if entry is not None and hmac.compare_digest(entry[0], _fingerprint(password)):
                return entry[1]
            raise GatewayError(Errors.UNAUTHENTICATED, detail="wrong username or password")
        raise GatewayError(
            Errors.UNAUTHENTICATED, detail="send a bearer token or basic-auth credentials"
        )
