"""Pointer signatures: what they cover, which keys verify them, and how they are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from events import (
    POINTER_KEY_UNKNOWN,
    POINTER_SIGNATURE_INVALID,
    POINTER_UNSIGNED,
    PointerRefused,
    PointerSignature,
    SignedFields,
    SigningKeys,
    key_id,
)

OLD, NEW = "old-signing-key-" + "1" * 32, "new-signing-key-" + "2" * 32
FIELDS = SignedFields(subject="run", subject_id="r1", file_id="a" * 64, size=1234)


def refusal(keys: SigningKeys, fields: SignedFields, signature: PointerSignature | None) -> str:
    with pytest.raises(PointerRefused) as refused:
        keys.verify(fields, signature)
    assert str(refused.value) == f"{refused.value.code}: {refused.value.message}"
    return refused.value.code


def test_a_signature_verifies_under_the_key_that_made_it() -> None:
    keys = SigningKeys(current=NEW)
    signature = keys.sign(FIELDS)
    assert signature.key_id == key_id(keys.current) != key_id(SigningKeys(current=OLD).current)
    keys.verify(FIELDS, signature)
    assert keys.sign(FIELDS) == signature  # deterministic: a redone upload signs the same


@pytest.mark.parametrize(
    "changed",
    [
        {"subject": "tokenizer"},
        {"subject_id": "r2"},
        {"file_id": "b" * 64},
        {"size": 1235},
        {"size": None},
    ],
    ids=["subject", "subject_id", "file_id", "size", "no size"],
)
def test_a_signature_covers_every_field(changed: dict[str, object]) -> None:
    keys = SigningKeys(current=NEW)
    signature = keys.sign(FIELDS)
    other = FIELDS.model_copy(update=changed)
    assert refusal(keys, other, signature) == POINTER_SIGNATURE_INVALID


def test_an_unsigned_pointer_or_one_under_another_key_is_refused() -> None:
    keys = SigningKeys(current=NEW)
    assert refusal(keys, FIELDS, None) == POINTER_UNSIGNED
    foreign = SigningKeys(current=OLD).sign(FIELDS)
    assert refusal(keys, FIELDS, foreign) == POINTER_KEY_UNKNOWN
    forged = PointerSignature(key_id=key_id(keys.current), hmac="0" * 64)
    assert refusal(keys, FIELDS, forged) == POINTER_SIGNATURE_INVALID


def test_a_previous_key_still_verifies_while_the_current_one_signs() -> None:
    before = SigningKeys(current=OLD).sign(FIELDS)
    rotated = SigningKeys(current=NEW, previous=(OLD,))
    rotated.verify(FIELDS, before)
    assert rotated.sign(FIELDS).key_id == key_id(rotated.current)
    assert refusal(SigningKeys(current=NEW), FIELDS, before) == POINTER_KEY_UNKNOWN


def test_the_message_names_the_pointer_and_never_the_key() -> None:
    keys = SigningKeys(current=NEW)
    with pytest.raises(PointerRefused) as refused:
        keys.verify(FIELDS, SigningKeys(current=OLD).sign(FIELDS))
    message = refused.value.message
    assert message.startswith(f"the artifact pointer of run 'r1' to file {'a' * 64} is signed by")
    assert "APP__SIGNING_KEY" in message
    assert OLD not in message
    assert NEW not in repr(keys)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        SigningKeys(current="short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        SigningKeys(current=NEW, previous=("short",))
