"""The Data Bank client: typed answers, typed errors, streaming upload, resumable download.

Built to work against the deployed service as it behaves (see `docs/databank-protocol.md`): ids are
checked before sending, error bodies that are not JSON are reported rather than parsed (a
body-less one, HEAD's, by its status's reason), ETags are accepted with or without quotes,
`created_at` may be null, resumes never use suffix ranges, and a zero-byte file is
never fetched with GET.

Downloads read their body with `http.client` into reused buffers (`databank.client.download`
says why); every other call, and the building of every request, is httpx. Both share one TLS
context and connect directly: no proxy from the environment.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from databank.client.download import ERROR_BODY_LIMIT, DownloadSink, RawGetter, RawResponse
from databank.client.errors import (
    BadRequest,
    DataBankError,
    Forbidden,
    InsufficientStorage,
    IntegrityError,
    InvalidAnswer,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    RangeNotSatisfiable,
    Unauthorized,
    UnexpectedStatus,
    validate_file_id,
)
from databank.client.retry import RetryableError, RetryPolicy, call_with_retries
from databank.client.upload import Digest, MultipartFile, UploadSource, opened
from databank.ids import EMPTY_FILE_ID
from databank.models import ErrorBody, FileHead, FileInfo
from databank.ranges import parse_content_range, resume_from

_log = logging.getLogger("databank.client")

M = TypeVar("M", bound=BaseModel)

_STATUS_ERRORS: dict[int, type[DataBankError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
    416: RangeNotSatisfiable,
    422: BadRequest,
    507: InsufficientStorage,
}


class Timeouts(BaseModel):
    """Seconds to wait; uploads wait longer: the service hashes and fsyncs before answering."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect: float = Field(default=5.0, gt=0)
    read: float = Field(default=30.0, gt=0, description="per read or write, outside uploads")
    upload: float = Field(default=300.0, gt=0, description="per read or write during an upload")


@contextmanager
def _transport_errors(what: str) -> Iterator[None]:
    """Connection errors and timeouts are `RetryableError`; other httpx errors `ProtocolError`."""
    try:
        yield
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise RetryableError(f"{what}: {type(exc).__name__}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise ProtocolError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()[:3]
    )


def _unquote_etag(value: str | None) -> str | None:
    if value is None:
        return None
    return value.removeprefix("W/").strip('"')


def _new_request_id() -> str:
    return uuid.uuid4().hex


class DataBankClient:
    """A synchronous Data Bank client; safe to share between threads. Close it (or use `with`)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | SecretStr,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        chunk_size: int = 1 << 20,
    ) -> None:
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self._timeouts = timeouts or Timeouts()
        self._retry = retry or RetryPolicy()
        self._chunk_size = chunk_size
        self._base_url = base_url
        tls = httpx.create_ssl_context()
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(self._timeouts.read, connect=self._timeouts.connect),
            verify=tls,
            trust_env=False,
        )
        self._getter = RawGetter(
            connect_timeout=self._timeouts.connect, read_timeout=self._timeouts.read, tls=tls
        )

    def __repr__(self) -> str:
        return f"DataBankClient(base_url={self._base_url!r})"

    def __enter__(self) -> DataBankClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- public calls -------------------------------------------------------------------------

    def upload(
        self,
        source: UploadSource,
        *,
        filename: str = "file",
        content_type: str = "application/octet-stream",
    ) -> FileInfo:
        """Stream `source` to `POST /files`; the answer's `file_id` must be the sha256 sent.

        Raises `IntegrityError` when it is not: the service stored something else.
        """
        envelope = MultipartFile(filename=filename, content_type=content_type)
        request_id = _new_request_id()
        return call_with_retries(
            self._retry,
            lambda: self._upload_once(source, envelope, request_id),
            what="upload",
        )

    def download_to(self, file_id: str, path: Path) -> Path:
        """Download a file to `path`, which appears only once its sha256 equals `file_id`.

        Streams into a temporary file beside `path`; after a dropped connection it resumes
        with `Range: bytes=<offset>-`, and restarts from zero when the answer does not fit.
        The file is not fsynced (a caller that records it as verified, like `CorpusFetcher`,
        does that): content addressing lets a reader re-check it at any time.
        """
        validate_file_id(file_id)
        request_id = _new_request_id()
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        partial = Path(name)
        try:
            with os.fdopen(handle, "w+b") as out:
                if file_id == EMPTY_FILE_ID:
                    # The deployed service answers GET of an empty file with a 500; the id
                    # already says what the bytes are, so only existence needs asking.
                    self.head(file_id)
                else:
                    with DownloadSink(out) as sink:
                        self._download(file_id, sink, request_id)
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return path

    def head(self, file_id: str) -> FileHead:
        """The size, content type and ETag of a file, without its bytes."""
        validate_file_id(file_id)
        request_id = _new_request_id()
        return call_with_retries(
            self._retry,
            lambda: self._head_once(file_id, request_id),
            what=f"HEAD {file_id}",
        )

    def info(self, file_id: str) -> FileInfo:
        """The metadata recorded when the file was uploaded."""
        validate_file_id(file_id)
        request_id = _new_request_id()
        url = f"/files/{file_id}/info"

        def once() -> FileInfo:
            response = self._request("GET", url, request_id, ok=(200,))
            return self._answer(response, FileInfo, request_id)

        return call_with_retries(self._retry, once, what=f"info {file_id}")

    def delete(self, file_id: str) -> None:
        """Delete a file. A retry that finds it gone succeeds: the earlier try deleted it."""
        validate_file_id(file_id)
        request_id = _new_request_id()
        url = f"/files/{file_id}"
        attempts = 0

        def once() -> None:
            nonlocal attempts
            attempts += 1
            try:
                self._request("DELETE", url, request_id, ok=(200, 204))
            except NotFound:
                if attempts == 1:
                    raise

        call_with_retries(self._retry, once, what=f"delete {file_id}")

    # -- one attempt each ---------------------------------------------------------------------

    def _upload_once(
        self, source: UploadSource, envelope: MultipartFile, request_id: str
    ) -> FileInfo:
        digest = Digest()
        timeout = httpx.Timeout(self._timeouts.upload, connect=self._timeouts.connect)
        with opened(source, self._chunk_size) as (chunks, size):
            headers = self._headers(request_id) | {"Content-Type": envelope.content_type}
            if size is not None:
                headers["Content-Length"] = str(envelope.length(size))
            body = envelope.encode(digest.feed(chunks))
            with _transport_errors("POST /files"):
                response = self._http.post("/files", content=body, headers=headers, timeout=timeout)
        self._check(response, request_id, ok=(200, 201))
        info = self._answer(response, FileInfo, request_id)
        if info.file_id != digest.hexdigest() or info.size != digest.size:
            raise IntegrityError(
                f"upload answered file_id={info.file_id} size={info.size}, but the bytes sent "
                f"hash to {digest.hexdigest()} ({digest.size} bytes)",
                status=response.status_code,
                request_id=request_id,
            )
        return info

    def _head_once(self, file_id: str, request_id: str) -> FileHead:
        response = self._request("HEAD", f"/files/{file_id}", request_id, ok=(200,))
        length = response.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit()):
            raise InvalidAnswer(
                f"HEAD {file_id}: no usable Content-Length ({length!r})",
                status=response.status_code,
                request_id=request_id,
            )
        return FileHead(
            file_id=file_id,
            size=int(length),
            content_type=response.headers.get("Content-Type", "application/octet-stream"),
            etag=_unquote_etag(response.headers.get("ETag")),
        )

    def _download(self, file_id: str, sink: DownloadSink, request_id: str) -> None:
        call_with_retries(
            self._retry,
            lambda: self._fetch_into(file_id, sink, request_id),
            what=f"download {file_id}",
        )
        if sink.hexdigest() != file_id:
            raise IntegrityError(
                f"downloaded bytes hash to {sink.hexdigest()}, not {file_id}",
                request_id=request_id,
            )

    def _fetch_into(self, file_id: str, sink: DownloadSink, request_id: str) -> None:
        """One GET: from the start, or resuming at `sink.offset` when it holds bytes already."""
        headers = self._headers(request_id) | {"Accept-Encoding": "identity"}
        resuming = sink.offset > 0
        if resuming:
            headers["Range"] = resume_from(sink.offset)
        request = self._http.build_request("GET", f"/files/{file_id}", headers=headers)
        with self._getter.get(request) as response:
            if not (resuming and _refuses_resume(response.status_code, response.headers, sink)):
                self._receive(response, sink, request_id, resuming=resuming)
                return
        _log.warning(
            "GET %s: resume at %d refused; restarting from zero", request.url.path, sink.offset
        )
        sink.restart()
        self._fetch_into(file_id, sink, request_id)

    def _receive(
        self, response: RawResponse, sink: DownloadSink, request_id: str, *, resuming: bool
    ) -> None:
        """Check the answer, then take its body: a 200 replaces whatever `sink` held."""
        ok = (200, 206) if resuming else (200,)
        if response.status_code not in ok:
            self._check(response.error_response(), request_id, ok=ok)
        if response.status_code == 200:
            sink.restart()
            sink.size = response.length
        while sink.fill(response.readinto):
            pass

    # -- plumbing -----------------------------------------------------------------------------

    def _headers(self, request_id: str) -> dict[str, str]:
        return {"X-API-Key": self._key.get_secret_value(), "X-Request-ID": request_id}

    def _request(
        self, method: str, url: str, request_id: str, *, ok: tuple[int, ...]
    ) -> httpx.Response:
        with _transport_errors(f"{method} {url}"):
            response = self._http.request(method, url, headers=self._headers(request_id))
        self._check(response, request_id, ok=ok)
        return response

    def _check(self, response: httpx.Response, request_id: str, *, ok: tuple[int, ...]) -> None:
        """Raise the typed error (or `RetryableError`) an answer means, unless its status is ok."""
        status = response.status_code
        if status in ok:
            return
        what = f"{response.request.method} {response.request.url.path}"
        with _transport_errors(what):
            body = _read_capped(response)
        error = _parse_error(body)
        message = self._redact(error.message if error else _snippet(body, _reason(response)))
        code = error.code if error else None
        answered_id = (error.request_id if error else None) or response.headers.get("X-Request-ID")
        rid = answered_id or request_id
        if status in (408, 429) or (status >= 500 and status != 507):
            raise RetryableError(f"{what}: {message}", status=status, code=code, request_id=rid)
        kind = _STATUS_ERRORS.get(status, UnexpectedStatus)
        raise kind(f"{what}: {message}", status=status, code=code, request_id=rid)

    def _answer(self, response: httpx.Response, model: type[M], request_id: str) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise InvalidAnswer(
                f"{response.request.method} {response.request.url.path}: answer is not a "
                f"{model.__name__}: {_describe(exc)}",
                status=response.status_code,
                request_id=response.headers.get("X-Request-ID") or request_id,
            ) from None

    def _redact(self, text: str) -> str:
        key = self._key.get_secret_value()
        return text.replace(key, "[redacted]") if key else text


def _refuses_resume(status: int, headers: httpx.Headers, sink: DownloadSink) -> bool:
    """True for a 416, or a 206 that does not continue exactly where `sink` stopped."""
    if status == 416:
        return True
    if status != 206:
        return False
    span = parse_content_range(headers.get("Content-Range"))
    return not (
        span is not None
        and span.start == sink.offset
        and span.end == span.size - 1
        and (sink.size is None or span.size == sink.size)
    )


def _read_capped(response: httpx.Response) -> bytes:
    """At most 64 KiB of an error body: enough to report, never a whole file."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) >= ERROR_BODY_LIMIT:
            break
    return bytes(body[:ERROR_BODY_LIMIT])


def _parse_error(body: bytes) -> ErrorBody | None:
    try:
        return ErrorBody.model_validate_json(body)
    except ValidationError:
        return None


def _reason(response: httpx.Response) -> str:
    """What a body-less error (HEAD) can say: the status line's reason, or the status's standard
    phrase when the server sends an empty one (HTTP/1.1 allows it; some servers do)."""
    status = response.status_code
    return response.reason_phrase or httpx.codes.get_reason_phrase(status) or f"status {status}"


def _snippet(body: bytes, reason: str) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text[:300] if text else reason
