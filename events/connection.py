"""Every engine connection is built here, from one URL and one policy.

URLs:

- `redis://[[user]:password@]host[:port][/db]` and `rediss://...` (TLS; `ssl_ca_certs`,
  `ssl_certfile`, `ssl_keyfile`, `ssl_cert_reqs` as query parameters), `unix:///path?db=N`:
  redis-py's own URL forms, `?db=` included;
- `redis+sentinel://[[user]:password@]host:port,host:port/service_name[?db=N]`: the primary
  of `service_name` as the Sentinels name it; the credentials are the primary's. Every new
  connection asks the Sentinels where the primary is, so after a failover the next command (or
  its retry) reaches the promoted replica.

The policy is the same for every client: connect and socket timeouts on every call (a blocked
read such as XREADGROUP's BLOCK stays below the socket timeout), a PING before reusing a
connection idle past the health-check interval, and a few quick retries with jittered backoff
that ride out a dropped socket or a failover in progress. A longer outage surfaces as
`redis.ConnectionError`: the consumer runtime answers it with its own backoff, the HTTP
services with 503. redis-py has a synchronous and an asyncio class tree, hence two factories
of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.sentinel
from pydantic import BaseModel, ConfigDict, Field
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

SENTINEL_SCHEME = "redis+sentinel"


class ConnectionPolicy(BaseModel):
    """Timeouts and retries of every engine client (`REDIS__*` settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_timeout_s: float = Field(default=5.0, gt=0)
    socket_timeout_s: float = Field(default=10.0, gt=0)
    """Longest wait for one reply; longer than any BLOCK the services use."""
    retries: int = Field(default=3, ge=0)
    backoff_base_s: float = Field(default=0.05, gt=0)
    backoff_cap_s: float = Field(default=1.0, gt=0)
    health_check_interval_s: int = Field(default=15, ge=0)


DEFAULT_POLICY = ConnectionPolicy()
PROBE_POLICY = ConnectionPolicy(connect_timeout_s=1.0, socket_timeout_s=1.0, retries=0)
"""For asking whether an engine answers: one quick try."""


class _Credentials(TypedDict):
    db: int
    username: str | None
    password: str | None


@dataclass(frozen=True)
class SentinelTarget:
    """A parsed `redis+sentinel://` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None

    def credentials(self) -> _Credentials:
        """The primary's database and credentials, as connection options."""
        return {"db": self.db, "username": self.username, "password": self.password}


def sentinel_target(url: str) -> SentinelTarget | None:
    """The Sentinel target a URL names, or None for redis-py's own URL forms."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return None
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    service = parts.path.strip("/")
    if not hosts or not service:
        raise ValueError("a Sentinel URL names its sentinels and service: ...//h:p,h:p/service")
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return SentinelTarget(
        sentinels=tuple(_host_port(host) for host in hosts.split(",")),
        service=service,
        db=int(db),
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a sentinel is host:port, not {text!r}")
    return host.strip("[]"), int(port)


class _Timeouts(TypedDict):
    socket_connect_timeout: float
    socket_timeout: float
    health_check_interval: int


def _timeouts(policy: ConnectionPolicy) -> _Timeouts:
    return {
        "socket_connect_timeout": policy.connect_timeout_s,
        "socket_timeout": policy.socket_timeout_s,
        "health_check_interval": policy.health_check_interval_s,
    }


def _sentinel_timeouts(policy: ConnectionPolicy) -> dict[str, float]:
    """Sentinels answer at once or not at all: their replies wait no longer than a connect."""
    return {
        "socket_connect_timeout": policy.connect_timeout_s,
        "socket_timeout": policy.connect_timeout_s,
    }


def _backoff(policy: ConnectionPolicy) -> ExponentialWithJitterBackoff | NoBackoff:
    if policy.retries == 0:
        return NoBackoff()
    return ExponentialWithJitterBackoff(base=policy.backoff_base_s, cap=policy.backoff_cap_s)


def connect(url: str, policy: ConnectionPolicy = DEFAULT_POLICY) -> redis.Redis:
    """A synchronous client for the engine at `url` (bytes replies)."""
    retry = Retry(_backoff(policy), retries=policy.retries)
    target = sentinel_target(url)
    if target is None:
        return redis.Redis.from_url(url, retry=retry, **_timeouts(policy))
    sentinels = redis.sentinel.Sentinel(
        target.sentinels, sentinel_kwargs=_sentinel_timeouts(policy), **_timeouts(policy)
    )
    client = sentinels.master_for(target.service, retry=retry, **target.credentials())
    assert isinstance(client, redis.Redis)
    return client


def connect_async(url: str, policy: ConnectionPolicy = DEFAULT_POLICY) -> redis.asyncio.Redis:
    """An asyncio client for the engine at `url`, with the same policy."""
    retry = redis.asyncio.retry.Retry(_backoff(policy), retries=policy.retries)
    target = sentinel_target(url)
    if target is None:
        return redis.asyncio.Redis.from_url(url, retry=retry, **_timeouts(policy))
    sentinels = redis.asyncio.sentinel.Sentinel(
        target.sentinels, sentinel_kwargs=_sentinel_timeouts(policy), **_timeouts(policy)
    )
    client = sentinels.master_for(target.service, retry=retry, **target.credentials())
    assert isinstance(client, redis.asyncio.Redis)
    return client
