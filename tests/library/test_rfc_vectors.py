"""Published examples: RFC 7515 Appendix A (A.1-A.4) and RFC 7520 §4.1-4.4 verify with the
RFCs' own keys; the deterministic ones (HS256, RS256) are reproduced byte for byte."""

from __future__ import annotations

import base64
from typing import Any

import pytest

import jwtlite
from jwtlite import InvalidSignatureError, Key, jws

# -- RFC 7515 Appendix A ---------------------------------------------------------------------

# The JWS Payload shared by A.1-A.3 (its JSON has CRLF line breaks and spaces).
RFC7515_CLAIMS = {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}
RFC7515_PAYLOAD_SEGMENT = (
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
)

# A.1: HMAC SHA-256. Header {"typ":"JWT",\r\n "alg":"HS256"}.
RFC7515_A1_JWK = {
    "kty": "oct",
    "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
}
RFC7515_A1_TOKEN = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    f".{RFC7515_PAYLOAD_SEGMENT}"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

# A.2: RSASSA-PKCS1-v1_5 SHA-256.
RFC7515_A2_JWK = {
    "kty": "RSA",
    "n": (
        "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt"
        "0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSX"
        "ndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5"
        "IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
    ),
    "e": "AQAB",
    "d": (
        "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol"
        "2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn43"
        "9X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8"
        "bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ"
    ),
    "p": (
        "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_"
        "Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc"
    ),
    "q": (
        "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7Tje"
        "LQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc"
    ),
    "dp": (
        "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOK"
        "nu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0"
    ),
    "dq": (
        "h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U"
        "0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU"
    ),
    "qi": (
        "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5"
        "cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"
    ),
}
RFC7515_A2_TOKEN = (
    "eyJhbGciOiJSUzI1NiJ9"
    f".{RFC7515_PAYLOAD_SEGMENT}"
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W"
    "2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjt"
    "QBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6I"
    "eYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
)

# A.3: ECDSA P-256 SHA-256.
RFC7515_A3_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
}
RFC7515_A3_TOKEN = (
    "eyJhbGciOiJFUzI1NiJ9"
    f".{RFC7515_PAYLOAD_SEGMENT}"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
)

# A.4: ECDSA P-521 SHA-512 over the (non-JSON) payload "Payload".
RFC7515_A4_JWK = {
    "kty": "EC",
    "crv": "P-521",
    "x": "AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk",
    "y": "ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2",
    "d": "AY5pb7A0UFiB3RELSD64fTLOSV_jazdF7fLYyuTw8lOfRhWg6Y6rUrPAxerEzgdRhajnu0ferB0d53vM9mE15j2C",
}
RFC7515_A4_TOKEN = (
    "eyJhbGciOiJFUzUxMiJ9"
    ".UGF5bG9hZA"
    ".AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7Xdt"
    "AG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn"
)

# -- RFC 7520 §3 keys and §4 signatures ------------------------------------------------------

RFC7520_EC_PRIVATE_JWK = {  # §3.2
    "kty": "EC",
    "kid": "bilbo.baggins@hobbiton.example",
    "use": "sig",
    "crv": "P-521",
    "x": "AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt",
    "y": "AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1",
    "d": "AAhRON2r9cqXX1hg-RoI6R1tX5p2rUAYdmpHZoC1XNM56KtscrX6zbKipQrCW9CGZH3T4ubpnoTKLDYJ_fF3_rJt",
}
RFC7520_EC_PUBLIC_JWK = {k: v for k, v in RFC7520_EC_PRIVATE_JWK.items() if k != "d"}  # §3.1

RFC7520_RSA_PRIVATE_JWK = {  # §3.4
    "kty": "RSA",
    "kid": "bilbo.baggins@hobbiton.example",
    "use": "sig",
    "n": (
        "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_"
        "AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpP"
        "e7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg"
        "_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw"
    ),
    "e": "AQAB",
    "d": (
        "bWUC9B-EFRIo8kpGfh0ZuyGPvMNKvYWNtB_ikiH9k20eT-O1q_I78eiZkpXxXQ0UTEs2LsNRS-8uJbvQ-A1irkwM"
        "SMkK1J3XTGgdrhCku9gRldY7sNA_AKZGh-Q661_42rINLRCe8W-nZ34ui_qOfkLnK9QWDDqpaIsA-bMwWWSDFu2M"
        "UBYwkHTMEzLYGqOe04noqeq1hExBTHBOBdkMXiuFhUq1BU6l-DqEiWxqg82sXt2h-LMnT3046AOYJoRioz75tSUQ"
        "fGCshWTBnP5uDjd18kKhyv07lhfSJdrPdM5Plyl21hsFf4L_mHCuoFau7gdsPfHPxxjVOcOpBrQzwQ"
    ),
    "p": (
        "3Slxg_DwTXJcb6095RoXygQCAZ5RnAvZlno1yhHtnUex_fp7AZ_9nRaO7HX_-SFfGQeutao2TDjDAWU4Vupk8rw9"
        "JR0AzZ0N2fvuIAmr_WCsmGpeNqQnev1T7IyEsnh8UMt-n5CafhkikzhEsrmndH6LxOrvRJlsPp6Zv8bUq0k"
    ),
    "q": (
        "uKE2dh-cTf6ERF4k4e_jy78GfPYUIaUyoSSJuBzp3Cubk3OCqs6grT8bR_cu0Dm1MZwWmtdqDyI95HrUeq3MP15v"
        "MMON8lHTeZu2lmKvwqW7anV5UzhM1iZ7z4yMkuUwFWoBvyY898EXvRD-hdqRxHlSqAZ192zB3pVFJ0s7pFc"
    ),
    "dp": (
        "B8PVvXkvJrj2L-GYQ7v3y9r6Kw5g9SahXBwsWUzp19TVlgI-YV85q1NIb1rxQtD-IsXXR3-TanevuRPRt5OBOdiM"
        "GQp8pbt26gljYfKU_E9xn-RULHz0-ed9E9gXLKD4VGngpz-PfQ_q29pk5xWHoJp009Qf1HvChixRX59ehik"
    ),
    "dq": (
        "CLDmDGduhylc9o7r84rEUVn7pzQ6PF83Y-iBZx5NT-TpnOZKF1pErAMVeKzFEl41DlHHqqBLSM0W1sOFbwTxYWZD"
        "m6sI6og5iTbwQGIC3gnJKbi_7k_vJgGHwHxgPaX2PnvP-zyEkDERuf-ry4c_Z11Cq9AqC2yeL6kdKT1cYF8"
    ),
    "qi": (
        "3PiqvXQN0zwMeE-sBvZgi289XP9XCQF3VWqPzMKnIgQp7_Tugo6-NZBKCQsMf3HaEGBjTVJs_jcK8-TRXvaKe-7Z"
        "MaQj8VfBdYkssbu0NKDDhjJ-GtiseaDVWt7dcH0cfwxgFUHpQh7FoCrjFJ6h6ZEpMF6xmujs4qMpPz8aaI4"
    ),
}
RFC7520_RSA_PUBLIC_JWK = {  # §3.3
    k: RFC7520_RSA_PRIVATE_JWK[k] for k in ("kty", "kid", "use", "n", "e")
}

RFC7520_HMAC_JWK = {  # §3.5
    "kty": "oct",
    "kid": "018c0ae5-4d9b-471b-bfd6-eef314bc7037",
    "use": "sig",
    "alg": "HS256",
    "k": "hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg",
}

# §4: the payload (note the U+2019 apostrophes) and its base64url encoding.
RFC7520_PAYLOAD = (
    "It\u2019s a dangerous business, Frodo, going out your door. You step onto the road, and if"
    " you don't keep your feet, there\u2019s no knowing where you might be swept off to."
).encode()
RFC7520_PAYLOAD_SEGMENT = (
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IH"
    "lvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBk"
    "b24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcm"
    "UgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4"
)

RFC7520_4_1_TOKEN = (  # RSA v1.5 (RS256)
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9"
    f".{RFC7520_PAYLOAD_SEGMENT}"
    ".MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmK"
    "ZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4J"
    "IwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8w"
    "W1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluP"
    "xUAhb6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_f"
    "cIe8u9ipH84ogoree7vjbU5y18kDquDg"
)
RFC7520_4_2_TOKEN = (  # RSA-PSS (PS384)
    "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9"
    f".{RFC7520_PAYLOAD_SEGMENT}"
    ".cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2I"
    "pN6-tPid6VrklHkqsGqDqHCdP6O8TTB5dDDItllVo6_1OLPpcbUrhiUSMxbbXU"
    "vdvWXzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmBqrYRX"
    "e8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT"
    "0qI0n6uiP1aCN_2_jLAeQTlqRHtfa64QQSUmFAAjVKPbByi7xho0uTOcbH510a"
    "6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw"
)
RFC7520_4_3_TOKEN = (  # ECDSA P-521 (ES512)
    "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9"
    f".{RFC7520_PAYLOAD_SEGMENT}"
    ".AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvb"
    "u9Plon7KRTzoNEuT4Va2cmL1eJAQy3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kv"
    "AD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2"
)
RFC7520_4_4_TOKEN = (  # HMAC-SHA2 (HS256)
    "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9"
    f".{RFC7520_PAYLOAD_SEGMENT}"
    ".s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0"
)


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def resign(token: str, key: Key) -> str:
    """The signature ``key`` makes over the token's own signing input."""
    signing_input = token.rsplit(".", 1)[0].encode("ascii")
    return b64url_encode(key.sign(signing_input))


def signature_of(token: str) -> str:
    return token.rsplit(".", 1)[1]


# -- RFC 7515 Appendix A ---------------------------------------------------------------------

NO_EXP = {"verify_exp": False}  # the examples expired in 2011


def test_rfc7515_inputs_are_the_published_ones() -> None:
    header, payload, _ = RFC7515_A1_TOKEN.split(".")
    assert b64url_decode(header) == b'{"typ":"JWT",\r\n "alg":"HS256"}'
    assert b64url_decode(payload) == (
        b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'
    )


def test_rfc7515_a1_hs256_verifies() -> None:
    key = Key.from_jwk(RFC7515_A1_JWK, "HS256")
    assert jwtlite.decode(RFC7515_A1_TOKEN, key, ["HS256"], options=NO_EXP) == RFC7515_CLAIMS


def test_rfc7515_a1_hs256_verifies_with_raw_secret() -> None:
    secret = b64url_decode(RFC7515_A1_JWK["k"])
    assert len(secret) == 64
    claims = jwtlite.decode(RFC7515_A1_TOKEN, secret, ["HS256"], options=NO_EXP)
    assert claims == RFC7515_CLAIMS


def test_rfc7515_a1_hs256_verifies_with_jwk_dict() -> None:
    claims = jwtlite.decode(RFC7515_A1_TOKEN, RFC7515_A1_JWK, ["HS256"], options=NO_EXP)
    assert claims == RFC7515_CLAIMS


def test_rfc7515_a1_resigning_reproduces_the_signature() -> None:
    key = Key.from_jwk(RFC7515_A1_JWK, "HS256")
    assert resign(RFC7515_A1_TOKEN, key) == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert resign(RFC7515_A1_TOKEN, key) == signature_of(RFC7515_A1_TOKEN)


def test_rfc7515_a1_is_expired_by_default() -> None:
    key = Key.from_jwk(RFC7515_A1_JWK, "HS256")
    with pytest.raises(jwtlite.ExpiredTokenError):
        jwtlite.decode(RFC7515_A1_TOKEN, key, ["HS256"])
    claims = jwtlite.decode(RFC7515_A1_TOKEN, key, ["HS256"], now=1300819379)
    assert claims == RFC7515_CLAIMS


@pytest.mark.parametrize(
    ("token", "jwk", "algorithm"),
    [
        (RFC7515_A2_TOKEN, RFC7515_A2_JWK, "RS256"),
        (RFC7515_A3_TOKEN, RFC7515_A3_JWK, "ES256"),
    ],
    ids=["A.2-RS256", "A.3-ES256"],
)
@pytest.mark.parametrize("public_only", [False, True], ids=["private-jwk", "public-jwk"])
def test_rfc7515_asymmetric_examples_verify(
    token: str, jwk: dict[str, str], algorithm: str, public_only: bool
) -> None:
    key = Key.from_jwk(jwk, algorithm)
    if public_only:
        key = key.public_key()
    assert jwtlite.decode(token, key, [algorithm], options=NO_EXP) == RFC7515_CLAIMS


@pytest.mark.parametrize(
    ("token", "jwk", "algorithm"),
    [
        (RFC7515_A2_TOKEN, RFC7515_A2_JWK, "RS256"),
        (RFC7515_A3_TOKEN, RFC7515_A3_JWK, "ES256"),
    ],
    ids=["A.2-RS256", "A.3-ES256"],
)
def test_rfc7515_asymmetric_examples_verify_with_jwk_dict(
    token: str, jwk: dict[str, str], algorithm: str
) -> None:
    assert jwtlite.decode(token, jwk, [algorithm], options=NO_EXP) == RFC7515_CLAIMS


def test_rfc7515_a2_resigning_reproduces_the_signature() -> None:
    # RSASSA-PKCS1-v1_5 is deterministic.
    key = Key.from_jwk(RFC7515_A2_JWK, "RS256")
    assert resign(RFC7515_A2_TOKEN, key) == signature_of(RFC7515_A2_TOKEN)


def test_rfc7515_a4_es512_verifies_at_the_jws_level() -> None:
    key = Key.from_jwk(RFC7515_A4_JWK)
    assert key.algorithm == "ES512"
    assert jws.decode(RFC7515_A4_TOKEN, key, ["ES512"]) == b"Payload"
    assert jws.decode(RFC7515_A4_TOKEN, key.public_key(), ["ES512"]) == b"Payload"


def test_rfc7515_a4_is_not_a_jwt() -> None:
    key = Key.from_jwk(RFC7515_A4_JWK)
    with pytest.raises(jwtlite.MalformedTokenError):
        jwtlite.decode(RFC7515_A4_TOKEN, key, ["ES512"])


@pytest.mark.parametrize(
    ("token", "jwk", "algorithm"),
    [
        (RFC7515_A1_TOKEN, RFC7515_A1_JWK, "HS256"),
        (RFC7515_A2_TOKEN, RFC7515_A2_JWK, "RS256"),
        (RFC7515_A3_TOKEN, RFC7515_A3_JWK, "ES256"),
        (RFC7515_A4_TOKEN, RFC7515_A4_JWK, "ES512"),
    ],
    ids=["A.1", "A.2", "A.3", "A.4"],
)
def test_rfc7515_examples_fail_when_the_payload_changes(
    token: str, jwk: dict[str, str], algorithm: str
) -> None:
    header, _, signature = token.split(".")
    tampered = f"{header}.{b64url_encode(b'Payload!')}.{signature}"
    with pytest.raises(InvalidSignatureError):
        jws.decode(tampered, Key.from_jwk(jwk, algorithm), [algorithm])


def test_rfc7515_a3_round_trips_with_its_key() -> None:
    key = Key.from_jwk(RFC7515_A3_JWK, "ES256")
    token = jwtlite.encode(RFC7515_CLAIMS, key)
    assert jwtlite.decode(token, key.public_key(), ["ES256"], options=NO_EXP) == RFC7515_CLAIMS


# -- RFC 7520 §4.1-4.4 -----------------------------------------------------------------------

RFC7520_CASES = [
    pytest.param(RFC7520_4_1_TOKEN, RFC7520_RSA_PUBLIC_JWK, "RS256", id="4.1-RS256"),
    pytest.param(RFC7520_4_2_TOKEN, RFC7520_RSA_PUBLIC_JWK, "PS384", id="4.2-PS384"),
    pytest.param(RFC7520_4_3_TOKEN, RFC7520_EC_PUBLIC_JWK, "ES512", id="4.3-ES512"),
    pytest.param(RFC7520_4_4_TOKEN, RFC7520_HMAC_JWK, "HS256", id="4.4-HS256"),
]


def test_rfc7520_payload_is_the_published_text() -> None:
    assert b64url_decode(RFC7520_PAYLOAD_SEGMENT) == RFC7520_PAYLOAD


@pytest.mark.parametrize(("token", "jwk", "algorithm"), RFC7520_CASES)
def test_rfc7520_examples_verify(token: str, jwk: dict[str, Any], algorithm: str) -> None:
    key = Key.from_jwk(jwk, algorithm)
    assert key.kid == jwk["kid"]
    assert jws.decode(token, key, [algorithm]) == RFC7520_PAYLOAD


@pytest.mark.parametrize(("token", "jwk", "algorithm"), RFC7520_CASES)
def test_rfc7520_examples_verify_through_a_keyset(
    token: str, jwk: dict[str, Any], algorithm: str
) -> None:
    keyset = jwtlite.KeySet([Key.from_jwk(jwk, algorithm)])
    assert jwtlite.get_unverified_header(token)["kid"] == jwk["kid"]
    assert jws.decode(token, keyset, [algorithm]) == RFC7520_PAYLOAD


@pytest.mark.parametrize(("token", "jwk", "algorithm"), RFC7520_CASES)
def test_rfc7520_examples_refuse_other_algorithms(
    token: str, jwk: dict[str, Any], algorithm: str
) -> None:
    others = [name for name in ("RS256", "PS384", "ES512", "HS256") if name != algorithm]
    with pytest.raises(jwtlite.AlgorithmNotAllowedError):
        jws.decode(token, Key.from_jwk(jwk, algorithm), others)


def test_rfc7520_private_keys_match_their_public_keys() -> None:
    rsa_key = Key.from_jwk(RFC7520_RSA_PRIVATE_JWK, "PS384")
    assert rsa_key.can_sign
    assert rsa_key.thumbprint() == Key.from_jwk(RFC7520_RSA_PUBLIC_JWK, "PS384").thumbprint()
    assert jws.decode(RFC7520_4_2_TOKEN, rsa_key, ["PS384"]) == RFC7520_PAYLOAD
    ec_key = Key.from_jwk(RFC7520_EC_PRIVATE_JWK)
    assert ec_key.can_sign
    assert jws.decode(RFC7520_4_3_TOKEN, ec_key, ["ES512"]) == RFC7520_PAYLOAD


@pytest.mark.parametrize(
    ("token", "jwk", "algorithm"),
    [
        (RFC7520_4_1_TOKEN, RFC7520_RSA_PRIVATE_JWK, "RS256"),
        (RFC7520_4_4_TOKEN, RFC7520_HMAC_JWK, "HS256"),
    ],
    ids=["4.1-RS256", "4.4-HS256"],
)
def test_rfc7520_deterministic_signatures_are_reproduced(
    token: str, jwk: dict[str, Any], algorithm: str
) -> None:
    assert resign(token, Key.from_jwk(jwk, algorithm)) == signature_of(token)


@pytest.mark.parametrize(
    ("jwk", "algorithm"),
    [(RFC7520_RSA_PRIVATE_JWK, "PS384"), (RFC7520_EC_PRIVATE_JWK, "ES512")],
    ids=["PS384", "ES512"],
)
def test_rfc7520_randomised_algorithms_sign_verifiable_tokens(
    jwk: dict[str, Any], algorithm: str
) -> None:
    key = Key.from_jwk(jwk, algorithm)
    token = jws.encode(RFC7520_PAYLOAD, key)
    assert jwtlite.get_unverified_header(token)["kid"] == "bilbo.baggins@hobbiton.example"
    assert jws.decode(token, key.public_key(), [algorithm]) == RFC7520_PAYLOAD
