"""What a JWKS client takes from a published JWK Set (RFC 7517 §5): the usable signature keys.

Members it cannot use are skipped; sets that show a hostile or broken issuer are refused."""

from __future__ import annotations

from collections import Counter
from typing import Any

from jwtlite._jwk import is_signature_key, jwk_set_members
from jwtlite.errors import InvalidKeyError
from jwtlite.keys import Key, KeySet

__all__ = ["published_keys", "summarised"]

# RFC 7518 §6.2.2, §6.3.2, §6.4.1 and RFC 8037 §2: members only a private key or secret has.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


# How many skip reasons a log line or an error lists: a set of thousands of junk keys made
# one warning of hundreds of kilobytes per fetch.
_REASONS_SHOWN = 5


def summarised(reasons: list[str], limit: int = _REASONS_SHOWN) -> str:
    """The first ``limit`` of ``reasons`` joined, then how many more there are."""
    shown = "; ".join(reasons[:limit])
    if len(reasons) > limit:
        shown += f"; and {len(reasons) - limit} more"
    return shown


def _unusable(jwk: dict[str, Any]) -> str | None:
    if not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
        return "no kid (a token could not name it)"
    # A member present as null is malformed, not absent: "alg": null must not let
    # ``algorithm=`` choose the key's algorithm, nor "use": null make it a signature key.
    nulls = [name for name in ("alg", "use", "key_ops") if name in jwk and jwk[name] is None]
    if nulls:
        return f"{', '.join(nulls)} is null"
    if not is_signature_key(jwk):
        return "not a signature key (use or key_ops)"
    key_ops = jwk.get("key_ops")
    if isinstance(key_ops, list) and "verify" not in key_ops:
        # A published key verifies or is useless: loaded, it would refuse every token.
        return "key_ops do not include verify"
    return None


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a log line, cut to ``limit`` characters (it is the issuer's)."""
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def published_keys(document: Any, algorithm: str | None) -> tuple[KeySet, list[str]]:
    """The usable signature keys of a published JWK Set, and why each other member was skipped.

    An issuer may publish keys this library cannot use beside the ones it signs with (an
    encryption key without ``use``, an algorithm or curve not supported here, a weak RSA
    key, a key without ``kid``); they are skipped, so that adding one does not stop every
    verifier. What shows a hostile or broken document refuses the whole set: an entry that is
    not an object, an HMAC (``oct``) key (a published secret is not a secret), private key
    members (``d``, ``p``...: the issuer is leaking its keys), a ``kid`` used twice, or no
    usable key at all. ``algorithm`` is the ``alg`` of JWKs that have none.

    Raises:
        InvalidKeyError: the whole set is refused.
    """
    members = jwk_set_members(document)
    if any(jwk.get("kty") == "oct" for jwk in members):
        raise InvalidKeyError("it publishes an HMAC (oct) key; refusing the whole set")
    if any(name in jwk for jwk in members for name in _PRIVATE_MEMBERS):
        raise InvalidKeyError("it publishes private key members; refusing the whole set")
    kids = Counter(jwk["kid"] for jwk in members if isinstance(jwk.get("kid"), str))
    repeated = sorted(kid for kid, count in kids.items() if count > 1)
    if repeated:
        raise InvalidKeyError(f"kid {_shown(repeated[0])} names more than one key")
    keys: list[Key] = []
    skipped: list[str] = []
    for index, jwk in enumerate(members):
        reason = _unusable(jwk)
        if reason is None:
            try:
                keys.append(Key.from_jwk(jwk, None if "alg" in jwk else algorithm))
                continue
            except Exception as exc:  # any key this library cannot load is skipped
                reason = _shown(str(exc) or type(exc).__name__, 120)
        name = f"kid {_shown(jwk['kid'])}" if isinstance(jwk.get("kid"), str) else f"#{index}"
        skipped.append(f"{name}: {reason}")
    if not keys:
        raise InvalidKeyError("no usable signature key: " + (summarised(skipped) or "none"))
    return KeySet(keys), skipped
