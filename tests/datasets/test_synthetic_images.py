"""Deterministic synthetic images with a learnable class signal."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from kedro.io import DatasetError
from numpy.lib.stride_tricks import sliding_window_view

from activation_compare.datasets import (
    CIFAR10_CLASSES,
    DataSourceError,
    SyntheticImageDataset,
)


def test_shapes_types_and_balance() -> None:
    splits = SyntheticImageDataset().load()
    assert splits.class_names == CIFAR10_CLASSES
    assert splits.train.images.shape == (600, 32, 32, 3) and splits.test.images.shape == (
        200,
        32,
        32,
        3,
    )
    for split in (splits.train, splits.test):
        assert split.images.dtype == np.uint8 and split.images.flags["C_CONTIGUOUS"]
        assert split.labels.dtype == np.int64
    assert np.bincount(splits.train.labels).tolist() == [60] * 10
    assert np.bincount(splits.test.labels).tolist() == [20] * 10
    uneven = SyntheticImageDataset(n_train=25, n_test=7).load()
    assert np.bincount(uneven.train.labels, minlength=10).tolist() == [3] * 5 + [2] * 5
    assert "synthetic" in splits.description and "seed=0" in splits.description


def test_same_arguments_give_identical_bytes() -> None:
    first = SyntheticImageDataset(n_train=50, n_test=20, seed=3).load()
    second = SyntheticImageDataset(n_train=50, n_test=20, seed=3).load()
    assert first.train.images.tobytes() == second.train.images.tobytes()
    assert first.train.labels.tobytes() == second.train.labels.tobytes()
    assert first.test.images.tobytes() == second.test.images.tobytes()
    other = SyntheticImageDataset(n_train=50, n_test=20, seed=4).load()
    assert first.train.images.tobytes() != other.train.images.tobytes()
    # The test split does not depend on n_train (independent streams).
    bigger = SyntheticImageDataset(n_train=80, n_test=20, seed=3).load()
    assert bigger.test.images.tobytes() == first.test.images.tobytes()


def test_class_signal_is_simple_to_find() -> None:
    """A nearest-centroid classifier on mean colours: far above chance (0.1)."""
    splits = SyntheticImageDataset().load()
    train = splits.train.images.astype(np.float64).mean(axis=(1, 2))
    test = splits.test.images.astype(np.float64).mean(axis=(1, 2))
    centroids = np.stack([train[splits.train.labels == c].mean(axis=0) for c in range(10)])
    predicted = ((test[:, None] - centroids[None]) ** 2).sum(axis=-1).argmin(axis=1)
    assert (predicted == splits.test.labels).mean() >= 0.8


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_train": 0}, "n_train=0 must be a positive integer"),
        ({"n_test": -1}, "n_test=-1 must be a positive integer"),
        ({"n_train": 1.5}, "n_train=1.5"),
        ({"seed": -2}, "seed=-2 must be a non-negative integer"),
    ],
)
def test_bad_arguments(kwargs, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataSourceError, match=fragment):
        SyntheticImageDataset(**kwargs)


def test_read_only() -> None:
    dataset = SyntheticImageDataset(n_train=10, n_test=10)
    assert dataset.exists()
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save(dataset.load())


# --- the seed CNN, in NumPy, learns it in 2 epochs --------------------------------
#
# Conv2D(32, 3×3) → ReLU → MaxPool → Conv2D(64, 3×3) → ReLU → MaxPool → Flatten →
# Dense(10, softmax); Glorot-uniform kernels, zero biases, inputs x/255, Adam
# (Keras defaults), batch 100: Keras' recipe without TensorFlow.


def _glorot(rng, shape, fan_in, fan_out):  # type: ignore[no-untyped-def]
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def _conv(x, kernel, bias):  # type: ignore[no-untyped-def]
    patches = sliding_window_view(x, (3, 3), axis=(1, 2))  # N, H, W, C, 3, 3
    n, h, w, c = patches.shape[:4]
    cols = patches.transpose(0, 1, 2, 4, 5, 3).reshape(n * h * w, 9 * c)
    return (cols @ kernel.reshape(9 * c, -1) + bias).reshape(n, h, w, -1), cols


def _conv_back(grad, cols, x, kernel):  # type: ignore[no-untyped-def]
    n, h, w, f = grad.shape
    c = x.shape[3]
    flat = grad.reshape(-1, f)
    dcols = (flat @ kernel.reshape(9 * c, f).T).reshape(n, h, w, 3, 3, c)
    dx = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            dx[:, i : i + h, j : j + w] += dcols[:, :, :, i, j]
    return dx, (cols.T @ flat).reshape(kernel.shape), flat.sum(axis=0)


def _pool(x):  # type: ignore[no-untyped-def]
    n, h, w, c = x.shape
    blocks = x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c)
    out = blocks.max(axis=(2, 4))
    mask = blocks == out[:, :, None, :, None]
    return out, mask / mask.sum(axis=(2, 4), keepdims=True)


def _pool_back(grad, mask, shape):  # type: ignore[no-untyped-def]
    n, h, w, c = shape
    dx = np.zeros(shape, grad.dtype)
    dx[:, : h // 2 * 2, : w // 2 * 2] = (mask * grad[:, :, None, :, None]).reshape(
        n, h // 2 * 2, w // 2 * 2, c
    )
    return dx


def _train_seed_cnn(train, test, seed, epochs=2, batch=100, lr=1e-3):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    p = {
        "k1": _glorot(rng, (3, 3, 3, 32), 27, 288),
        "b1": np.zeros(32, np.float32),
        "k2": _glorot(rng, (3, 3, 32, 64), 288, 576),
        "b2": np.zeros(64, np.float32),
        "w": _glorot(rng, (2304, 10), 2304, 10),
        "b": np.zeros(10, np.float32),
    }
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}

    def forward(x):  # type: ignore[no-untyped-def]
        a1, c1 = _conv(x, p["k1"], p["b1"])
        p1, m1 = _pool(np.maximum(a1, 0))
        a2, c2 = _conv(p1, p["k2"], p["b2"])
        p2, m2 = _pool(np.maximum(a2, 0))
        flat = p2.reshape(len(x), -1)
        return flat @ p["w"] + p["b"], (x, a1, c1, p1, m1, a2, c2, p2, m2, flat)

    x_train = train.images.astype(np.float32) / np.float32(255)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            logits, (x, a1, c1, p1, m1, a2, c2, p2, m2, flat) = forward(x_train[idx])
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            probs[np.arange(len(idx)), train.labels[idx]] -= 1
            dlogits = probs / len(idx)
            g = {"w": flat.T @ dlogits, "b": dlogits.sum(axis=0)}
            da2 = _pool_back((dlogits @ p["w"].T).reshape(p2.shape), m2, a2.shape) * (a2 > 0)
            dp1, g["k2"], g["b2"] = _conv_back(da2, c2, p1, p["k2"])
            da1 = _pool_back(dp1, m1, a1.shape) * (a1 > 0)
            _, g["k1"], g["b1"] = _conv_back(da1, c1, x, p["k1"])
            step += 1
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
                update = lr * (m[k] / (1 - 0.9**step)) / (np.sqrt(v[k] / (1 - 0.999**step)) + 1e-7)
                p[k] -= update.astype(np.float32)
    predicted = forward(test.images.astype(np.float32) / np.float32(255))[0].argmax(axis=1)
    return float((predicted == test.labels).mean())


@pytest.mark.slow
def test_the_seed_cnn_learns_it_in_two_epochs() -> None:
    splits = SyntheticImageDataset(n_train=600, n_test=200, seed=0).load()
    try:  # one BLAS thread: the matrices are small, and the CPUs may be shared
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover - comes with scikit-learn
        limits = contextlib.nullcontext()
    with limits:
        accuracy = _train_seed_cnn(splits.train, splits.test, seed=0)
    assert accuracy >= 0.6, accuracy  # chance is 0.1; seeds 0-2 give about 0.8-0.9
