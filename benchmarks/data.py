"""The images every worker trains on, and the data-loading timings of the ``data`` section."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.project_copy import PROJECT_ROOT

OFFICIAL_ARCHIVE = PROJECT_ROOT / "data" / "01_raw" / "cifar-10-binary.tar.gz"


def prepare_images(
    image_folder: Path | None, cache_dir: Path, train_size: int, test_size: int, out: Path
) -> Path:
    """Write the train/test subset to ``out`` (.npz, uint8): the pipeline's own stratified subsample.

    The same function and seed as ``data.limit_train``/``data.limit_test``, so a
    ``kedro run`` with those limits trains on exactly these images. Without an
    image folder: synthetic CIFAR-shaped images of these sizes.
    """
    from activation_compare.datasets import ImageFolderDataset, SyntheticImageDataset
    from activation_compare.params import DataParams
    from activation_compare.pipelines.data_ingestion.nodes import stratified_subsample

    if image_folder is None:
        splits = SyntheticImageDataset(n_train=train_size, n_test=test_size).load()
    else:
        splits = ImageFolderDataset(str(image_folder), cache_dir=str(cache_dir)).load()
    seed = DataParams().split_seed
    train = stratified_subsample(splits.train, train_size, seed, "train")
    test = stratified_subsample(splits.test, test_size, seed, "test")
    np.savez(out, x_train=train.images, y_train=train.labels, x_test=test.images, y_test=test.labels)
    return out


def write_binary_archive(path: Path, train, test, class_names) -> None:
    """An archive in the official CIFAR-10 binary layout (5 train batches, 1 test batch)."""

    def records(images: np.ndarray, labels: np.ndarray) -> bytes:
        count = len(labels)
        out = np.empty((count, 3073), dtype=np.uint8)
        out[:, 0] = labels
        out[:, 1:] = images.transpose(0, 3, 1, 2).reshape(count, 3072)
        return out.tobytes()

    members = []
    per_batch = -(-len(train) // 5)
    for i in range(5):
        part = slice(i * per_batch, (i + 1) * per_batch)
        members.append((f"data_batch_{i + 1}.bin", records(train.images[part], train.labels[part])))
    members.append(("test_batch.bin", records(test.images, test.labels)))
    members.append(("batches.meta.txt", ("\n".join(class_names) + "\n").encode()))
    with tarfile.open(path, "w:gz", compresslevel=9) as tar:
        for name, data in members:
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def measure_data(image_folder: Path | None, tmp: Path, log: Callable[[str], None] = print) -> tuple[dict[str, Any], Any]:
    from activation_compare.datasets import (
        CIFAR10_CLASSES,
        Cifar10BinaryDataset,
        ImageFolderDataset,
        SyntheticImageDataset,
    )
    from activation_compare.datasets._download import file_md5
    from activation_compare.pipelines.data_processing.nodes import normalize_images

    result: dict[str, Any] = {}
    splits = None
    tmp.mkdir(parents=True, exist_ok=True)
    if image_folder is not None:
        cache = tmp / "image_cache"
        started = time.perf_counter()
        splits = ImageFolderDataset(str(image_folder), cache_dir=str(cache)).load()
        first = time.perf_counter() - started
        started = time.perf_counter()
        ImageFolderDataset(str(image_folder), cache_dir=str(cache)).load()
        cached = time.perf_counter() - started
        result["image_folder"] = {
            "path": str(image_folder),
            "images": len(splits.train) + len(splits.test),
            "first_decode_s": first,
            "cached_load_s": cached,
        }
        log(f"  image folder: first decode {first:.2f} s, cached {cached:.2f} s")

    if OFFICIAL_ARCHIVE.is_file():
        archive, kwargs, origin = OFFICIAL_ARCHIVE, {}, "official archive"
    else:
        source = splits or SyntheticImageDataset(n_train=50_000, n_test=10_000).load()
        archive = tmp / "cifar-10-binary.tar.gz"
        write_binary_archive(archive, source.train, source.test, CIFAR10_CLASSES)
        kwargs = {"md5": file_md5(archive), "size": archive.stat().st_size}
        origin = (
            "synthetic archive in the official binary format (the official one is absent), "
            + ("pixels of the image folder" if splits else "synthetic pixels")
        )
    cache = tmp / "binary_cache"
    timings = {}
    for label, cache_dir in (("parse_s", None), ("first_with_cache_s", cache), ("cached_load_s", cache)):
        dataset = Cifar10BinaryDataset(
            archive_path=str(archive), cache_dir=str(cache_dir) if cache_dir else None, **kwargs
        )
        started = time.perf_counter()
        loaded = dataset.load()
        timings[label] = time.perf_counter() - started
    result["cifar10_binary"] = {
        "archive": str(archive),
        "origin": origin,
        "bytes": archive.stat().st_size,
        "records": len(loaded.train) + len(loaded.test),
        **timings,
    }
    log(
        f"  binary archive ({origin}): parse {timings['parse_s']:.2f} s, "
        f"cached {timings['cached_load_s']:.2f} s"
    )
    splits = splits or loaded
    started = time.perf_counter()
    normalized = normalize_images(splits.train)
    normalize_images(splits.test)
    result["normalize_s"] = time.perf_counter() - started
    del normalized
    log(f"  normalize (train + test): {result['normalize_s']:.2f} s")
    return result, splits
