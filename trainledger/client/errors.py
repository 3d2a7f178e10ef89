"""The client's typed errors: each becomes one line on stderr and a non-zero exit.

Commands raise these (the HTTP client turns transport failures and error answers into them);
`trainledger.client.session` prints `error: <message>` and exits 1, so a user never sees a
traceback for an operational failure.
"""

from __future__ import annotations


class ClientError(Exception):
    """A failure a command reports in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
        self.message = str(self)


class UnreachableError(ClientError):
    """A service refused or dropped the connection, or did not answer in time."""


class HttpError(ClientError):
    """A service answered with an error status: its JSON body's code and message."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(f"{code}: {message}" if code else f"HTTP {status}: {message}")
        self.status = status
        self.code = code


class InvalidAnswerError(ClientError):
    """A service answered success with a body this client cannot read."""


class RunEndedError(ClientError):
    """A watched run ended other than `completed` (exit status 3, not 1: a script can tell
    a failed run from a failure to ask)."""
