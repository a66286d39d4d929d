"""The payload codec: AES-256-GCM with key ids, rotation, pass-through, and the key settings."""

import base64
import os
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from ordertrack.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    data_converter,
)
from ordertrack.settings import Settings
from tests.factories import sample_order


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def settings(**values: Any) -> Settings:
    return Settings(**values)


def plain(text: str = '{"email": "ana@example.com"}') -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


def codec(keys: dict[str, str], current: str) -> EncryptionCodec:
    return EncryptionCodec({k: base64.b64decode(v) for k, v in keys.items()}, current)


K1, K2 = new_key(), new_key()


async def test_round_trip_hides_the_data_and_names_the_key():
    c = codec({"k1": K1}, "k1")
    original = plain()
    [encrypted] = await c.encode([original])
    assert encrypted.metadata["encoding"] == ENCODING
    assert encrypted.metadata[KEY_ID_METADATA] == b"k1"
    assert b"ana@example.com" not in encrypted.SerializeToString()
    assert await c.decode([encrypted]) == [original]


async def test_each_payload_gets_its_own_nonce():
    c = codec({"k1": K1}, "k1")
    first, second = await c.encode([plain(), plain()])
    assert first.data != second.data
    assert first.data[:12] != second.data[:12]


async def test_rotation_old_payloads_still_decode_new_ones_use_the_new_key():
    [old] = await codec({"k1": K1}, "k1").encode([plain("old")])
    rotated = codec({"k1": K1, "k2": K2}, "k2")
    [new] = await rotated.encode([plain("new")])
    assert new.metadata[KEY_ID_METADATA] == b"k2"
    assert [p.data for p in await rotated.decode([old, new])] == [b"old", b"new"]


async def test_unknown_key_id_fails_clearly():
    [encrypted] = await codec({"k1": K1}, "k1").encode([plain()])
    with pytest.raises(PayloadDecryptionError, match=r"key 'k1', which is not configured.*\['k2'\]"):
        await codec({"k2": K2}, "k2").decode([encrypted])


async def test_tampered_ciphertext_fails():
    c = codec({"k1": K1}, "k1")
    [encrypted] = await c.encode([plain()])
    data = bytearray(encrypted.data)
    data[-1] ^= 1
    tampered = Payload(metadata=encrypted.metadata, data=bytes(data))
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await c.decode([tampered])


async def test_the_key_id_is_bound_to_the_ciphertext():
    """Relabelling a payload with another configured key's id does not open it."""
    c = codec({"k1": K1, "k2": K1}, "k1")  # even the same key bytes under another id
    [encrypted] = await c.encode([plain()])
    relabelled = Payload(metadata={**encrypted.metadata, KEY_ID_METADATA: b"k2"}, data=encrypted.data)
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await c.decode([relabelled])


async def test_missing_key_id_and_truncated_data_fail():
    c = codec({"k1": K1}, "k1")
    with pytest.raises(PayloadDecryptionError, match="no 'encryption-key-id'"):
        await c.decode([Payload(metadata={"encoding": ENCODING}, data=b"x" * 40)])
    with pytest.raises(PayloadDecryptionError, match="truncated"):
        await c.decode([Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: b"k1"}, data=b"x")])


async def test_unencrypted_payloads_pass_through():
    c = codec({"k1": K1}, "k1")
    payloads = [plain(), Payload(metadata={"encoding": b"binary/null"})]
    assert await c.decode(payloads) == payloads


async def test_data_converter_without_keys_is_plain_pydantic():
    assert data_converter(settings()) is pydantic_data_converter


async def test_data_converter_with_keys_round_trips_an_order():
    converter = data_converter(settings(encryption_keys={"k1": K1}))
    order = sample_order()
    [payload] = await converter.encode([order])
    assert payload.metadata["encoding"] == ENCODING
    assert order.customer.email.encode() not in payload.SerializeToString()
    assert await converter.decode([payload], [type(order)]) == [order]
    # A plain payload (the stock CLI's input) still decodes.
    [plain_payload] = await pydantic_data_converter.encode([order])
    assert await converter.decode([plain_payload], [type(order)]) == [order]


async def test_failure_messages_are_encrypted_too():
    from temporalio.api.failure.v1 import Failure
    from temporalio.exceptions import ApplicationError

    converter = data_converter(settings(encryption_keys={"k1": K1}))
    failure = Failure()
    await converter.encode_failure(ApplicationError("bad address for ana@example.com"), failure)
    assert b"ana@example.com" not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == "bad address for ana@example.com"


# -- settings ---------------------------------------------------------------------------------


def test_a_single_key_is_the_current_one():
    assert settings(encryption_keys={"k1": K1}).encryption_key_id == "k1"


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORDERTRACK_ENCRYPTION_KEYS", f'{{"k1": "{K1}", "k2": "{K2}"}}')
    monkeypatch.setenv("ORDERTRACK_ENCRYPTION_KEY_ID", "k2")
    loaded = Settings()
    assert loaded.encryption_key_id == "k2"
    assert loaded.encryption_key_bytes() == {"k1": base64.b64decode(K1), "k2": base64.b64decode(K2)}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"encryption_keys": {"k1": "not base64!"}}, "key 'k1' is not valid base64"),
        ({"encryption_keys": {"k1": base64.b64encode(b"short").decode()}}, "key 'k1' is 5 bytes"),
        ({"encryption_keys": {"k1": K1, "k2": K2}}, "ENCRYPTION_KEY_ID: required with several"),
        ({"encryption_keys": {"k1": K1}, "encryption_key_id": "k9"}, "'k9' is not one of ENCRYPTION_KEYS"),
        ({"encryption_key_id": "k1"}, "none configured"),
        ({"encryption_keys": {" ": K1}}, "key id must not be empty"),
    ],
)
def test_bad_key_settings_say_what_is_wrong(values: dict[str, Any], message: str):
    with pytest.raises(ValidationError, match=message) as raised:
        settings(**values)
    for key in (K1, K2):
        assert key not in str(raised.value)  # never echo a key
