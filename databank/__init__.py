"""Data Bank: the client of its protocol, and (in `databank.server`) a local server of it.

This surface is the client's: `DataBankClient` (httpx; downloads on `http.client`), its typed
errors, and the fetchers that keep corpora and extracted artifacts in a local cache by file id.
`databank/client/` holds what only the client uses, `databank/server/` the local server (import
`create_app` from `databank.server`); file ids, wire models and byte ranges, which both use, sit
at the top. The protocol, including the deployed service's quirks that the client tolerates, is
described in `docs/databank-protocol.md`. Imports nothing else of trainledger but, in the server,
`httpservice`.
"""

from databank.client.artifacts import ArtifactFetcher, CacheStats
from databank.client.client import DataBankClient, Timeouts
from databank.client.corpus import CorpusFetcher
from databank.client.download import FileDownloader
from databank.client.errors import (
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
    validate_file_id,
)
from databank.client.extract import ExtractLimits, UnsafeArtifactError
from databank.client.retry import RetryPolicy
from databank.client.upload import UploadSource
from databank.ids import EMPTY_FILE_ID, FileId, is_file_id
from databank.models import ErrorBody, FileHead, FileInfo

__all__ = [
    "EMPTY_FILE_ID",
    "ArtifactFetcher",
    "AuthError",
    "BadRequest",
    "CacheStats",
    "CorpusFetcher",
    "DataBankClient",
    "DataBankError",
    "ErrorBody",
    "ExtractLimits",
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
    "UnsafeArtifactError",
    "UploadSource",
    "is_file_id",
    "validate_file_id",
]
