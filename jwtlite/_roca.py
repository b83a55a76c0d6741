"""The ROCA fingerprint (CVE-2017-15361): RSA moduli made by Infineon's weak key generator.

Nemec et al., "The Return of Coppersmith's Attack" (ACM CCS 2017), show that the library
drew every prime as ``k * M + (65537 ** a mod M)``, with ``M`` a primorial; so a modulus, the
product of two such primes, is a power of 65537 modulo each small prime dividing ``M``. Every
ROCA modulus passes that test for the 38 odd primes up to 167 (the published fingerprint, as
in the authors' detector crocs-muni/roca); a random modulus passes it with a probability of
about 4e-9 (the product over those primes of the subgroup's share of the residues), so a good
key is refused about once in 240 million.

The check costs 38 reductions by a small number; nothing here is secret.
"""

from __future__ import annotations

__all__ = ["has_roca_fingerprint"]

_GENERATOR = 65537
# The odd primes up to 167: the small factors of the primorial M for every key size.
_PRIMES = tuple(n for n in range(3, 168, 2) if all(n % d for d in range(3, n, 2)))


def _subgroup_mask(prime: int) -> int:
    """Bit ``r`` is set when ``r`` is a power of 65537 modulo ``prime``."""
    mask = 0
    element = 1
    while not mask >> element & 1:
        mask |= 1 << element
        element = element * _GENERATOR % prime
    return mask


# Worked out once at import from the generator, rather than copied as magic numbers.
_MASKS = tuple((prime, _subgroup_mask(prime)) for prime in _PRIMES)


def has_roca_fingerprint(modulus: int) -> bool:
    """Whether ``modulus`` has the structure of a key from the vulnerable generator."""
    return all(mask >> modulus % prime & 1 for prime, mask in _MASKS)
