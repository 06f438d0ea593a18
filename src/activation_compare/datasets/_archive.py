"""Reading untrusted ``.tar.gz`` archives safely, without extracting them to disk.

Both the CIFAR-10 binary reader and the image-folder reader go through
:func:`iter_archive`. It streams the archive once, front to back, and refuses:

* members whose name is absolute (``/x``, ``C:x``), contains a ``..`` component
  or a backslash;
* symbolic and hard links, character and block devices, FIFOs, sparse files and
  any other non-regular, non-directory member;
* more than ``limits.max_members`` members, a member larger than
  ``limits.max_member_bytes``, or more than ``limits.max_total_bytes`` of
  (declared) uncompressed file data in all: decompression bombs. The decompressed
  stream itself is also capped, so padding or oversized tar headers cannot make
  it run away either.

Nothing is ever written to disk: members are read into memory, one at a time,
only when the caller asks for them. Truncated or corrupt gzip/tar data
(``tarfile.TarError``, ``zlib.error``, ``EOFError``, ``OSError``) is re-raised as
:class:`CorruptArchiveError` naming the archive.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import (
    ArchiveTooLargeError,
    CorruptArchiveError,
    SourceNotFoundError,
    UnsafeArchiveError,
)

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
# Tar headers, pax/GNU long-name records and padding, per member, at most (generous).
_HEADER_ALLOWANCE = 2048


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps that bound the work and memory an untrusted archive can cause."""

    max_members: int
    max_total_bytes: int
    max_member_bytes: int

    @property
    def max_stream_bytes(self) -> int:
        """How many decompressed bytes the tar stream may have in all."""
        return self.max_total_bytes + _HEADER_ALLOWANCE * (self.max_members + 16)


@dataclass(frozen=True)
class ArchiveEntry:
    """One member: its normalised relative name, whether it is a folder, its data."""

    name: str
    is_dir: bool
    size: int
    # The member's bytes when the caller asked for them (``want(name)``), else None.
    data: bytes | None


def _mib(n: int) -> str:
    return f"{n:,} bytes" if n < 2**20 else f"{n / 2**20:,.1f} MiB"


def normalise_member_name(archive: Path, raw: str) -> str:
    """``raw`` as a clean relative POSIX path, or raise :class:`UnsafeArchiveError`.

    Returns ``""`` for the archive's root folder (``.`` or ``./``).
    """
    if raw.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(raw):
        raise UnsafeArchiveError(
            f"Refusing archive '{archive}': member {raw!r} has an absolute path; "
            "expected only paths relative to the archive's root"
        )
    if "\\" in raw or "\x00" in raw:
        raise UnsafeArchiveError(
            f"Refusing archive '{archive}': member {raw!r} contains a backslash or NUL; "
            "expected plain relative paths with '/' separators"
        )
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"Refusing archive '{archive}': member {raw!r} contains a '..' component "
            "(path traversal); expected only paths inside the archive's root"
        )
    return "/".join(parts)


_PLAIN_TYPES = frozenset((tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE))


def _member_kind_problem(member: tarfile.TarInfo) -> str | None:
    if member.type in _PLAIN_TYPES:  # the common case, checked first
        return None
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a FIFO"
    if member.issparse():
        return "is a sparse file"
    if not (member.isreg() or member.isdir()):
        return f"has the unsupported tar type {member.type!r}"
    return None


class _BoundedReader(io.RawIOBase):
    """A forward-reading view of a decompressed stream that stops at a byte cap.

    ``tarfile`` asks for ``seek``/``tell``; seeking to the current position is
    free, seeking forward reads and discards (through the cap).
    """

    def __init__(self, stream: io.BufferedIOBase, limits: ArchiveLimits, archive: Path) -> None:
        super().__init__()
        self._stream = stream
        self._cap = limits.max_stream_bytes
        # No single read (a member's data, a pax header) may exceed the per-file cap.
        self._max_read = limits.max_member_bytes + (1 << 20)
        self._archive = archive
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def _too_large(self) -> ArchiveTooLargeError:
        return ArchiveTooLargeError(
            f"Refusing archive '{self._archive}': it decompresses to more than "
            f"{_mib(self._cap)} or holds a header or file larger than "
            f"{_mib(self._max_read)}, the caps for this source (a decompression bomb?); "
            "expected a smaller archive"
        )

    def read(self, size: int = -1) -> bytes:
        allowed = min(self._cap - self._pos, self._max_read)
        if size is None or size < 0 or size > allowed:
            # Ask for one byte more than allowed: getting it proves a cap is exceeded.
            data = self._stream.read(allowed + 1)
            if len(data) > allowed:
                raise self._too_large()
        else:
            data = self._stream.read(size)
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("only SEEK_SET and SEEK_CUR are supported")
        if offset > self._cap:
            raise self._too_large()
        if offset >= self._pos:
            remaining = offset - self._pos
            while remaining:
                chunk = self._stream.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
                self._pos += len(chunk)
        else:  # a backward seek: tarfile does not need it in a front-to-back scan
            self._pos = self._stream.seek(offset)
        return self._pos

    def drain(self) -> None:
        """Read to the end, so that gzip checks its CRC and a truncated tail is noticed."""
        while self.read(1 << 20):
            pass


def _corrupt(archive: Path, label: str, exc: BaseException) -> CorruptArchiveError:
    detail = str(exc) or type(exc).__name__
    return CorruptArchiveError(
        f"{label} '{archive}' is corrupt or truncated ({type(exc).__name__}: {detail}); "
        "expected a complete .tar.gz archive — if it was downloaded or copied, delete it "
        "and download or copy it again"
    )


def iter_archive(
    archive: Path,
    limits: ArchiveLimits,
    want: Callable[[str], bool],
    *,
    label: str = "Archive",
    head_bytes: int | None = None,
) -> Iterator[ArchiveEntry]:
    """Yield every member of the (gzipped or plain) tar ``archive``, checked.

    Args:
        archive: the ``.tar.gz``/``.tgz`` (or plain ``.tar``) file.
        limits: the caps; exceeding one raises :class:`ArchiveTooLargeError`.
        want: called with each regular file's normalised name; the member's bytes
            are read (and returned in ``ArchiveEntry.data``) only when it is true.
        label: how messages call the archive (e.g. "CIFAR-10 archive").
        head_bytes: read at most this many bytes of each wanted member (its header),
            so a survey of the archive holds one small buffer at a time.

    The generator reads the whole archive to its end (also when nothing more is
    wanted) so the gzip CRC is checked.
    """
    try:
        raw = open(archive, "rb")  # noqa: SIM115 - closed in the finally below
    except FileNotFoundError:
        raise SourceNotFoundError(f"{label} '{archive}' does not exist") from None
    except OSError as exc:
        raise CorruptArchiveError(f"{label} '{archive}' cannot be read ({exc})") from None
    try:
        magic = raw.read(2)
        raw.seek(0)
        stream: io.BufferedIOBase
        if magic == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        else:
            stream = raw
        bounded = _BoundedReader(stream, limits, archive)
        count = 0
        total = 0
        try:
            with tarfile.open(fileobj=bounded, mode="r:") as tar:  # type: ignore[call-overload]
                for member in tar:
                    count += 1
                    if count > limits.max_members:
                        raise ArchiveTooLargeError(
                            f"Refusing archive '{archive}': it has more than "
                            f"{limits.max_members:,} members, the cap for this source "
                            "(a decompression bomb?); expected fewer files"
                        )
                    name = normalise_member_name(archive, member.name)
                    problem = _member_kind_problem(member)
                    if problem:
                        raise UnsafeArchiveError(
                            f"Refusing archive '{archive}': member {member.name!r} {problem}; "
                            "expected only regular files and folders"
                        )
                    if member.isdir():
                        if name:
                            yield ArchiveEntry(name, True, 0, None)
                        continue
                    if member.size > limits.max_member_bytes:
                        raise ArchiveTooLargeError(
                            f"Refusing archive '{archive}': member {member.name!r} is "
                            f"{_mib(member.size)} uncompressed, more than the cap of "
                            f"{_mib(limits.max_member_bytes)} per file for this source"
                        )
                    total += member.size
                    if total > limits.max_total_bytes:
                        raise ArchiveTooLargeError(
                            f"Refusing archive '{archive}': its files hold more than "
                            f"{_mib(limits.max_total_bytes)} uncompressed, the cap for this "
                            "source (a decompression bomb?); expected a smaller archive"
                        )
                    data = None
                    if want(name):
                        handle = tar.extractfile(member)
                        assert handle is not None  # a regular file always has one
                        data = handle.read(
                            member.size if head_bytes is None else min(head_bytes, member.size)
                        )
                        if head_bytes is None and len(data) != member.size:
                            raise tarfile.ReadError(
                                f"member {member.name!r} ends after {len(data)} of "
                                f"{member.size} bytes"
                            )
                    yield ArchiveEntry(name, False, member.size, data)
            bounded.drain()
        except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
            raise _corrupt(archive, label, exc) from None
        if count == 0:
            raise CorruptArchiveError(
                f"{label} '{archive}' holds no members; expected a tar archive with files"
            )
    finally:
        raw.close()
