"""Epoch time of the seed_cnn model on a GPU through Keras 3 on any backend.

Run on a machine without TensorFlow (torch and/or jax are enough)::

    python benchmarks/gpu_epoch.py --backends torch jax --out results.jsonl

Each (backend) runs in its own process, because Keras reads ``KERAS_BACKEND``
once. Inside it, every configuration (activation x precision x option) trains
one warm-up epoch (compilation, autotuning) and then ``--epochs`` timed ones on
synthetic CIFAR-shaped data (50,000 train / 10,000 validation, batch 100, the
test set as validation data as in the original). The model is the project's
``seed_cnn`` (``src/activation_compare/models/seed_cnn.py``) rebuilt here layer
for layer, because that module needs pydantic; the RReLU layer is the
project's own ``activation_compare.layers.RReLU`` (pure ``keras.ops``).

Results are JSON lines: one per configuration, with per-epoch seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (activation, precision policy, option) in the order they are run: the most
# important first, so a time-boxed run still answers the main questions.
DEFAULT_CONFIGS = [
    ("relu", "float32", "default"),
    ("rrelu", "float32", "default"),
    ("relu", "mixed_bfloat16", "default"),
    ("rrelu", "mixed_bfloat16", "default"),
    ("relu", "float32", "spe10"),
    ("rrelu", "float32", "spe10"),
    ("relu", "mixed_bfloat16", "spe10"),
    ("rrelu", "mixed_bfloat16", "spe10"),
    ("relu", "mixed_float16", "default"),
    ("relu", "float32", "jit"),
    ("rrelu", "float32", "jit"),
]


def _build(keras, activation: str, seed: int = 0):
    """seed_cnn, as src/activation_compare/models/seed_cnn.py builds it."""
    from activation_compare.layers import RReLU

    def act(name):
        if activation == "relu":
            return keras.layers.ReLU(name=name)
        return RReLU(lower=0.125, upper=1.0 / 3.0, seed=seed + len(name), name=name)

    init = lambda k: keras.initializers.GlorotUniform(seed=seed + k)  # noqa: E731
    inputs = keras.Input(shape=(32, 32, 3), name="images")
    x = keras.layers.Conv2D(32, (3, 3), kernel_initializer=init(1), name="conv1")(inputs)
    x = act("act1")(x)
    x = keras.layers.MaxPooling2D((2, 2), name="pool1")(x)
    x = keras.layers.Conv2D(64, (3, 3), kernel_initializer=init(2), name="conv2")(x)
    x = act("act2")(x)
    x = keras.layers.MaxPooling2D((2, 2), name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    # The softmax stays in float32 under a mixed policy (Keras' advice for outputs).
    outputs = keras.layers.Dense(
        10, activation="softmax", kernel_initializer=init(3), name="classifier", dtype="float32"
    )(x)
    return keras.Model(inputs, outputs, name=f"seed_cnn_{activation}")


def _worker(args: argparse.Namespace) -> None:
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    import keras

    backend = keras.backend.backend()
    device = "cpu"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            device = torch.cuda.get_device_name(0)
            torch.backends.cudnn.benchmark = True
    elif backend == "jax":
        import jax

        device = str(jax.devices()[0])
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        device = str(gpus[0]) if gpus else "cpu"

    rng = np.random.default_rng(0)
    n_train, n_val = args.train, args.val
    x = (rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8) / np.float32(255)).astype(
        np.float32
    )
    y = rng.integers(0, 10, n_train).astype(np.int64)
    xv = (rng.integers(0, 256, (n_val, 32, 32, 3), dtype=np.uint8) / np.float32(255)).astype(
        np.float32
    )
    yv = rng.integers(0, 10, n_val).astype(np.int64)

    configs = [tuple(c.split(":")) for c in args.configs] if args.configs else DEFAULT_CONFIGS
    deadline = time.monotonic() + args.budget_s
    for activation, policy, option in configs:
        if time.monotonic() > deadline:
            print(json.dumps({"backend": backend, "skipped": [activation, policy, option]}), flush=True)
            continue
        record = {
            "backend": backend,
            "device": device,
            "activation": activation,
            "policy": policy,
            "option": option,
            "batch_size": args.batch,
            "train": n_train,
            "val": n_val,
        }
        try:
            keras.mixed_precision.set_global_policy(policy)
            keras.utils.set_random_seed(0)
            model = _build(keras, activation)
            # "default" keeps Keras' own choice ("auto": XLA on jax, eager on torch),
            # "eager" turns compilation off, "jit" forces it (torch.compile on torch).
            compile_kwargs = {}
            if option in ("jit", "eager"):
                compile_kwargs["jit_compile"] = option == "jit"
            if option.startswith("spe"):
                compile_kwargs["steps_per_execution"] = int(option[3:])
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=0.001),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                **compile_kwargs,
            )
            times: list[float] = []
            logs: list[dict] = []

            class Timer(keras.callbacks.Callback):
                def on_epoch_begin(self, epoch, logs=None):
                    self.t = time.perf_counter()

                def on_epoch_end(self, epoch, l=None):  # noqa: E741
                    times.append(time.perf_counter() - self.t)
                    logs.append({k: float(v) for k, v in (l or {}).items()})

            started = time.perf_counter()
            model.fit(
                x,
                y,
                batch_size=args.batch,
                epochs=1 + args.epochs,
                validation_data=(xv, yv),
                verbose=0,
                callbacks=[Timer()],
            )
            record.update(
                warmup_epoch_s=times[0],
                epoch_s=times[1:],
                median_epoch_s=float(np.median(times[1:])),
                total_s=time.perf_counter() - started,
                last_logs=logs[-1],
            )
        except Exception as exc:  # report and go on with the next configuration
            record["error"] = f"{type(exc).__name__}: {exc}"[:500]
        finally:
            keras.mixed_precision.set_global_policy("float32")
            keras.backend.clear_session()
        print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "jax"])
    parser.add_argument("--train", type=int, default=50_000)
    parser.add_argument("--val", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up")
    parser.add_argument("--configs", nargs="*", help="activation:policy:option, e.g. relu:float32:spe10")
    parser.add_argument("--budget-s", type=float, default=150, help="per backend; later configs are skipped")
    parser.add_argument("--out", default=None, help="JSON lines file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    out = open(args.out, "a") if args.out else None  # noqa: SIM115
    rows = []
    for backend in args.backends:
        cmd = [sys.executable, __file__, "--worker", *sys.argv[1:]]
        env = dict(os.environ, KERAS_BACKEND=backend)
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=args.budget_s + 120
        )
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                rows.append(json.loads(line))
                if out:
                    out.write(line + "\n")
                    out.flush()
        if proc.returncode:
            print(f"[{backend}] exit {proc.returncode}: {proc.stderr[-1500:]}", file=sys.stderr)
    print(f"{'backend':10} {'activation':6} {'policy':15} {'option':8} {'warm-up s':>9} {'epoch s':>8}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['backend']:10} skipped {r['skipped']}")
        elif "error" in r:
            print(f"{r['backend']:10} {r['activation']:6} {r['policy']:15} {r['option']:8} ERROR {r['error'][:150]}")
        else:
            print(
                f"{r['backend']:10} {r['activation']:6} {r['policy']:15} {r['option']:8} "
                f"{r['warmup_epoch_s']:9.2f} {r['median_epoch_s']:8.3f}  {r['device']}"
            )


if __name__ == "__main__":
    main()
