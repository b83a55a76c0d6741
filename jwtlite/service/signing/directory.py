"""The key directory (``JWTLITE_KEYS_DIR``): the signing-key ring on disk, shared by instances.

Layout (the directory and every file in it are private to their owner, mode 0700/0600, and
that owner is the user jwtlite runs as: readers and writers refuse anything else)::

    keys/
      ring.json      which key is current, the keep window, each key's times
      <kid>.key      one key file per key, in the key-file format of keyfile.py
      pepper         the throttle and CSRF secret: made once, never rotated
      .lock          flock()ed by whoever changes the ring (rotate-key, a first start)
      .tmp-*         a write in progress (or left by a crash): ignored, removed at rotation

``ring.json`` is described (and parsed) in :mod:`jwtlite.service.signing.ringfile`.

Every file is written to a ``.tmp-*`` file, fsynced, renamed into place and the directory
fsynced, so a reader on another instance sees the old ring or the new one, never half of
one. A rotation writes the new key file first, then ``ring.json`` (the one atomic switch),
then deletes pruned key files: a key file ``ring.json`` does not name is tolerated (a
rotation in progress), anything else unknown is garbage and refused. Failing to delete
after the switch is a warning: the rotation happened. Every file is opened without
following a link and without blocking, and must be a regular file of bounded size.

A key is bound to the one algorithm ``ring.json`` gives it. ``kidless`` marks the HMAC key
that signed without a ``kid`` while it was the only key (simplejwt's exact header): it keeps
verifying tokens without a ``kid`` until it is pruned. Asymmetric keys are named by their
RFC 7638 thumbprint, HMAC keys by a random id (a thumbprint of a secret would leak).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from jwtlite.errors import InvalidKeyError
from jwtlite.keys import Key
from jwtlite.service.signing.keyfile import key_file_content, load_key_file, read_private_file
from jwtlite.service.signing.ringfile import MANIFEST, KeyRecord, Manifest, is_kid, parse_manifest

__all__ = ["MAX_ACTIVATE_AFTER", "KeyDirectory", "RingFiles", "Rotation", "key_pepper"]

#: The longest a rotation may stage its key (``rotate-key --activate-after``): a day is
#: plenty for JWKS caches, and a staged key must not sit unactivated for years.
MAX_ACTIVATE_AFTER = 86400

PEPPER = "pepper"
LOCK = ".lock"
KEY_SUFFIX = ".key"
TEMP_PREFIX = ".tmp-"
_MAX_MANIFEST_BYTES = 1 << 20
_READ_ATTEMPTS = 5

Stamp = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class RingFiles:
    """What one consistent read of the directory found.

    The manifest, its keys, the pepper, and the stamp of ``ring.json`` they belong to."""

    stamp: Stamp
    manifest: Manifest
    keys: dict[str, Key]
    pepper: bytes


@dataclass(frozen=True, slots=True)
class Rotation:
    """The outcome of :meth:`KeyDirectory.rotate`, all of it decided under the lock.

    What ``rotate-key`` prints: the new kid and its algorithm, the kid that was signing until
    now (None for an empty directory's first key), the kids it retired and pruned, the keep
    window ``ring.json`` now records, when the new key starts signing, the clean-up failures met
    after the switch (warnings: the rotation happened), and the staged key it cancelled (retired
    before it ever signed), if any."""

    kid: str
    algorithm: str
    previous: str | None
    retired: tuple[str, ...]
    pruned: tuple[str, ...]
    keep_seconds: int
    activates: int
    warnings: tuple[str, ...] = ()
    cancelled: str | None = None


def key_pepper(key: Key) -> bytes:
    """The throttle and CSRF secret of a single-key deployment, derived from its key.

    It is derived as it always was, so an import into a key directory keeps the counters and
    CSRF tokens."""
    return key.secret() if key.is_symmetric else key.private_pem()


class KeyDirectory:
    """The key directory at ``path``: read it consistently, create it, rotate it.

    Every method raises :class:`~jwtlite.errors.InvalidKeyError` with a message naming the
    file and the problem (never a key) when the directory cannot be used.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def stamp(self) -> Stamp | None:
        """A cheap identity of ``ring.json`` (one ``stat``), or None when there is none.

        It changes with every write, since every write is a rename of a new file."""
        try:
            st = os.stat(os.path.join(self.path, MANIFEST))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InvalidKeyError(f"cannot read key directory {self.path}: {exc.strerror}") from exc
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self) -> RingFiles:
        """Read the ring: check the directory, parse ``ring.json``, load every key it names.

        A rotation running meanwhile (``ring.json`` replaced during the read, a pruned key
        file gone) is met by reading again.

        Raises:
            InvalidKeyError: missing, exposed to other users, garbage, a truncated or foreign
                key, or a malformed ``ring.json``.
        """
        for attempt in range(_READ_ATTEMPTS):
            before = self.stamp()
            try:
                files = self._read_once(before)
            except InvalidKeyError:
                if attempt + 1 < _READ_ATTEMPTS and self.stamp() != before:
                    continue
                raise
            if self.stamp() == files.stamp:
                return files
        raise InvalidKeyError(f"key directory {self.path} keeps changing while being read")

    def ensure(
        self, algorithm: str, *, now: int, keep_seconds: int, seed: Key | None = None
    ) -> Rotation | None:
        """Give an empty (or missing) directory its first key.

        The key is ``seed`` (an imported key file, whose pepper is kept), else a new key for
        ``algorithm``; ``keep_seconds`` is recorded as the ring's keep window. Does nothing
        (returns None) when the directory already holds a ring.

        Raises:
            InvalidKeyError: the directory cannot be created or written, or ``seed`` is
                given for a directory that already holds a ring.
        """
        if seed is None and self.stamp() is not None:
            return None  # the usual start: no lock, so a read-only directory serves too
        self._make_directory()
        with self._locked():
            if self.stamp() is not None:
                if seed is not None:
                    raise InvalidKeyError(
                        f"key directory {self.path} already holds a ring; "
                        "import a key file into an empty directory only"
                    )
                return None
            return self._create_locked(algorithm, now=now, keep_seconds=keep_seconds, seed=seed)

    def rotate(
        self,
        algorithm: str | None,
        *,
        now: int,
        keep_seconds: int,
        first_algorithm: str | None = None,
        activate_after: int = 0,
    ) -> Rotation:
        """Make a new current key, retire the current one, and prune keys past the keep window.

        The keys pruned are those retired more than the keep window ago. The one place a
        rotation is applied.

        Everything is decided under the directory's lock, from what it holds then: the
        previous key, the algorithm (``algorithm``, else the current key's), the keep
        window (the larger of the recorded one and ``keep_seconds``; the larger is
        recorded). An empty directory gets its first key (``algorithm``, else
        ``first_algorithm``) and nothing is retired. Failures to delete pruned key files
        or leftovers after ``ring.json`` was switched are returned as warnings.

        With ``activate_after`` (at most :data:`MAX_ACTIVATE_AFTER`) the new key is
        published (and verifies) at once but signs only ``activate_after`` seconds from
        ``now``; the key signing now signs until then (it is retired at that time).

        A rotation while a key is staged (waiting for its activation) cancels that key: it
        is retired at ``now`` without ever having signed, and the key signing now is the
        one the new key takes over from (``previous``), at once or after ``activate_after``.
        So ``rotate-key`` followed by ``rotate-key --drop <old kid>`` takes a leaked key out
        of service whatever was staged.

        Raises:
            InvalidKeyError: the directory holds no usable ring or cannot be written, or
                ``activate_after`` is out of range.
        """
        if not 0 <= activate_after <= MAX_ACTIVATE_AFTER:
            raise InvalidKeyError(
                f"a key may be staged 0 to {MAX_ACTIVATE_AFTER} s, not {activate_after} s"
            )
        self._make_directory()
        with self._locked():
            if self.stamp() is None:
                first = algorithm or first_algorithm
                if first is None:
                    raise InvalidKeyError(f"key directory {self.path} holds no ring yet")
                return self._create_locked(first, now=now, keep_seconds=keep_seconds, seed=None)
            files = self.read()
            old = files.manifest
            # Never back in time (this host's clock may be behind the one that made the
            # current key): that key would look staged (not active yet) and be cancelled.
            now = max(now, *(rec.created for rec in old.records))
            signer = old.signing_kid(now)
            cancelled = old.current if signer != old.current else None
            keep = max(old.keep_seconds, keep_seconds)
            if algorithm is None:
                algorithm = files.keys[old.current].algorithm
            activates = now + activate_after
            record, key = _new_record(Key.generate(algorithm), now, kidless=False)
            record = dataclasses.replace(record, activates=activates)
            kept: list[KeyRecord] = [record]
            retired: list[str] = []
            pruned: list[str] = []
            for previous in old.records:
                rec = previous
                if rec.kid == cancelled:
                    # Staged, never signed: activates and is retired now (now >= created).
                    rec = dataclasses.replace(rec, activates=now, retired=now)
                    retired.append(rec.kid)
                elif rec.kid == signer:
                    rec = dataclasses.replace(rec, retired=activates)
                    retired.append(rec.kid)
                if rec.retired is not None and rec.retired + keep < now:
                    pruned.append(rec.kid)
                else:
                    kept.append(rec)
            self._write(record.kid + KEY_SUFFIX, key_file_content(key))
            self._write(MANIFEST, Manifest(record.kid, tuple(kept), keep).to_json())
            # The rotation happened: from here on a failure is a warning, not an error.
            warnings = self._remove_files(
                [kid + KEY_SUFFIX for kid in pruned], {rec.kid for rec in kept}
            )
            return Rotation(
                record.kid,
                record.algorithm,
                signer,
                tuple(retired),
                tuple(pruned),
                keep,
                activates,
                tuple(warnings),
                cancelled,
            )

    def drop(self, kid: str, *, now: int) -> tuple[str, ...]:
        """Remove the retired key ``kid`` at once (a compromised key); return clean-up warnings.

        Its tokens stop verifying as soon as each instance reloads.

        Raises:
            InvalidKeyError: no such key, the current key, a key that still signs (until a
                staged key activates), or the directory cannot be written.
        """
        self._check_directory()
        with self._locked():
            files = self.read()
            old = files.manifest
            record = next((rec for rec in old.records if rec.kid == kid), None)
            if record is None:
                raise InvalidKeyError(f"key directory {self.path} holds no key {kid!r}")
            if record.retired is None:
                raise InvalidKeyError(
                    f"{kid} is the current key; rotate first (rotate-key), then drop it"
                )
            if record.retired > now:
                raise InvalidKeyError(
                    f"{kid} signs until {record.retired}, when the staged key takes over; "
                    "rotate first (rotate-key cancels the staged key), then drop it"
                )
            kept = tuple(rec for rec in old.records if rec.kid != kid)
            self._write(MANIFEST, Manifest(old.current, kept, old.keep_seconds).to_json())
            return tuple(self._remove_files([kid + KEY_SUFFIX], {rec.kid for rec in kept}))

    def _create_locked(
        self, algorithm: str, *, now: int, keep_seconds: int, seed: Key | None
    ) -> Rotation:
        self._check_directory()
        key = seed if seed is not None else Key.generate(algorithm)
        record, key = _new_record(key, now, kidless=key.is_symmetric)
        pepper = key_pepper(key) if seed is not None else secrets.token_bytes(32)
        self._write(PEPPER, _b64(pepper))
        self._write(record.kid + KEY_SUFFIX, key_file_content(key))
        self._write(MANIFEST, Manifest(record.kid, (record,), keep_seconds).to_json())
        return Rotation(record.kid, record.algorithm, None, (), (), keep_seconds, record.activates)

    # -- reading --------------------------------------------------------------------------

    def _read_once(self, stamp: Stamp | None) -> RingFiles:
        self._check_directory()
        if stamp is None:
            raise InvalidKeyError(f"key directory {self.path} holds no {MANIFEST}")
        manifest = parse_manifest(self._read_private(MANIFEST, _MAX_MANIFEST_BYTES), self.path)
        for name in sorted(os.listdir(self.path)):
            if not _is_ours(name):
                raise InvalidKeyError(
                    f"key directory {self.path} holds a foreign file {name!r}; "
                    "keep only jwtlite's key files there"
                )
        keys: dict[str, Key] = {}
        for rec in manifest.records:
            path = os.path.join(self.path, rec.kid + KEY_SUFFIX)
            try:
                keys[rec.kid] = load_key_file(
                    path, rec.algorithm, follow_symlinks=False, owner=os.geteuid()
                )
            except FileNotFoundError:
                raise InvalidKeyError(f"key file {path} named by {MANIFEST} is missing") from None
            keys[rec.kid].kid = rec.kid
            if not keys[rec.kid].can_sign:
                raise InvalidKeyError(f"key file {path} holds no private key")
        pepper_text = self._read_private(PEPPER, 4096)
        try:
            pepper = base64.urlsafe_b64decode(pepper_text.strip() + b"==")
        except ValueError:
            pepper = b""
        if len(pepper) < 32:
            raise InvalidKeyError(f"{os.path.join(self.path, PEPPER)} is not a usable secret")
        assert stamp is not None  # noqa: S101 - checked above
        return RingFiles(stamp, manifest, keys, pepper)

    def _check_directory(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise InvalidKeyError(f"key directory {self.path} does not exist") from None
        except OSError as exc:
            raise InvalidKeyError(f"cannot read key directory {self.path}: {exc.strerror}") from exc
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidKeyError(f"{self.path} is not a directory")
        _check_owner(self.path, st, "key directory")
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InvalidKeyError(
                f"key directory {self.path} is accessible to other users "
                f"(mode {stat.S_IMODE(st.st_mode):o}); run chmod 700 on it"
            )

    def _read_private(self, name: str, limit: int) -> bytes:
        path = os.path.join(self.path, name)
        try:
            return read_private_file(
                path, limit=limit, what="", follow_symlinks=False, owner=os.geteuid()
            )
        except FileNotFoundError:
            raise InvalidKeyError(f"{path} is missing") from None

    # -- writing --------------------------------------------------------------------------

    def _make_directory(self) -> None:
        try:
            os.mkdir(self.path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise InvalidKeyError(
                f"cannot create key directory {self.path}: {exc.strerror}"
            ) from exc
        self._check_directory()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        path = os.path.join(self.path, LOCK)
        try:
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            raise InvalidKeyError(f"cannot lock {path}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise InvalidKeyError(f"{path} is not a regular file")
            _check_owner(path, st, "")
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, name: str, data: bytes) -> None:
        """Write ``name`` atomically and durably.

        A private temporary file, synced, renamed, and the directory synced so the rename
        survives a crash."""
        temp = os.path.join(self.path, TEMP_PREFIX + secrets.token_hex(8))
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temp, os.path.join(self.path, name))
            directory = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise InvalidKeyError(f"cannot write {name} in {self.path}: {exc.strerror}") from exc

    def _remove_files(self, names: list[str], kids: set[str]) -> list[str]:
        """Delete ``names`` and the debris; return what could not be deleted, one message each.

        The debris: temporary files, and key files no kept kid names."""
        # Under the lock, nobody else writes: temporary files and unnamed keys are debris.
        warnings: list[str] = []
        try:
            listing = os.listdir(self.path)
        except OSError as exc:
            return [f"cannot list {self.path} to remove leftovers: {exc.strerror}"]
        for name in listing:
            unnamed = name.endswith(KEY_SUFFIX) and name[: -len(KEY_SUFFIX)] not in kids
            if name.startswith(TEMP_PREFIX) or unnamed:
                names.append(name)
        for name in dict.fromkeys(names):
            path = os.path.join(self.path, name)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                warnings.append(f"cannot remove {path}: {exc.strerror}")
        return warnings


def _check_owner(path: str, st: os.stat_result, what: str) -> None:
    # Another user's directory or file is refused, by readers and writers alike: its owner
    # could rename our files away (a new ring, a new pepper), and files we wrote there
    # could be unreadable to the instances that run as that owner.
    uid = os.geteuid()
    if st.st_uid != uid:
        name = f"{what} {path}" if what else path
        raise InvalidKeyError(
            f"{name} is owned by uid {st.st_uid}, not by this user (uid {uid}); "
            f"run jwtlite (serve, rotate-key) as the directory's owner, uid {st.st_uid}"
        )


def _is_ours(name: str) -> bool:
    if name in (MANIFEST, PEPPER, LOCK) or name.startswith(TEMP_PREFIX):
        return True
    return name.endswith(KEY_SUFFIX) and is_kid(name[: -len(KEY_SUFFIX)])


def _new_record(key: Key, now: int, *, kidless: bool) -> tuple[KeyRecord, Key]:
    # Asymmetric keys by their thumbprint (what today's tokens carry); secrets by a random id.
    kid = secrets.token_urlsafe(12) if key.is_symmetric else key.thumbprint()
    key.kid = kid
    return KeyRecord(kid, key.algorithm, now, now, None, kidless), key


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=") + b"\n"
