"""A worker for benchmarks.interleave's tests: the protocol of a whole run, without training.

It does what ``benchmarks.kedro_worker`` does around a run: ``ready``, an
``epoch`` message per turn, then, after its last epoch, it waits for one more
turn before the rest of its run (``run_done``, ``done``). Its log, written to
the file named in its spec, says in what order it got its turns.
"""

from __future__ import annotations

import json
import sys
import time

from benchmarks.protocol import emit, wait_go


def main(spec: dict) -> None:
    log = open(spec["log"], "a", encoding="utf-8")  # noqa: SIM115 - open for the process' life

    def note(event: str) -> None:
        log.write(json.dumps({"worker": spec["name"], "event": event, "t": time.monotonic()}) + "\n")
        log.flush()

    emit({"event": "ready", "tf": {"tensorflow": "none", "onednn_enabled": False}})
    rows = []
    for epoch in range(1, spec["epochs"] + 1):
        wait_go()
        note(f"epoch {epoch}")
        rows.append({"epoch": epoch, "epoch_time_s": 0.01, "wall_s": 0.01, "val_accuracy": 0.5})
        emit({"event": "epoch", **rows[-1]})
    wait_go()  # the rest of the run waits for its turn, as a kedro run's evaluation does
    note("rest of the run")
    emit({"event": "run_done", "rows": rows, "run_wall_s": 0.05})
    emit({"event": "done", "max_rss_mb": 1.0})


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
