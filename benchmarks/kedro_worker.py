"""The project as a user runs it: ``kedro run --pipeline=compare`` for one activation, one epoch per ``go``.

    python -m benchmarks.kedro_worker '{"project": "/tmp/copy", "activation": "rrelu", "epochs": 5, ...}'

A ``KedroSession`` in a throw-away project copy with its own MLflow store, as
``kedro run`` would start it (hooks, checkpointing and tracking included). Per
epoch it reports two figures: ``epoch_time_s`` as the run logs it (the
training node's own timer) and ``wall_s``, the time from the driver's ``go``
to the end of the epoch, which also holds the work between epochs: the
checkpoint written after the epoch and the tracking of the one before. Their
difference is the per-epoch overhead of checkpointing and tracking.
"""

from __future__ import annotations

import json
import sys
import time

from benchmarks.protocol import emit, peak_rss_mb, wait_go


def runtime_params(spec: dict) -> dict:
    """The ``--params`` of the run: one activation, one seed, the benchmark's images."""
    activation = spec["activation"]
    params = {
        "training": {"epochs": spec["epochs"], "batch_size": spec["batch_size"], "verbose": 0, "seeds": [0]},
        "compare": {"activations": [activation], "baseline": activation},
    }
    if spec.get("precision"):
        params["model"] = {"precision": spec["precision"]}
    if spec.get("image_folder"):
        params["data"] = {
            "source": "image_folder", "path": spec["image_folder"],
            "limit_train": spec["train_size"], "limit_test": spec["test_size"],
        }
    else:
        params["data"] = {"source": "synthetic"}  # sized in conf/local by the driver
    return params


def main(spec: dict) -> None:
    import tensorflow as tf
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from activation_compare import training_events
    from benchmarks.seed_worker import describe

    bootstrap_project(spec["project"])
    emit({"event": "ready", "tf": describe(tf)})
    rows: list[dict] = []
    clock = {"go": 0.0}

    def on_epoch(event):
        wall = time.perf_counter() - clock["go"]
        rows.append(dict(event.metrics, epoch=event.epoch, wall_s=wall))
        emit({"event": "epoch", **rows[-1]})
        # After the last epoch too: the rest of the run (evaluation, model logging,
        # figures) waits for its turn, so it never runs beside another row's epoch.
        wait_go()
        clock["go"] = time.perf_counter()

    # The sequential runner runs nodes in this thread, where the events are published.
    training_events.subscribe(on_epoch)
    wait_go()
    clock["go"] = started = time.perf_counter()
    with KedroSession.create(project_path=spec["project"], runtime_params=runtime_params(spec)) as session:
        session.run(pipeline_name="compare")
    emit({"event": "run_done", "rows": rows, "run_wall_s": time.perf_counter() - started})
    emit({"event": "done", "max_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
