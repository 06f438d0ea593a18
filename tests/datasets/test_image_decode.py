"""Decoding single images and the worker pipe protocol."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from activation_compare.datasets import _decode
from activation_compare.datasets._workers import DecoderPool


def png_bytes(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(buffer, format="PNG")
    return buffer.getvalue()


PIXELS = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def test_decode_one_from_bytes_and_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = png_bytes(PIXELS)
    np.testing.assert_array_equal(_decode.decode_one(data, 10_000, 10_000), PIXELS)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    np.testing.assert_array_equal(_decode.decode_one(str(path), 10_000, 10_000), PIXELS)


def test_decode_one_problems(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(_decode.ImageProblem, match="cannot be read .*FileNotFoundError"):
        _decode.decode_one(str(tmp_path / "missing.png"), 10_000, 10_000)
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 2_000)
    with pytest.raises(_decode.ImageProblem, match="2,000-byte file, more than the cap of 1,000"):
        _decode.decode_one(str(big), 10_000, 1_000)
    with pytest.raises(_decode.ImageProblem, match="mode 'LA'"):
        _decode.decode_one(png_bytes(PIXELS, "LA"), 10_000, 10_000)


def test_protocol_roundtrip() -> None:
    items: list[bytes | str] = [b"abc", b"", b"\0" * 5]
    request = io.BytesIO(
        _decode.encode_request(items) + _decode.encode_request(["/a/b.png", "ü.jpg"])
    )
    assert _decode.read_request(request) == items
    assert _decode.read_request(request) == ["/a/b.png", "ü.jpg"]
    assert _decode.read_request(request) is None
    images = np.arange(2 * 32 * 32 * 3, dtype=np.uint64).astype(np.uint8).reshape(2, 32, 32, 3)
    response = io.BytesIO(_decode.encode_response(images, [(1, "is broken")]))
    got, problems = _decode.read_response(response)
    np.testing.assert_array_equal(got, images)
    assert problems == [(1, "is broken")]


def test_decoder_pool_end_to_end() -> None:
    pool = DecoderPool(workers=2, max_pixels=10_000, max_file_bytes=10_000)
    try:
        futures = [
            pool.submit([png_bytes(PIXELS), b"junk"]),
            pool.submit([png_bytes(PIXELS[::-1])]),
        ]
        (first, first_problems), (second, second_problems) = (f.result(timeout=60) for f in futures)
    finally:
        pool.close()
    np.testing.assert_array_equal(first[0], PIXELS)
    assert first_problems[0][0] == 1 and "cannot be decoded" in first_problems[0][1]
    np.testing.assert_array_equal(second[0], PIXELS[::-1])
    assert second_problems == []
