"""Fixtures for the dataset tests: archives, image trees and a local HTTP server.

Everything is generated in ``tmp_path``; nothing touches the network beyond
127.0.0.1.
"""

from __future__ import annotations

import http.server
import io
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from activation_compare.datasets._download import file_md5

# Written out from the official batches.meta.txt rather than imported from
# datasets.types, so a wrong class list in the package cannot pass its own tests.
CIFAR_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
RECORD = 3073


# --- CIFAR-10 binary archives -------------------------------------------------


@dataclass
class CifarArchive:
    path: Path
    md5: str
    size: int
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]

    def overrides(self) -> dict[str, object]:
        """The md5/size arguments that make this archive the expected one."""
        return {"md5": self.md5, "size": self.size}


def records_of(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The official record layout: label byte, then the R, G and B planes, row-major."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), 3 * 32 * 32)
    return np.concatenate([labels.astype(np.uint8)[:, None], planes], axis=1).tobytes()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def make_cifar_archive(tmp_path: Path) -> Callable[..., CifarArchive]:
    """Build a small archive in the official binary format (20 records per batch).

    ``member_data`` replaces (bytes) or removes (None) members by short name, e.g.
    ``{"data_batch_3.bin": None}``; ``extra`` adds members (name -> bytes).
    """

    def make(
        name: str = "cifar-10-binary.tar.gz",
        records: int = 20,
        member_data: dict[str, bytes | None] | None = None,
        meta: str = "\n".join(CIFAR_NAMES) + "\n\n",
        seed: int = 0,
        folder: Path | None = None,
    ) -> CifarArchive:
        rng = np.random.default_rng(seed)
        train_images = rng.integers(0, 256, (5 * records, 32, 32, 3), dtype=np.uint8)
        train_labels = (np.arange(5 * records) % 10).astype(np.int64)
        test_images = rng.integers(0, 256, (records, 32, 32, 3), dtype=np.uint8)
        test_labels = (np.arange(records)[::-1] % 10).astype(np.int64)
        members: dict[str, bytes | None] = {}
        for batch in range(5):
            part = slice(batch * records, (batch + 1) * records)
            members[f"data_batch_{batch + 1}.bin"] = records_of(
                train_images[part], train_labels[part]
            )
        members["test_batch.bin"] = records_of(test_images, test_labels)
        members["batches.meta.txt"] = meta.encode()
        members["readme.html"] = b"<html>CIFAR-10</html>"
        members.update(member_data or {})
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:gz") as tar:
            directory = tarfile.TarInfo("cifar-10-batches-bin")
            directory.type = tarfile.DIRTYPE
            tar.addfile(directory)
            for member, data in members.items():
                if data is not None:
                    add_bytes(tar, f"cifar-10-batches-bin/{member}", data)
        return CifarArchive(
            path=path,
            md5=file_md5(path),
            size=path.stat().st_size,
            train_images=train_images,
            train_labels=train_labels,
            test_images=test_images,
            test_labels=test_labels,
            class_names=tuple(line for line in meta.splitlines() if line.strip()),
        )

    return make


# --- image folders --------------------------------------------------------------


@dataclass
class ImageTree:
    root: Path  # the folder holding train/ and test/ (or the top folder above them)
    # split -> class -> list of (file name, pixels)
    images: dict[str, dict[str, list[tuple[str, np.ndarray]]]] = field(default_factory=dict)

    def expected(self, split: str, class_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels in the dataset's order: by class, then by file name."""
        pixels, labels = [], []
        for label, cls in enumerate(class_names):
            for _, image in sorted(self.images[split][cls], key=lambda item: item[0]):
                pixels.append(image)
                labels.append(label)
        return np.stack(pixels), np.array(labels, dtype=np.int64)


def save_image(path: Path, pixels: np.ndarray, fmt: str, mode: str | None = None) -> None:
    image = Image.fromarray(pixels)
    if mode is not None:
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "JPEG":
        image.save(path, format="JPEG", quality=95)
    else:
        image.save(path, format=fmt)


def smooth_image(rng: np.random.Generator, label: int) -> np.ndarray:
    """A blocky image (8×8 blocks) that survives JPEG nearly unchanged."""
    blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    blocks[0, 0] = (label * 25, 255 - label * 25, 128)
    return np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))


@pytest.fixture
def make_image_tree(tmp_path: Path) -> Callable[..., ImageTree]:
    """Write ``[top/]train|test/<class>/NNN.<ext>`` images; returns what was written."""

    def make(
        classes: tuple[str, ...] = ("cat", "dog", "ant"),
        per_class: dict[str, int] | None = None,
        fmt: str = "PNG",
        top: str | None = None,
        name: str = "images",
        seed: int = 0,
    ) -> ImageTree:
        counts = per_class or {"train": 3, "test": 2}
        rng = np.random.default_rng(seed)
        base = tmp_path / name
        root = base / top if top else base
        tree = ImageTree(root=base)
        extension = "jpg" if fmt == "JPEG" else fmt.lower()
        for split, count in counts.items():
            tree.images[split] = {}
            for label, cls in enumerate(classes):
                tree.images[split][cls] = []
                # Written in reverse so file order, not creation order, must decide.
                for index in reversed(range(count)):
                    pixels = (
                        smooth_image(rng, label)
                        if fmt == "JPEG"
                        else rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                    )
                    file_name = f"{index:03d}.{extension}"
                    save_image(root / split / cls / file_name, pixels, fmt)
                    if fmt == "JPEG":  # what a decoder actually returns
                        with Image.open(root / split / cls / file_name) as decoded:
                            pixels = np.asarray(decoded.convert("RGB"))
                    tree.images[split][cls].append((file_name, pixels))
        return tree

    return make


def tar_folder(folder: Path, archive: Path, arcname: str | None = None) -> Path:
    """``folder`` as a .tar.gz, its contents at the root (or under ``arcname``)."""
    with tarfile.open(archive, "w:gz") as tar:
        if arcname:
            tar.add(folder, arcname=arcname)
        else:
            for child in sorted(folder.iterdir()):
                tar.add(child, arcname=child.name)
    return archive


@pytest.fixture
def tar_gz() -> Callable[..., Path]:
    return tar_folder


# --- a local HTTP server --------------------------------------------------------


@dataclass
class FileServer:
    base_url: str
    requests: list[str]
    # path -> (body, announced Content-Length or None for the body's length, bytes to send)
    routes: dict[str, tuple[bytes, int | None, int | None]]

    def serve(
        self, path: str, body: bytes, announce: int | None = None, send: int | None = None
    ) -> str:
        """Serve ``body`` at ``path``; ``send`` cuts the transfer short, then closes."""
        self.routes[path] = (body, announce, send)
        return self.base_url + path


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    requests: list[str] = []
    routes: dict[str, tuple[bytes, int | None, int | None]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            requests.append(self.path)
            if self.path not in routes:
                self.send_error(404, "not found")
                return
            body, announce, send = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(announce if announce is not None else len(body)))
            self.end_headers()
            self.wfile.write(body[:send] if send is not None else body)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield FileServer(
            base_url=f"http://127.0.0.1:{server.server_address[1]}",
            requests=requests,
            routes=routes,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) any urlopen call: for 'nothing is downloaded' checks."""
    calls: list[str] = []

    def refuse(request, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(getattr(request, "full_url", str(request)))
        raise AssertionError("no download expected")

    monkeypatch.setattr("urllib.request.urlopen", refuse)
    return calls
