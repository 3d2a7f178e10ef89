"""One HTTP client for the trainledger services, with every failure turned into a typed error.

A refused connection says which service and how to start it; an error answer says its code
and message (the one JSON shape every service answers); a success whose body does not parse
says so. Nothing here prints: commands decide what a user sees.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

import httpx
from pydantic import BaseModel, JsonValue, ValidationError

from trainledger.client.errors import HttpError, InvalidAnswerError, UnreachableError
from trainledger.client.models import ErrorAnswer

M = TypeVar("M", bound=BaseModel)
Params = Mapping[str, str | int | list[str]]

_ERROR_SNIPPET = 300


class HttpClient:
    """A client of one service (`name` is how messages call it, e.g. "the API")."""

    def __init__(
        self, name: str, base_url: str, *, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"X-API-Key": api_key} if api_key else {},
            timeout=httpx.Timeout(timeout, connect=5.0),
            trust_env=False,
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()

    def get(self, path: str, model: type[M], params: Params | None = None) -> M:
        """`GET path`, its answer parsed as `model`."""
        return self.call("GET", path, model, params=params)

    def post(self, path: str, model: type[M], body: JsonValue = None) -> M:
        """`POST path` with a JSON body, its answer parsed as `model`."""
        return self.call("POST", path, model, body=body)

    def put(self, path: str, model: type[M], body: JsonValue = None) -> M:
        """`PUT path` with a JSON body, its answer parsed as `model`."""
        return self.call("PUT", path, model, body=body)

    def delete(self, path: str, model: type[M]) -> M:
        """`DELETE path`, its answer parsed as `model`."""
        return self.call("DELETE", path, model)

    def call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        params: Params | None = None,
        body: JsonValue = None,
    ) -> M:
        """One request; its answer parsed as `model`, or the typed error it means."""
        request = self._http.build_request(method, path, params=params, json=body)
        response = self._send(request, stream=False)
        self._check(response)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as error:
            raise InvalidAnswerError(
                f"{self.name} answered {method} {path} with something that is not a "
                f"{model.__name__}: {error.errors()[0]['msg']}"
            ) from None

    @contextmanager
    def stream(
        self, path: str, params: Params | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """`GET path` with its body left to read (an error answer raises before the block).

        Failures while the block reads the body are httpx's own (`httpx.TransportError`):
        a caller that resumes a stream tells a dropped stream from one that never opened.
        """
        request = self._http.build_request("GET", path, params=params, headers=headers)
        response = self._send(request, stream=True)
        try:
            if response.is_error:
                response.read()
                self._check(response)
            yield response
        finally:
            response.close()

    def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            return self._http.send(request, stream=stream)
        except httpx.ConnectError:
            raise UnreachableError(
                f"cannot reach {self.name} at {self.base_url}: is `trainledger up` running?"
            ) from None
        except httpx.TimeoutException:
            raise UnreachableError(
                f"{self.name} at {self.base_url} did not answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as error:
            raise UnreachableError(f"{self.name} at {self.base_url}: {error}") from None

    def _check(self, response: httpx.Response) -> None:
        if not response.is_error:
            return
        try:
            answer = ErrorAnswer.model_validate_json(response.content)
        except ValidationError:
            text = response.text.strip()[:_ERROR_SNIPPET] or response.reason_phrase
            raise HttpError(response.status_code, None, f"{self.name} answered: {text}") from None
        raise HttpError(response.status_code, answer.code, answer.message)
