"""The data converter every Temporal client of this process uses: pydantic JSON, and encryption
of payloads when keys are configured (`ORDERTRACK_ENCRYPTION_KEYS`).

Encryption is AES-256-GCM over the whole serialized payload (its metadata and data), with a fresh
96-bit nonce per payload. The encrypted payload says how to open it: metadata `encoding` is
`binary/encrypted` and `encryption-key-id` names the key; its data is nonce + ciphertext + tag, and
the key id is bound to the ciphertext as associated data. Decoding picks the key by id, so keys can
be rotated: a new `ENCRYPTION_KEY_ID` encrypts from then on, and payloads under an older key still
decode as long as that key stays in `ENCRYPTION_KEYS`. Payloads that are not encrypted (histories
from before encryption was turned on, input typed into the stock `temporal` CLI) pass through.
"""

import dataclasses
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from ordertrack.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12


class PayloadDecryptionError(ValueError):
    """An encrypted payload that cannot be opened: unknown key id, or altered/corrupt ciphertext."""


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM with several keys by id: `current` encrypts, any of `keys` decrypts."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError(f"encryption key {current!r} is not among the configured keys {sorted(keys)}")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current

    @property
    def key_id(self) -> str:
        return self._current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._current.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_id is None:
            raise PayloadDecryptionError(f"encrypted payload has no {KEY_ID_METADATA!r} metadata")
        key_id = raw_id.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"payload encrypted with key {key_id!r}, which is not configured "
                f"(configured: {sorted(self._ciphers)}); add it back to ORDERTRACK_ENCRYPTION_KEYS"
            )
        data = payload.data
        if len(data) <= NONCE_BYTES:
            raise PayloadDecryptionError(f"encrypted payload under key {key_id!r} is truncated")
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], raw_id)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload under key {key_id!r} failed authentication: it was altered, or the key "
                "configured under that id is not the one it was encrypted with"
            ) from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def payload_codec(settings: Settings) -> EncryptionCodec | None:
    """The codec for the settings' keys; None when no keys are configured."""
    if not settings.encryption_keys or settings.encryption_key_id is None:
        return None
    return EncryptionCodec(settings.encryption_key_bytes(), settings.encryption_key_id)


def data_converter(settings: Settings) -> DataConverter:
    """No keys, no encryption: plain pydantic JSON, readable in the Temporal UI as it is.

    With keys, every payload is encrypted, and failure messages and stack traces are moved into
    an encoded (so encrypted) attribute too, since they may quote the data.
    """
    codec = payload_codec(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
