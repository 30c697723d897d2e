"""SCRAM-SHA-256 verifiers and SASLprep against the RFCs' own examples (no server needed)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from kailash_nb.testing.fixtures.postgres import scram

# RFC 7677, section 3: user "user", password "pencil"
RFC7677_SALT = "W22ZaJ0SNY7soEsUEjb6gQ=="
RFC7677_AUTH_MESSAGE = (
    b"n=user,r=rOprNGfwEbeRWgbNEkqO,"  # client-first-message-bare
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"  # server-first
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"  # client-final-message-without-proof
)
RFC7677_CLIENT_PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
RFC7677_SERVER_SIGNATURE = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def keys(verifier: str) -> tuple[str, bytes, bytes]:
    """(``<iterations>:<salt>``, StoredKey, ServerKey) of a ``SCRAM-SHA-256$<iterations>:<salt>$<keys>`` verifier."""
    mechanism, parameters, encoded = verifier.split("$")
    assert mechanism == "SCRAM-SHA-256"
    stored_key, server_key = (base64.b64decode(key) for key in encoded.split(":"))
    return parameters, stored_key, server_key


def test_verifier_of_the_rfc_7677_example_accepts_its_client_and_signs_as_its_server() -> None:
    parameters, stored_key, server_key = keys(scram.verifier("pencil", 4096, salt=base64.b64decode(RFC7677_SALT)))
    assert parameters == f"4096:{RFC7677_SALT}"
    server_signature = hmac.digest(server_key, RFC7677_AUTH_MESSAGE, "sha256")
    assert base64.b64encode(server_signature).decode() == RFC7677_SERVER_SIGNATURE
    client_signature = hmac.digest(stored_key, RFC7677_AUTH_MESSAGE, "sha256")
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(RFC7677_CLIENT_PROOF), client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key  # the server accepts the RFC's client proof


def test_verifiers_get_a_fresh_salt_each() -> None:
    first, second = (keys(scram.verifier("pencil", scram.CHOSEN_PASSWORD_ITERATIONS))[0] for _ in range(2))
    assert first.startswith("4096:") and first != second


@pytest.mark.parametrize(("password", "prepared"), [
    ("I\u00adX", "IX"),  # RFC 4013 section 3: soft hyphen mapped to nothing
    ("user", "user"),
    ("USER", "USER"),  # case preserved
    ("\u00aa", "a"),  # NFKC
    ("\u2168", "IX"),  # NFKC
    ("\u0007", "\u0007"),  # prohibited: PostgreSQL then uses the password as it is
    ("\u0627\u0031", "\u0627\u0031"),  # bidirectional check fails: as it is, too
    ("p\u00e4ss\u00a0w\u00f6rd", "p\u00e4ss w\u00f6rd"),  # non-ASCII space mapped to a space
])
def test_saslprep_prepares_passwords_as_rfc_4013_and_postgresql_do(password: str, prepared: str) -> None:
    assert scram.saslprep(password) == prepared


def test_a_password_and_its_prepared_form_get_the_same_verifier() -> None:
    salt = b"0123456789abcdef"
    assert scram.verifier("I\u00adX", 1, salt=salt) == scram.verifier("IX", 1, salt=salt)
