"""Data Bank: the client (httpx; downloads on `http.client`, see `databank.rawget`), the local
server of the same protocol, the corpus fetcher.

Imports nothing else of trainledger. The protocol, including the deployed service's quirks
that the client tolerates, is described in `DATABANK_PROTOCOL.md`.
"""

from databank.client import DataBankClient, Timeouts, UploadSource
from databank.errors import (
    AuthError,
    BadRequest,
    DataBankError,
    Forbidden,
    InsufficientStorage,
    IntegrityError,
    InvalidAnswer,
    InvalidFileId,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    RangeNotSatisfiable,
    TransientError,
    Unauthorized,
    UnexpectedStatus,
)
from databank.fetcher import CorpusFetcher, FileDownloader
from databank.ids import EMPTY_FILE_ID, FileId, is_file_id, validate_file_id
from databank.models import ErrorBody, FileHead, FileInfo
from databank.retry import RetryPolicy
from databank.server import create_app
from databank.settings import DataBankServerSettings

__all__ = [
    "EMPTY_FILE_ID",
    "AuthError",
    "BadRequest",
    "CorpusFetcher",
    "DataBankClient",
    "DataBankError",
    "DataBankServerSettings",
    "ErrorBody",
    "FileDownloader",
    "FileHead",
    "FileId",
    "FileInfo",
    "Forbidden",
    "InsufficientStorage",
    "IntegrityError",
    "InvalidAnswer",
    "InvalidFileId",
    "NotFound",
    "PayloadTooLarge",
    "ProtocolError",
    "RangeNotSatisfiable",
    "RetryPolicy",
    "Timeouts",
    "TransientError",
    "Unauthorized",
    "UnexpectedStatus",
    "UploadSource",
    "create_app",
    "is_file_id",
    "validate_file_id",
]
