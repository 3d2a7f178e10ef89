"""What every trainledger HTTP service shares: the JSON error shape, request ids, logging,
the API key check."""

from httpservice.auth import AUTH_ERRORS, ApiKey, api_key_required
from httpservice.body import ErrorBody, FieldError
from httpservice.errors import (
    ServiceError,
    error_response,
    install_error_handlers,
    install_unavailable,
)
from httpservice.logs import JsonFormatter, configure_logging, mask_also
from httpservice.requestid import RequestIdMiddleware, request_id

__all__ = [
    "AUTH_ERRORS",
    "ApiKey",
    "ErrorBody",
    "FieldError",
    "JsonFormatter",
    "RequestIdMiddleware",
    "ServiceError",
    "api_key_required",
    "configure_logging",
    "error_response",
    "install_error_handlers",
    "install_unavailable",
    "mask_also",
    "request_id",
]
