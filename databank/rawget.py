"""A GET whose body is read into the caller's buffers: the download path's transport.

httpx hands a body over as fresh `bytes` objects of at most 64 KiB, each copied twice on the
way through h11; for a download that must also be written and hashed, that cost about as
much CPU as the hashing itself (`bench/databank.py`: 1.2 to 1.3 CPU-seconds per 512 MiB with
it, 0.6 on a quiet machine without it). The standard library's `http.client` reads straight
into a buffer we own (`HTTPResponse.readinto`): one copy, from the kernel. So downloads use
it, and everything else (uploads, HEAD, info, delete) stays on httpx. httpx still builds the request (URL and
headers), error answers are handed back as `httpx.Response` for the client's one error
mapping, and both paths share one TLS context and one rule: no proxy.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from databank.errors import ProtocolError
from databank.retry import RetryableError

ERROR_BODY_LIMIT = 64 * 1024
"""The most of an error answer's body the client reads: enough to report, never a whole file."""
_TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


@contextmanager
def _transport_faults(what: str) -> Iterator[None]:
    """Socket and HTTP framing failures are `RetryableError`: the next attempt may succeed."""
    try:
        yield
    except _TRANSPORT_ERRORS as exc:
        raise RetryableError(f"{what}: {type(exc).__name__}: {exc}") from exc


class RawResponse:
    """The status and headers of an answer, and its body read on demand into given buffers."""

    def __init__(self, request: httpx.Request, answer: http.client.HTTPResponse) -> None:
        self.request = request
        self.status_code = answer.status
        self.headers = httpx.Headers(answer.getheaders())
        self._answer = answer
        self._what = f"GET {request.url.path}"
        length = self.headers.get("Content-Length", "")
        # None when the answer has no usable Content-Length (chunked, or read to the close).
        self.length = int(length) if length.isascii() and length.isdigit() else None
        self._remaining = self.length

    def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` with the next bytes; 0 at the end of the body.

        Raises `RetryableError` when the connection fails or ends before `Content-Length`
        (`http.client` reports a short body as a plain end).
        """
        with _transport_faults(self._what):
            count = self._answer.readinto(buffer)
        if self._remaining is not None:
            self._remaining -= count
            if count == 0 and self._remaining > 0:
                raise RetryableError(
                    f"{self._what}: connection closed {self._remaining} bytes early"
                )
        return count

    def error_response(self) -> httpx.Response:
        """The answer as an `httpx.Response` holding at most 64 KiB of its body, to report it."""
        buffer = memoryview(bytearray(ERROR_BODY_LIMIT))
        filled = 0
        with _transport_faults(self._what):
            while filled < ERROR_BODY_LIMIT and (count := self._answer.readinto(buffer[filled:])):
                filled += count
        headers = [(k, v) for k, v in self.headers.multi_items() if k != "content-length"]
        return httpx.Response(
            self.status_code, headers=headers, content=bytes(buffer[:filled]), request=self.request
        )


class RawGetter:
    """Opens GETs for `DataBankClient.download_to`, with its timeouts and TLS context."""

    def __init__(self, *, connect_timeout: float, read_timeout: float, tls: ssl.SSLContext) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._tls = tls

    @contextmanager
    def get(self, request: httpx.Request) -> Iterator[RawResponse]:
        """Send `request` (a GET built by httpx) on a new connection, closed on exit."""
        connection = self._connection(request.url)
        try:
            with _transport_faults(f"GET {request.url.path}"):
                connection.connect()
                connection.sock.settimeout(self._read_timeout)
                target = request.url.raw_path.decode("ascii")
                connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
                for name, value in request.headers.multi_items():
                    connection.putheader(name, value)
                connection.endheaders()
                answer = connection.getresponse()
            yield RawResponse(request, answer)
        finally:
            connection.close()

    def _connection(self, url: httpx.URL) -> http.client.HTTPConnection:
        if url.scheme == "http":
            return http.client.HTTPConnection(url.host, url.port, timeout=self._connect_timeout)
        if url.scheme == "https":
            return http.client.HTTPSConnection(
                url.host, url.port, timeout=self._connect_timeout, context=self._tls
            )
        raise ProtocolError(f"GET {url}: unsupported URL scheme {url.scheme!r}")
