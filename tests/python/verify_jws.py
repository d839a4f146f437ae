#!/usr/bin/env python3
"""Cross-checks edgeid verdicts with an off-the-shelf JOSE library (PyJWT).

usage: verify_jws.py JWK_FILE VALID_VERDICT NONCE EXPIRED_VERDICT

The valid verdict must verify with the JWK from `edgeid keys show --jwk` and
carry NONCE; a copy with one byte changed, the expired verdict, and the
valid verdict checked against another nonce must each be rejected.
Prints one line per check and exits non-zero on the first surprise.
"""

import json
import sys

import jwt
from jwt import PyJWK


def decode(token, key, nonce=None):
    claims = jwt.decode(
        token,
        key=key,
        algorithms=["EdDSA"],
        options={"require": ["exp", "iat", "iss", "jti"], "verify_aud": False},
    )
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "edgeid-verdict+jwt":
        raise ValueError(f"unexpected typ {header.get('typ')!r}")
    if header.get("kid") != KID:
        raise ValueError(f"unexpected kid {header.get('kid')!r}")
    # PyJWT has no nonce check: the claim is compared here, as a relying party would.
    if nonce is not None and claims.get("nonce") != nonce:
        raise ValueError(f"nonce {claims.get('nonce')!r} is not {nonce!r}")
    return claims


def expect_rejected(label, fn):
    try:
        fn()
    except (jwt.InvalidTokenError, ValueError) as e:
        print(f"ok: {label} rejected ({type(e).__name__}: {e})")
        return
    print(f"FAIL: {label} was accepted")
    sys.exit(1)


def flip(token, index):
    c = token[index]
    repl = "B" if c != "B" else "C"
    return token[:index] + repl + token[index + 1 :]


jwk_file, valid, nonce, expired = sys.argv[1:5]
with open(jwk_file) as f:
    jwk = json.load(f)
KID = jwk["kid"]
key = PyJWK(jwk, algorithm="EdDSA").key

claims = decode(valid, key, nonce)
assert set(claims) <= {"iss", "iat", "exp", "jti", "seq", "nonce", "decision", "sub", "mode", "reason", "modalities", "src", "liveness", "amr"}, claims
assert claims["decision"] in ("accept", "reject") and claims["mode"] in ("verify", "identify"), claims
print(f"ok: valid verdict verified by PyJWT {jwt.__version__}: {claims['decision']} ({claims['reason']}) seq {claims['seq']}")

head, payload, sig = valid.split(".")
for label, index in [("payload byte", len(head) + 1 + len(payload) // 2), ("signature byte", len(valid) - 10), ("header byte", 5)]:
    expect_rejected(f"verdict with one {label} changed", lambda i=index: decode(flip(valid, i), key, nonce))
expect_rejected("expired verdict", lambda: decode(expired, key))
expect_rejected("wrong nonce", lambda: decode(valid, key, nonce + "-other"))
print("all PyJWT checks passed")
