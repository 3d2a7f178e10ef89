"""What every trainledger HTTP service shares: the JSON error shape, request ids, logging."""

from httpservice.body import ErrorBody, FieldError
from httpservice.errors import ServiceError, error_response, install_error_handlers
from httpservice.logs import JsonFormatter, configure_logging
from httpservice.requestid import RequestIdMiddleware, request_id

__all__ = [
    "ErrorBody",
    "FieldError",
    "JsonFormatter",
    "RequestIdMiddleware",
    "ServiceError",
    "configure_logging",
    "error_response",
    "install_error_handlers",
    "request_id",
]
