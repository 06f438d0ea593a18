"""Decoding one image file into a 32×32×3 ``uint8`` array, strictly.

This module imports only the standard library, NumPy and Pillow (no relative
imports): worker processes load it straight from its file (see ``_workers``) and
run :func:`serve`. Accepted: PNG and JPEG files of exactly 32×32 pixels in
mode ``RGB``. Anything else is reported (never silently converted): grayscale
(``L``), palette (``P``), RGBA/LA, CMYK, 16-bit and 1-bit images must be
converted to 8-bit RGB by the user, so what is trained on is exactly what is on
disk. The pixel count is checked from the header, before any pixel is decoded.
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import sys

import numpy as np
from PIL import Image

FORMATS = ("PNG", "JPEG")
SIDE = 32
CONVERT_HINT = (
    "convert it to a 32×32 8-bit RGB PNG or JPEG, e.g. with Pillow: "
    "Image.open(f).convert('RGB').resize((32, 32)).save(f)"
)


class ImageProblem(Exception):
    """Why one file is not an acceptable image (the caller adds its name)."""


# Bytes of a file that hold its dimensions: PNG's IHDR is at byte 16; a JPEG's
# frame header follows its APPn segments (EXIF, ICC), which fit in this for any
# sane 32×32 image.
HEADER_BYTES = 64 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (SOF0-SOF15 without DHT C4, JPG C8 and DAC CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def header_size(head: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) read from a PNG or JPEG file's first bytes, else None.

    Nothing is decoded: this reads the PNG IHDR chunk or walks the JPEG marker
    segments up to the frame header, so an archive can be checked image by
    image before any pixel is decompressed.
    """
    if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return "PNG", width, height
    if not head.startswith(b"\xff\xd8"):
        return None
    position = 2
    while position + 4 <= len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # stand-alone markers have no length
            position += 2
            continue
        (length,) = struct.unpack(">H", head[position + 2 : position + 4])
        if marker in _JPEG_SOF:
            if position + 9 > len(head):
                return None
            height, width = struct.unpack(">HH", head[position + 5 : position + 9])
            return "JPEG", width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header: malformed
            return None
        position += 2 + length
    return None


def init_worker(max_pixels: int) -> None:
    """Process-pool initializer: Pillow's own decompression-bomb guard at our cap.

    Only worker processes (ours alone) get this global setting; in-process decoding
    relies on the explicit header check in :func:`decode_one` (and Pillow's default).
    """
    Image.MAX_IMAGE_PIXELS = max_pixels


def _check_pixels(kind: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageProblem(
            f"is {width}×{height} = {width * height:,} pixels, more than the cap of "
            f"{max_pixels:,} (read from its {kind} header, before decoding); expected a "
            f"32×32 RGB image; {CONVERT_HINT}"
        )


# Other formats an image folder may hold by mistake, named by their signature.
_OTHER_FORMATS = (
    (b"GIF87a", "a GIF87a file"),
    (b"GIF89a", "a GIF89a file"),
    (b"BM", "a BMP file"),
    (b"II*\x00", "a TIFF file"),
    (b"MM\x00*", "a TIFF file"),
    (b"%PDF", "a PDF file"),
    (b"PK\x03\x04", "a ZIP file"),
    (b"\x1f\x8b", "a gzip file"),
)


def what_it_is(data: bytes) -> str:
    """What a file that is neither PNG nor JPEG is, without quoting any of its bytes.

    The file may be anyone's (a link to ``/etc/passwd``), and the message ends up
    on the terminal and in MLflow's ``kedro.error`` tag.
    """
    if data[8:12] == b"WEBP" and data.startswith(b"RIFF"):
        return "it is a WebP file"
    for signature, name in _OTHER_FORMATS:
        if data.startswith(signature):
            return f"it is {name}"
    return "its first bytes match neither format's signature"


def decode_one(source: bytes | str, max_pixels: int, max_file_bytes: int) -> np.ndarray:
    """The (32, 32, 3) uint8 pixels of ``source`` (file bytes, or a file path)."""
    if isinstance(source, str):
        try:
            size = os.stat(source).st_size
            if size > max_file_bytes:
                raise ImageProblem(
                    f"is a {size:,}-byte file, more than the cap of {max_file_bytes:,} bytes "
                    f"for one image; expected a small 32×32 PNG or JPEG; {CONVERT_HINT}"
                )
            with open(source, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise ImageProblem(f"cannot be read ({type(exc).__name__}: {exc})") from None
    else:
        data = source
    declared = header_size(data[:HEADER_BYTES])
    if declared is not None:
        _check_pixels(*declared, max_pixels)
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        # Only reached when our own header reader could not find the size.
        raise ImageProblem(
            f"declares more pixels than the cap of {max_pixels:,} ({exc}); expected a "
            f"32×32 RGB image; {CONVERT_HINT}"
        ) from None
    except Image.UnidentifiedImageError:
        # Pillow's message quotes the in-memory buffer ("<_io.BytesIO object at 0x…>"),
        # which tells the user nothing; the caller names the file.
        raise ImageProblem(
            f"cannot be decoded as a PNG or JPEG image ({what_it_is(data)}); expected a "
            "32×32 RGB PNG or JPEG "
            "file — replace or remove it"
        ) from None
    except Exception as exc:  # Pillow raises many types for broken or foreign files
        raise ImageProblem(
            f"cannot be decoded as a PNG or JPEG image ({type(exc).__name__}: {exc}); "
            "expected a 32×32 RGB PNG or JPEG file — replace or remove it"
        ) from None
    with image:
        width, height = image.size
        _check_pixels(image.format or "image", width, height, max_pixels)
        if (width, height) != (SIDE, SIDE):
            raise ImageProblem(
                f"is {width}×{height} {image.format} (mode {image.mode}), expected 32×32 RGB; "
                f"resize it to 32×32: {CONVERT_HINT}"
            )
        if image.mode != "RGB":
            raise ImageProblem(
                f"is a 32×32 {image.format} in mode {image.mode!r}, expected 8-bit 'RGB' "
                f"(grayscale, palette, alpha and CMYK images are not converted silently); "
                f"{CONVERT_HINT}"
            )
        try:
            image.load()
            pixels = np.asarray(image, dtype=np.uint8)
        except Exception as exc:
            raise ImageProblem(
                f"cannot be decoded as a {image.format} image ({type(exc).__name__}: {exc}); "
                "it is probably truncated or corrupt — replace or remove it"
            ) from None
    if pixels.shape != (SIDE, SIDE, 3):  # pragma: no cover - guarded by the checks above
        raise ImageProblem(f"decoded to shape {pixels.shape}, expected (32, 32, 3)")
    return pixels


def decode_batch(
    sources: list[bytes | str], max_pixels: int, max_file_bytes: int
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode ``sources`` in order; a failed one stays zero and is listed as (index, why)."""
    images = np.zeros((len(sources), SIDE, SIDE, 3), dtype=np.uint8)
    problems: list[tuple[int, str]] = []
    for index, source in enumerate(sources):
        try:
            images[index] = decode_one(source, max_pixels, max_file_bytes)
        except ImageProblem as exc:
            problems.append((index, str(exc)))
    return images, problems


# --- the worker side of the pipe protocol (no pickle) ------------------------
#
# Request:  REQUEST header (kind b"DATA" or b"PATH", item count, payload bytes),
#           then the item lengths as little-endian uint32, then the payload.
# Response: RESPONSE header (item count, JSON length), the JSON list of
#           [index, problem], then count × 32×32×3 pixel bytes.
REQUEST = struct.Struct("<4sII")
RESPONSE = struct.Struct("<II")
IMAGE_BYTES = SIDE * SIDE * 3


def read_exact(stream, size: int) -> bytes:  # type: ignore[no-untyped-def]
    """Exactly ``size`` bytes from ``stream``, or EOFError."""
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            raise EOFError("the pipe closed mid-message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def encode_request(items: list[bytes | str]) -> bytes:
    """One request holding ``items``: all file bytes, or all file paths."""
    paths = bool(items) and isinstance(items[0], str)
    blobs = [
        item.encode("utf-8", "surrogateescape") if isinstance(item, str) else item for item in items
    ]
    lengths = struct.pack(f"<{len(blobs)}I", *(len(blob) for blob in blobs))
    payload = b"".join(blobs)
    header = REQUEST.pack(b"PATH" if paths else b"DATA", len(blobs), len(payload))
    return header + lengths + payload


def read_request(stream) -> list[bytes | str] | None:  # type: ignore[no-untyped-def]
    """The next request's items, or None at end of input."""
    header = stream.read(REQUEST.size)
    if not header:
        return None
    if len(header) < REQUEST.size:
        header += read_exact(stream, REQUEST.size - len(header))
    kind, count, size = REQUEST.unpack(header)
    lengths = struct.unpack(f"<{count}I", read_exact(stream, 4 * count))
    payload = read_exact(stream, size)
    items: list[bytes | str] = []
    offset = 0
    for length in lengths:
        blob = payload[offset : offset + length]
        offset += length
        items.append(blob.decode("utf-8", "surrogateescape") if kind == b"PATH" else blob)
    return items


def encode_response(images: np.ndarray, problems: list[tuple[int, str]]) -> bytes:
    text = json.dumps(problems).encode("utf-8")
    return RESPONSE.pack(len(images), len(text)) + text + np.ascontiguousarray(images).tobytes()


def read_response(stream) -> tuple[np.ndarray, list[tuple[int, str]]]:  # type: ignore[no-untyped-def]
    count, text_size = RESPONSE.unpack(read_exact(stream, RESPONSE.size))
    problems = [(int(index), str(why)) for index, why in json.loads(read_exact(stream, text_size))]
    pixels = read_exact(stream, count * IMAGE_BYTES)
    images = np.frombuffer(pixels, dtype=np.uint8).reshape(count, SIDE, SIDE, 3)
    return images, problems


def serve(argv: list[str]) -> None:
    """Worker main loop: decode requests from stdin, answer on stdout, until EOF."""
    max_pixels, max_file_bytes = int(argv[0]), int(argv[1])
    init_worker(max_pixels)
    # Ctrl-C is the parent's to handle: it closes our stdin, and we exit at EOF.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol
    while (items := read_request(requests)) is not None:
        images, problems = decode_batch(items, max_pixels, max_file_bytes)
        answers.write(encode_response(images, problems))
        answers.flush()
