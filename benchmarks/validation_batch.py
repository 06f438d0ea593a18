"""The validation pass alone, at two batch sizes: what each costs and whether the metrics agree.

    python -m benchmarks.validation_batch --images 10000 --repeats 12 [--batches 100,500]

For ReLU and RReLU in bfloat16 (float32 where the CPU has no native bfloat16),
the model the training node builds, compiled as it compiles it, runs
``evaluate`` over ``--images`` synthetic CIFAR-shaped images through the
node's own input pipeline, alternating the batch sizes ``--repeats`` times in
one process (the first repeat, which traces and builds the kernels, is left
out). It prints each size's median, fastest and slowest seconds, the median of
the paired ratios to the first size, and the largest relative difference of
the loss and of the accuracy between sizes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def measure(images: int, repeats: int, batches: list[int]) -> dict:
    """Time ``evaluate`` at each batch size, alternating, for ReLU and RReLU."""
    import keras

    from activation_compare.datasets.synthetic import SyntheticImageDataset
    from activation_compare.identity import ModelKey
    from activation_compare.models.precision import cpu_has_bfloat16
    from activation_compare.params import ModelParams
    from activation_compare.pipelines.data_processing.nodes import normalize_images
    from activation_compare.pipelines.modelling import input_pipeline, nodes

    data = normalize_images(SyntheticImageDataset(n_train=batches[0], n_test=images, seed=0).load().test)
    precision = "bfloat16" if cpu_has_bfloat16() else "float32"
    out: dict = {"images": images, "repeats": repeats, "batches": batches, "precision": precision, "rows": {}}
    for activation in ("relu", "rrelu"):
        model = nodes.build_model({"type": activation}, ModelParams(precision=precision), key=ModelKey(activation, 0))
        model.compile(
            optimizer=keras.optimizers.Adam(),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=nodes._STEPS_PER_EXECUTION,
        )
        seconds: dict[int, list[float]] = {size: [] for size in batches}
        metrics: dict[int, list[float]] = {}
        for _ in range(repeats):
            for size in batches:
                dataset = input_pipeline.batches(data.images, data.labels, size)
                started = time.perf_counter()
                metrics[size] = model.evaluate(dataset, verbose=0)
                seconds[size].append(time.perf_counter() - started)
        first = batches[0]
        row: dict = {}
        for size in batches:
            timed = seconds[size][1:]
            paired = [b / a for a, b in zip(seconds[first][1:], timed)]
            row[str(size)] = {
                "median_s": round(statistics.median(timed), 4),
                "min_s": round(min(timed), 4),
                "max_s": round(max(timed), 4),
                "paired_ratio": round(statistics.median(paired), 3),
                "loss_rel_diff": abs(metrics[size][0] - metrics[first][0]) / abs(metrics[first][0]),
                "accuracy_diff": abs(metrics[size][1] - metrics[first][1]),
            }
        out["rows"][activation] = row
    return out


def render(report: dict) -> str:
    first = report["batches"][0]
    lines = [
        f"validation pass over {report['images']} images, {report['precision']}, "
        f"{report['repeats'] - 1} timed repeats; ratio paired with batch {first}",
        "| activation | batch | median s | fastest | slowest | ratio | loss rel. diff | accuracy diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for activation, row in report["rows"].items():
        for size, r in row.items():
            lines.append(
                f"| {activation} | {size} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} "
                f"| {r['paired_ratio']:.2f} | {r['loss_rel_diff']:.1e} | {r['accuracy_diff']:g} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--batches", default="100,500", help="comma-separated batch sizes; ratios are to the first")
    parser.add_argument("--json", help="also write the report here")
    options = parser.parse_args(argv)
    batches = [int(size) for size in options.batches.split(",")]
    if options.repeats < 2 or min(batches) < 1:
        parser.error("--repeats must be at least 2 (the first is left out) and every batch size at least 1")
    report = measure(options.images, options.repeats, batches)
    if options.json:
        with open(options.json, "w") as out:
            json.dump(report, out, indent=1)
            out.write("\n")
    print(render(report))


if __name__ == "__main__":
    main()
