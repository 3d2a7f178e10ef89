"""The deployment's pointer keys for a command that signs or verifies.

`APP__SIGNING_KEY` when set. Otherwise, on the private engine (no `REDIS__URL`), the key kept
beside the engine's data directory (`var/signing.key` by default: the file `trainledger up`
keeps, generated once, 0600), so a command run next to `up`, or a stack started one command at
a time, signs and verifies with the same key as every other process on that engine. Against a
shared engine (`REDIS__URL`) a key must be given: one generated per machine would make every
other machine's pointers fail to verify. A missing or short key is one line (exit 2), never a
stack trace.
"""

from __future__ import annotations

import typer
from pydantic import SecretStr, ValidationError

from events import MIN_KEY_LENGTH, SigningKeys
from httpservice import mask_also
from trainledger.local import signing_key
from trainledger.settings import Settings

MISSING = (
    "trainledger {command} needs APP__SIGNING_KEY with REDIS__URL set: the key that signs "
    "artifact pointers, the same in every worker, projector and inference of a deployment "
    "(without REDIS__URL the private engine's key is generated beside its data directory)"
)
INVALID = (
    "invalid APP__SIGNING_KEY or APP__SIGNING_KEYS_PREVIOUS: every signing key has at least "
    f"{MIN_KEY_LENGTH} characters"
)


def signing_keys(settings: Settings, command: str) -> SigningKeys:
    """The keys of `settings` (or the private engine's); exit 2 with a clear line when there
    is none or one is short."""
    current = settings.app.signing_key
    if current is None and settings.redis.url is None:
        current = SecretStr(signing_key(settings.redis.data_dir.parent, None))
        mask_also(current.get_secret_value())
    if current is None:
        typer.echo(MISSING.format(command=command), err=True)
        raise typer.Exit(2)
    try:
        return SigningKeys(current=current, previous=settings.app.signing_keys_previous)
    except ValidationError:
        typer.echo(INVALID, err=True)
        raise typer.Exit(2) from None
