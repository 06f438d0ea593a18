"""Atomic, verified downloads and file checksums.

:func:`download` streams a URL into a temporary file next to the destination,
checks its length, size and MD5, and only then moves it into place with
:func:`os.replace`. Whatever goes wrong (network error, early close, wrong
checksum, Ctrl-C), the temporary file is removed and nothing appears under the
final name.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ._files import create_temporary
from .errors import ChecksumError, DownloadError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def file_md5(path: Path) -> str:
    """The hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, destination: Path, *, size: int, md5: str, timeout: float = 60.0) -> None:
    """Download ``url`` to ``destination``, verified against ``size`` and ``md5``.

    Raises:
        DownloadError: the request failed or the transfer ended early.
        ChecksumError: the complete download has the wrong size or MD5.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temporary(destination.parent, prefix=f".{destination.name}.", suffix=".part")
    advice = (
        f"check your network connection and rerun, or download {url} yourself and set "
        "data.path to the file"
    )
    try:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        with os.fdopen(fd, "wb") as out:
            logger.info("Downloading %s to %s", url, destination)
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "activation-compare"})
                with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                    header = response.headers.get("Content-Length")
                    announced = int(header) if header and header.isdigit() else None
                    with tqdm(
                        total=announced or size,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=f"Downloading {destination.name}",
                        file=sys.stderr,
                        mininterval=0.5,
                    ) as progress:
                        while chunk := response.read(_CHUNK):
                            received += len(chunk)
                            if received > size:
                                raise ChecksumError(
                                    f"Download of {url} sent more than the expected {size:,} "
                                    f"bytes; nothing was saved to '{destination}'. Check the "
                                    "url (and the expected size/md5), then rerun"
                                )
                            out.write(chunk)
                            digest.update(chunk)
                            progress.update(len(chunk))
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                raise DownloadError(
                    f"Download of {url} failed after {received:,} of {size:,} bytes "
                    f"({type(exc).__name__}: {exc}); nothing was saved to '{destination}'. "
                    f"What to do: {advice}"
                ) from exc
            if announced is not None and received != announced:
                raise DownloadError(
                    f"Download of {url} was interrupted: received {received:,} of the "
                    f"{announced:,} bytes the server announced; nothing was saved to "
                    f"'{destination}'. What to do: {advice}"
                )
            if received != size:
                raise ChecksumError(
                    f"Download of {url} has {received:,} bytes, expected {size:,}; nothing "
                    f"was saved to '{destination}'. What to do: {advice}"
                )
            actual = digest.hexdigest()
            if actual != md5.lower():
                raise ChecksumError(
                    f"Download of {url} has MD5 {actual}, expected {md5}; nothing was saved "
                    f"to '{destination}'. What to do: rerun; if it happens again the file "
                    "on the server differs from the expected one (check the url and md5)"
                )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, destination)
        logger.info("Downloaded and verified %s (%s bytes, md5 %s)", destination, f"{size:,}", md5)
    finally:
        tmp.unlink(missing_ok=True)
