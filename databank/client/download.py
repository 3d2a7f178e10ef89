"""The download path: a GET read into reused buffers, written to a file and hashed beside it.

httpx hands a body over as fresh `bytes` objects of at most 64 KiB, each copied twice on the
way through h11; for a download that must also be written and hashed, that copying costs, on
a quiet machine, about as much CPU as the hashing itself (`bench/databank_transfer.py` prints
an httpx download's CPU beside this one's). The standard library's `http.client` reads
straight into a buffer we own (`HTTPResponse.readinto`): one copy, from the kernel. So
downloads use it, and everything else (uploads, HEAD, info, delete) stays on httpx. httpx still
builds the request (URL and headers), error answers are handed back as `httpx.Response` for the
client's one error mapping, and both paths share one TLS context and one rule: no proxy.

The bytes go through a `DownloadSink`: the receiving thread reads the socket into a buffer and
writes it to the file; a hasher thread then hashes that buffer and hands it back. Hashing is the
largest CPU cost of a download, so running it beside receiving and writing is what lets a
download keep up with curl (which does not hash); hashlib releases the GIL while it works.
Reusing a fixed set of 1 MiB buffers keeps memory flat whatever the file size and allocates
nothing per chunk.
"""

from __future__ import annotations

import hashlib
import http.client
import queue
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

import httpx

from databank.client.errors import ProtocolError
from databank.client.retry import RetryableError

ERROR_BODY_LIMIT = 64 * 1024
"""The most of an error answer's body the client reads: enough to report, never a whole file."""
BUFFER_BYTES = 1 << 20
_BUFFERS = 8
_TRANSPORT_ERRORS = (OSError, http.client.HTTPException)

_Filled = tuple[memoryview, int] | None


class FileDownloader(Protocol):
    """What the fetchers need from a client (`DataBankClient` is one): a verified, atomic
    download."""

    def download_to(self, file_id: str, path: Path) -> Path: ...


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


class DownloadSink:
    """Takes a download's bytes in order; `hexdigest` waits until all are hashed. Use `with`."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self._error: BaseException | None = None
        self._free: queue.Queue[memoryview] = queue.Queue()
        for _ in range(_BUFFERS):
            self._free.put(memoryview(bytearray(BUFFER_BYTES)))
        self._filled: queue.Queue[_Filled] = queue.Queue()
        self._hasher = threading.Thread(target=self._hash_filled, daemon=True)
        self._hasher.start()
        self.offset = 0
        self.size: int | None = None

    def __enter__(self) -> DownloadSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._filled.put(None)
        self._hasher.join()

    def fill(self, read_into: Callable[[memoryview], int]) -> int:
        """Let `read_into` fill a free buffer, write what it read, and queue it for hashing.

        Returns the number of bytes read: 0 means `read_into` found the end.
        """
        buffer = self._free.get()
        try:
            count = read_into(buffer)
            if count:
                self._out.write(buffer[:count])
        except BaseException:
            self._free.put(buffer)
            raise
        if not count:
            self._free.put(buffer)
            return 0
        self.offset += count
        self._filled.put((buffer, count))
        return count

    def restart(self) -> None:
        """Empty the file and the hash, to download again from the first byte."""
        self._drain()
        self._out.seek(0)
        self._out.truncate()
        self._hash = hashlib.sha256()
        self.offset = 0

    def hexdigest(self) -> str:
        """The sha256 of every byte taken so far."""
        self._drain()
        return self._hash.hexdigest()

    def _drain(self) -> None:
        self._filled.join()
        if self._error is not None:
            raise self._error

    def _hash_filled(self) -> None:
        while (filled := self._filled.get()) is not None:
            buffer, count = filled
            try:
                if self._error is None:
                    self._hash.update(buffer[:count])
            except BaseException as exc:  # reported by the next `restart` or `hexdigest`
                self._error = exc
            finally:
                self._free.put(buffer)
                self._filled.task_done()
