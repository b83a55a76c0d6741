"""Keys that know their algorithm, and key sets for rotation and JWKS (RFC 7517, RFC 7638).

A :class:`Key` binds key material to exactly one algorithm and is checked once, when it is
made; signing and verifying never re-parse or re-check it. A key loaded from a JWK does only
what its JWK allows (``use``, ``key_ops``). A :class:`KeySet` signs with its current key and
verifies by ``kid``; it holds secrets or asymmetric keys, never both, and no ``kid`` twice.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from jwtlite._encoding import b64url_encode, json_dumps
from jwtlite._jwk import (
    SIGNATURE_OPERATIONS,
    JWKKey,
    is_signature_key,
    jwk_members,
    jwk_set_members,
    load_jwk,
    public_members,
)
from jwtlite._material import infer_algorithm, is_key_material, load_pem, load_pem_or_der
from jwtlite.algorithms import (
    Algorithm,
    ECDSAAlgorithm,
    Ed448Algorithm,
    EdDSAAlgorithm,
    HMACAlgorithm,
    PrivateKey,
    get_algorithm,
)
from jwtlite.errors import (
    AlgorithmNotAllowedError,
    InvalidKeyError,
)

__all__ = ["Key", "KeySet", "KeySource", "as_key"]


class KeySource:
    """Something that finds a verifying :class:`Key` by a token's ``kid`` (a JWKS client).

    Anything that takes a verifying key (:func:`jwtlite.decode` and friends) takes one; a
    token without ``kid`` is refused, as with a :class:`KeySet`. Subclasses implement
    :meth:`key_for`. (A plain base class, not an ``abc.ABC``: the verifier asks
    ``isinstance`` on every token, and an ABC check costs several times more.)
    """

    __slots__ = ()

    def key_for(self, kid: str) -> Key:
        """The key called ``kid``.

        Raises:
            InvalidKeyError: no key has this ``kid``.
            JWTError: a subclass saying why no key can be looked up now.
        """
        raise NotImplementedError


class Key:
    """Key material bound to one algorithm, checked once at construction.

    Args:
        material: an HMAC secret (``bytes``/``str``), a ``cryptography`` private or public
            key, PEM or DER bytes/str, or a JWK ``dict`` (whose ``alg``, ``use`` and
            ``key_ops`` are honoured).
        algorithm: the one algorithm this key serves, e.g. ``"HS256"`` or ``"ES256"``.
        kid: an optional key id, written to the header of tokens signed with this key.

    ``algorithms`` names the token algorithms this key verifies: its own, and for an
    Ed25519/Ed448 key both the RFC 9864 name of its curve and the older ``EdDSA`` (the same
    signature with the same key, so no algorithm confusion can follow). The caller's
    ``algorithms=`` allowlist still decides which of them a verifier accepts.

    Raises:
        InvalidKeyError: the material cannot serve ``algorithm`` (wrong type, curve, size, an
            RSA modulus with the ROCA fingerprint), or its JWK is not for signatures.
        AlgorithmNotAllowedError: ``algorithm`` is not supported.
    """

    __slots__ = (
        "_algorithm",
        "_aliases",
        "_sign_with",
        "_signing",
        "_verify_with",
        "_verifying",
        "algorithm",
        "algorithms",
        "kid",
    )

    algorithm: str
    algorithms: frozenset[str]
    kid: str | None

    def __init__(self, material: Any, algorithm: str, *, kid: str | None = None) -> None:
        if kid is not None and not isinstance(kid, str):
            raise InvalidKeyError("kid must be a string")
        alg = get_algorithm(algorithm)
        signing, verifying, operations = _prepare(material, alg)
        if "sign" not in operations:
            signing = None  # a private key whose JWK only verifies is a verifying key
        self.algorithm = alg.name
        self.algorithms = _accepted_algorithms(alg, verifying)
        self.kid = kid
        self._algorithm = alg
        self._aliases: dict[str, Key] = {}
        self._signing = signing
        self._verifying = verifying
        self._sign_with = None if signing is None else alg.prepare(signing)
        self._verify_with = alg.prepare(verifying) if "verify" in operations else None

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def generate(cls, algorithm: str, *, kid: str | None = None) -> Key:
        """Make a fresh key for ``algorithm``.

        RSA keys have 2048 bits and EC keys the algorithm's curve; ``Ed448`` gets an Ed448
        key, ``Ed25519`` and ``EdDSA`` an Ed25519 key.

        Asymmetric keys get their RFC 7638 thumbprint as ``kid`` unless one is given.
        """
        alg = get_algorithm(algorithm)
        material: Any
        if isinstance(alg, HMACAlgorithm):
            # Any draw is a usable secret: only bytes that parse as key material are refused.
            material = os.urandom(alg.min_key_length)
        elif isinstance(alg, ECDSAAlgorithm):
            material = ec.generate_private_key(alg.curve())
        elif isinstance(alg, Ed448Algorithm):
            material = ed448.Ed448PrivateKey.generate()
        elif isinstance(alg, EdDSAAlgorithm):
            material = ed25519.Ed25519PrivateKey.generate()
        else:
            material = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls._with_default_kid(material, alg.name, kid)

    @classmethod
    def from_pem(
        cls,
        data: bytes | str,
        algorithm: str | None = None,
        *,
        kid: str | None = None,
        password: bytes | None = None,
    ) -> Key:
        """Load a PEM private key, public key or certificate.

        ``algorithm`` may be left out for EC and Ed25519/Ed448 keys, whose algorithm follows
        from the key; RSA keys need it (RS* or PS*).
        """
        raw = data.encode() if isinstance(data, str) else data
        material = load_pem(raw, password)
        return cls._with_default_kid(material, algorithm or infer_algorithm(material), kid)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any] | str, algorithm: str | None = None) -> Key:
        """Load a JWK (a dict, or its JSON text).

        Its ``kid`` is kept and its ``alg`` must agree with ``algorithm`` (either may be left
        out for EC and OKP keys). ``use`` must be ``"sig"`` when present, and ``key_ops``
        limits the key to the operations it lists.

        Raises:
            InvalidKeyError: the JWK is malformed, not for signatures, or for another
                algorithm, or its key cannot serve the algorithm.
        """
        members = jwk_members(jwk)
        loaded = load_jwk(members, algorithm)
        name = algorithm or members.get("alg") or infer_algorithm(loaded.material)
        kid = members.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidKeyError("JWK kid must be a string")
        return cls(loaded, name, kid=kid)

    @classmethod
    def _with_default_kid(cls, material: Any, algorithm: str, kid: str | None) -> Key:
        key = cls(material, algorithm, kid=kid)
        if kid is None and not key.is_symmetric:
            key.kid = key.thumbprint()
        return key

    # -- use ------------------------------------------------------------------------------

    @property
    def is_symmetric(self) -> bool:
        """Whether this is an HMAC secret (never published, signs and verifies)."""
        return self._algorithm.symmetric

    @property
    def can_sign(self) -> bool:
        """Whether this key can sign.

        True when it holds a private key or a secret, and its JWK (if any) allows ``sign``."""
        return self._signing is not None

    @property
    def can_verify(self) -> bool:
        """Whether this key may verify: false only when its JWK's ``key_ops`` leave it out."""
        return self._verify_with is not None

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``.

        Raises:
            InvalidKeyError: a public key, or a key whose JWK does not allow ``sign``.
        """
        if self._sign_with is None:
            raise InvalidKeyError(f"this {self.algorithm} key cannot sign")
        return self._algorithm.sign(self._sign_with, data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` over ``data`` is valid for this key.

        Raises:
            InvalidKeyError: the key's JWK does not allow ``verify``.
        """
        if self._verify_with is None:
            raise InvalidKeyError(f"this {self.algorithm} key's key_ops do not allow verify")
        return self._algorithm.verify(self._verify_with, data, signature)

    def for_algorithm(self, algorithm: str) -> Key:
        """This key serving ``algorithm``, one of :attr:`algorithms` (made once, then reused).

        An ``Ed25519`` key asked for ``EdDSA`` signs and verifies tokens whose header says
        ``EdDSA``, with the same material, ``kid`` and permitted operations.

        Raises:
            AlgorithmNotAllowedError: ``algorithm`` is not one of :attr:`algorithms`.
        """
        if algorithm == self.algorithm:
            return self
        if algorithm not in self.algorithms:
            raise AlgorithmNotAllowedError(
                f"the key is for {self.algorithm}, not {algorithm}", algorithm=algorithm
            )
        alias = self._aliases.get(algorithm)
        if alias is None:
            alias = Key(self._verifying if self._signing is None else self._signing, algorithm)
            alias.kid = self.kid
            if self._sign_with is None:
                alias._signing = alias._sign_with = None
            if self._verify_with is None:
                alias._verify_with = None
            self._aliases[algorithm] = alias  # a benign race: both threads build equal keys
        return alias

    def public_key(self) -> Key:
        """This key without its private part (an HMAC key is returned as it is).

        The public half verifies even when this key's ``key_ops`` are ``["sign"]``: it is
        the key a signer publishes for its verifiers.
        """
        if self.is_symmetric:
            return self
        return Key(self._verifying, self.algorithm, kid=self.kid)

    def public_jwk(self) -> dict[str, str]:
        """The public JWK, with ``alg``, ``use`` and ``kid`` (symmetric keys have none)."""
        if self.is_symmetric:
            raise InvalidKeyError("a symmetric key has no public JWK")
        jwk = public_members(self._verifying)
        jwk.update(alg=self.algorithm, use="sig")
        if self.kid is not None:
            jwk["kid"] = self.kid
        return jwk

    def thumbprint(self) -> str:
        """The RFC 7638 SHA-256 thumbprint of the public key, base64url-encoded."""
        if self.is_symmetric:
            raise InvalidKeyError("thumbprints of secrets are not computed")
        members = public_members(self._verifying)
        return b64url_encode(
            hashlib.sha256(json_dumps(dict(sorted(members.items())))).digest()
        ).decode()

    def secret(self) -> bytes:
        """The HMAC secret (for key files kept with mode 0600)."""
        if not self.is_symmetric:
            raise InvalidKeyError("only an HMAC key has a secret")
        return bytes(self._signing)

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (for key files kept with mode 0600)."""
        if self.is_symmetric or self._signing is None:
            raise InvalidKeyError("only an asymmetric private key has a private PEM")
        return bytes(
            self._signing.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM."""
        if self.is_symmetric:
            raise InvalidKeyError("a symmetric key has no public PEM")
        return bytes(
            self._verifying.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def __repr__(self) -> str:
        kind = "secret" if self.is_symmetric else ("private" if self.can_sign else "public")
        return f"Key(algorithm={self.algorithm!r}, kid={self.kid!r}, {kind})"


class KeySet:
    """Keys by ``kid``: sign with the current one, verify with whichever a token names.

    A set is one kind of trust: HMAC secrets (every holder can sign) or asymmetric keys
    (only the private key's holder can), never both, so that a token's ``kid`` cannot choose
    between them; and a ``kid`` names one key.

    Args:
        keys: keys with distinct, non-empty ``kid`` values, all symmetric or all asymmetric.
        current: the ``kid`` of the signing key; the first key when left out.

    Raises:
        InvalidKeyError: no key, a key without ``kid``, a repeated ``kid``, secrets mixed
            with asymmetric keys, or an unknown ``current``.
    """

    __slots__ = ("_keys", "current")

    def __init__(self, keys: Iterable[Key], *, current: str | None = None) -> None:
        by_kid: dict[str, Key] = {}
        for key in keys:
            if not isinstance(key, Key) or not key.kid:
                raise InvalidKeyError("every key in a KeySet needs a kid")
            if key.kid in by_kid:
                raise InvalidKeyError(f"duplicate kid {key.kid!r} in KeySet")
            by_kid[key.kid] = key
        if not by_kid:
            raise InvalidKeyError("a KeySet needs at least one key")
        if len({key.is_symmetric for key in by_kid.values()}) > 1:
            raise InvalidKeyError("a KeySet mixes HMAC secrets with asymmetric keys")
        chosen = by_kid.get(current) if current is not None else next(iter(by_kid.values()))
        if chosen is None:
            raise InvalidKeyError(f"current kid {current!r} is not in the KeySet")
        self._keys = by_kid
        self.current = chosen

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any] | str, algorithm: str | None = None) -> KeySet:
        """Load a JWK Set (RFC 7517 §5; a dict, or its JSON text) for verifying.

        Every JWK is loaded as by :meth:`Key.from_jwk` (``algorithm`` applies to each) and
        needs a ``kid``. JWKs that declare another purpose (a ``use`` other than ``"sig"``,
        or ``key_ops`` without ``sign`` or ``verify``) are left out, as RFC 7517 §5 lets a
        set carry keys for other purposes: a token naming one finds no key.

        Raises:
            InvalidKeyError: the document or a signature JWK is malformed, no signature key
                is left, a ``kid`` repeats, or secrets are mixed with asymmetric keys.
        """
        members = [jwk for jwk in jwk_set_members(jwks) if is_signature_key(jwk)]
        return cls(Key.from_jwk(jwk, algorithm) for jwk in members)

    def get(self, kid: object) -> Key:
        """The key called ``kid``. Raises :class:`InvalidKeyError` when there is none."""
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidKeyError("no key matches the token's kid")
        return key

    def rotated(self, new_key: Key, *, keep: int | None = None) -> KeySet:
        """A new set signing with ``new_key`` and still verifying the previous keys.

        ``keep`` bounds how many previous keys stay (newest first); ``None`` keeps all.
        """
        # Newest first: the current key, then the others in the order the set keeps them
        # (a rotated set keeps them newest first).
        ordered = [self.current, *(key for key in self._keys.values() if key is not self.current)]
        previous = [key for key in ordered if key.kid != new_key.kid]
        if keep is not None:
            previous = previous[:keep]
        return KeySet([new_key, *previous], current=new_key.kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWKS: every asymmetric key's public JWK; secrets are never listed."""
        return {"keys": [key.public_jwk() for key in self._keys.values() if not key.is_symmetric]}

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeySet(kids={list(self._keys)!r}, current={self.current.kid!r})"


def as_key(material: Any, algorithm: str) -> Key:
    """Return ``material`` as a :class:`Key` for ``algorithm``, reusing prepared keys.

    Raises:
        AlgorithmNotAllowedError: ``material`` is a :class:`Key` for another algorithm.
        InvalidKeyError: the material cannot serve ``algorithm``.
    """
    if isinstance(material, Key):
        if material.algorithm == algorithm:
            return material
        return material.for_algorithm(algorithm)
    try:
        hash(material)
    except TypeError:  # a dict or a public key object: nothing to cache it by
        return Key(material, algorithm)
    return _cached_key(material, algorithm)


@functools.lru_cache(maxsize=64)
def _cached_key(material: Any, algorithm: str) -> Key:
    # Parsing PEM or deriving a public key costs far more than a signature check; callers
    # that pass the same raw key on every call get the prepared Key back instead.
    return Key(material, algorithm)


# -- preparation ------------------------------------------------------------------------------


def _accepted_algorithms(alg: Algorithm, verifying: Any) -> frozenset[str]:
    if not isinstance(alg, EdDSAAlgorithm):
        return frozenset({alg.name})
    curve = "Ed448" if isinstance(verifying, ed448.Ed448PublicKey) else "Ed25519"
    return frozenset({"EdDSA", curve})


def _prepare(material: Any, alg: Algorithm) -> tuple[Any, Any, frozenset[str]]:
    """Return the material for ``alg``, checked.

    A tuple: signing material or None, verifying material, allowed operations."""
    if isinstance(material, Mapping):
        material = load_jwk(jwk_members(material), alg.name)
    operations = SIGNATURE_OPERATIONS
    if isinstance(material, JWKKey):
        material, operations = material
        if isinstance(alg, HMACAlgorithm) and not isinstance(material, bytes):
            raise InvalidKeyError(f"{alg.name} needs an oct JWK")
    if isinstance(alg, HMACAlgorithm):
        secret = _secret_bytes(material)
        alg.check_key(secret, signing=False)
        return secret, secret, operations
    if isinstance(material, bytes | str):
        material = load_pem_or_der(material.encode() if isinstance(material, str) else material)
    signing = isinstance(material, PrivateKey)
    alg.check_key(material, signing=signing)
    if signing:
        return material, material.public_key(), operations
    return None, material, operations


def _secret_bytes(material: Any) -> bytes:
    if isinstance(material, str):
        material = material.encode()
    if not isinstance(material, bytes):
        raise InvalidKeyError("an HMAC key must be a bytes or str secret")
    if is_key_material(material):
        raise InvalidKeyError("the HMAC secret is key material (PEM, DER, SSH or JWK); refusing it")
    return material
