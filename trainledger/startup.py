"""What every trainledger command does first: read the settings, then log JSON lines.

Logging is configured before anything can log, with every secret the process knows masked
(the Data Bank key, the API key, the engine's password in `REDIS__URL`, the pointer signing
keys, and whatever the command adds), so no process leaves plain
text on stderr or a key in its logs.
"""

from __future__ import annotations

from events import url_password
from httpservice import configure_logging
from trainledger.settings import Settings


def start(service: str, *secrets: str | None) -> Settings:
    """The process settings, once JSON logging for `service` is in place."""
    settings = Settings()
    known = (
        settings.app.data_bank_api_key,
        settings.security.api_key,
        url_password(settings.redis.url),
        *settings.app.secrets(),
        *secrets,
    )
    configure_logging(service, secrets=known)
    return settings
