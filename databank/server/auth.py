"""Scoped API keys: upload, read and delete; read and delete fall back to the upload keys."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

from fastapi import Header

from databank.server.settings import DataBankServerSettings
from httpservice import ServiceError


class Scope(StrEnum):
    """What a key may do."""

    UPLOAD = "upload"
    READ = "read"
    DELETE = "delete"


class KeyRing:
    """The keys of each scope, compared in constant time."""

    def __init__(self, settings: DataBankServerSettings) -> None:
        upload = settings.upload_keys
        configured = {
            Scope.UPLOAD: upload,
            Scope.READ: upload if settings.read_keys is None else settings.read_keys,
            Scope.DELETE: upload if settings.delete_keys is None else settings.delete_keys,
        }
        self._keys = {
            scope: tuple(key.get_secret_value().encode() for key in keys)
            for scope, keys in configured.items()
        }

    def authorize(self, key: str | None, scope: Scope) -> None:
        """Raise 401 without a key and 403 when the key lacks `scope`."""
        if not key:
            raise ServiceError(401, "UNAUTHORIZED", "missing X-API-Key")
        offered = key.encode()
        allowed = False
        for candidate in self._keys[scope]:
            allowed |= hmac.compare_digest(offered, candidate)
        if not allowed:
            raise ServiceError(403, "FORBIDDEN", f"the key lacks the {scope} scope")

    def requires(self, scope: Scope) -> Callable[[str | None], None]:
        """A FastAPI dependency that authorizes the request's `X-API-Key` for `scope`."""

        def dependency(x_api_key: Annotated[str | None, Header()] = None) -> None:
            self.authorize(x_api_key, scope)

        return dependency
