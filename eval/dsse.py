"""DSSE envelopes signed with Ed25519, carrying in-toto Statements.

The signature covers DSSE's pre-authentication encoding (PAE) of the payload type and the
payload bytes, never the JSON around them::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

where ``LEN`` is the byte length in ASCII decimal (https://github.com/secure-systems-lab/dsse,
protocol.md). The envelope is ``{"payload": b64, "payloadType": ..., "signatures": [{"keyid",
"sig"}]}`` with standard base64. ``keyid`` is the signer's public key fingerprint
(:func:`robocell.eval.keys.public_key_fingerprint`); it is not signed, so :func:`open_envelope`
checks it against the key it verifies with.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from robocell.errors import VerificationError
from robocell.eval.keys import public_key_fingerprint
from robocell.util import canonical_json, load_json_strict

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
ENVELOPE_KEYS = {"payload", "payloadType", "signatures"}


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload_type`` and ``payload``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def sign_envelope(
    statement: dict[str, Any],
    private_key: Ed25519PrivateKey,
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
) -> dict[str, Any]:
    """Serialise ``statement`` (canonical JSON) and sign it into a DSSE envelope."""
    payload = canonical_json(statement)
    signature = private_key.sign(pae(payload_type, payload))
    keyid = public_key_fingerprint(private_key.public_key())
    return {
        "payload": _b64encode(payload),
        "payloadType": payload_type,
        "signatures": [{"keyid": keyid, "sig": _b64encode(signature)}],
    }


def open_envelope(
    envelope: dict[str, Any],
    public_key: Ed25519PublicKey,
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
) -> dict[str, Any]:
    """Verify ``envelope``'s signature with ``public_key``; return the statement inside.

    Raises VerificationError naming the first check that failed: envelope shape, payload type,
    key id, signature, or a payload that is not a JSON object.
    """
    _check_shape(envelope)
    if envelope["payloadType"] != payload_type:
        raise VerificationError(
            f"payload type is {envelope['payloadType']!r}, expected {payload_type!r}"
        )
    payload = _b64decode(envelope["payload"], "payload")
    signature = _only_signature(envelope["signatures"], public_key)
    try:
        public_key.verify(signature, pae(envelope["payloadType"], payload))
    except InvalidSignature:
        raise VerificationError("signature does not verify with the given public key") from None
    statement = load_json_strict(payload, "signed payload", VerificationError)
    if not isinstance(statement, dict):
        raise VerificationError("signed payload is not a JSON object")
    return statement


def _check_shape(envelope: Any) -> None:
    if not isinstance(envelope, dict) or set(envelope) != ENVELOPE_KEYS:
        keys = sorted(envelope) if isinstance(envelope, dict) else type(envelope).__name__
        raise VerificationError(
            f"not a DSSE envelope: expected keys {sorted(ENVELOPE_KEYS)}, got {keys}"
        )
    if not isinstance(envelope["payload"], str) or not isinstance(envelope["payloadType"], str):
        raise VerificationError("DSSE envelope: payload and payloadType must be strings")


def _only_signature(signatures: Any, public_key: Ed25519PublicKey) -> bytes:
    # One signer, one signature: extra unsigned entries would be bytes nobody vouches for.
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise VerificationError("DSSE envelope: expected exactly one signature")
    entry = signatures[0]
    if not isinstance(entry, dict) or set(entry) != {"keyid", "sig"}:
        raise VerificationError("DSSE envelope: a signature must have exactly keyid and sig")
    if entry["keyid"] != public_key_fingerprint(public_key):
        raise VerificationError(
            f"signature key id {entry['keyid']!r} is not the given public key's fingerprint "
            f"{public_key_fingerprint(public_key)}"
        )
    return _b64decode(entry["sig"], "signature")


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: Any, what: str) -> bytes:
    # Only the one canonical encoding is accepted, so no two envelopes carry the same bytes.
    if not isinstance(text, str):
        raise VerificationError(f"DSSE envelope: {what} is not a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"DSSE envelope: {what} is not valid base64") from None
    if _b64encode(data) != text:
        raise VerificationError(f"DSSE envelope: {what} is not in canonical base64")
    return data
