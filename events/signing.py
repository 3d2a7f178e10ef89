"""Signed pointers: only a holder of the deployment's key can make a run serve a file.

Anyone who can write to the engine can append an `artifact.pointer_set`; the signature is what
tells the workers' pointers from the others. A worker signs what it publishes (the subject,
its id, the file id and its size) with HMAC-SHA256 under `APP__SIGNING_KEY`; the projector, a
rebuild and inference verify it. A signature names its key by a short id (the first 8 hex of
the key's sha256), so a deployment that rotates keeps verifying pointers signed under the
previous ones (`APP__SIGNING_KEYS_PREVIOUS`) while it signs with the new one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr

from events.specs import FileId, RunId, Strict

MIN_KEY_LENGTH = 32
"""Characters a signing key has at least (`trainledger up` generates 64 hex)."""
_DOMAIN = b"trainledger.pointer.v1\n"
"""Prefixed to what is signed, so a signature of this kind means nothing elsewhere."""

POINTER_UNSIGNED = "POINTER_UNSIGNED"
POINTER_KEY_UNKNOWN = "POINTER_KEY_UNKNOWN"
POINTER_SIGNATURE_INVALID = "POINTER_SIGNATURE_INVALID"
"""The codes of `PointerRefused`: no signature, a key not held, a signature that differs."""


def _long_enough(key: SecretStr) -> SecretStr:
    if len(key.get_secret_value()) < MIN_KEY_LENGTH:
        raise ValueError(f"a signing key has at least {MIN_KEY_LENGTH} characters")
    return key


SigningKey = Annotated[SecretStr, AfterValidator(_long_enough)]
"""A secret of the deployment, never shown (`SecretStr`)."""


class PointerSignature(Strict):
    """An HMAC-SHA256 over a pointer's `SignedFields`, and the id of the key that made it."""

    key_id: str = Field(pattern=r"^[0-9a-f]{8}$")
    hmac: str = Field(pattern=r"^[0-9a-f]{64}$")


class SignedFields(Strict):
    """What a pointer's signature covers: the run or tokenizer, its file, the file's size."""

    subject: Literal["run", "tokenizer"]
    subject_id: RunId
    file_id: FileId
    size: int | None = Field(default=None, ge=0)

    def canonical(self) -> bytes:
        """The bytes signed: sorted keys, no spaces, after a domain prefix."""
        doc = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return _DOMAIN + doc.encode()

    def describe(self) -> str:
        """`run 'r1'` or `tokenizer 't1'`, for messages."""
        return f"{self.subject} {self.subject_id!r}"


class PointerRefused(Exception):  # noqa: N818 - it names what happened to the pointer
    """A pointer whose signature is missing or does not verify; `code` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def key_id(key: SecretStr) -> str:
    """The short, public id of `key`."""
    return hashlib.sha256(key.get_secret_value().encode()).hexdigest()[:8]


def _mac(key: SecretStr, fields: SignedFields) -> str:
    return hmac.new(key.get_secret_value().encode(), fields.canonical(), hashlib.sha256).hexdigest()


class SigningKeys(Strict):
    """The deployment's pointer keys: `current` signs; it and every `previous` one verify."""

    current: SigningKey
    previous: tuple[SigningKey, ...] = ()

    def sign(self, fields: SignedFields) -> PointerSignature:
        """The signature of `fields` under the current key."""
        return PointerSignature(key_id=key_id(self.current), hmac=_mac(self.current, fields))

    def verify(self, fields: SignedFields, signature: PointerSignature | None) -> None:
        """Return when `signature` is one of these keys' over `fields`; else `PointerRefused`."""
        what = f"the artifact pointer of {fields.describe()} to file {fields.file_id}"
        if signature is None:
            raise PointerRefused(POINTER_UNSIGNED, f"{what} carries no signature")
        known = {key_id(key): key for key in (self.current, *self.previous)}
        key = known.get(signature.key_id)
        if key is None:
            raise PointerRefused(
                POINTER_KEY_UNKNOWN,
                f"{what} is signed by key {signature.key_id}, which this deployment does not "
                "hold (APP__SIGNING_KEY, APP__SIGNING_KEYS_PREVIOUS)",
            )
        if not hmac.compare_digest(_mac(key, fields), signature.hmac):
            raise PointerRefused(POINTER_SIGNATURE_INVALID, f"{what} does not match its signature")


def warn_refused(
    reader: logging.Logger,
    refused: PointerRefused,
    what: str,
    category: str,
    subject: Literal["run", "tokenizer"],
    subject_id: str,
) -> None:
    """Log `refused` as a warning `artifact pointer <what>` (event `pointer_<what>`, its code,
    the run or tokenizer: never a key or a path): every reader that refuses a pointer says so
    the same way."""
    reader.warning(
        "artifact pointer %s: %s",
        what,
        refused.message,
        extra={
            "category": category,
            "event": f"pointer_{what}",
            "error_code": refused.code,
            f"{subject}_id": subject_id,
        },
    )
