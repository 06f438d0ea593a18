"""``kedro run`` as a user types it, with a timestamp at each phase of its start.

    STARTUP_EVENTS=events.jsonl python -m benchmarks.startup_worker run --env smoke

The command line is Kedro's own (``kedro.framework.cli.main``); this module only
adds one hook to the project's ``HOOKS`` before Kedro reads them, and, once the
first training node starts, a Keras callback method that marks the first call
of the compiled train step (``steps_per_execution`` steps: the first one
traces and compiles). Each mark is one JSON line ``{"event", "t", ...}`` with
the wall clock (``time.time()``) appended to ``$STARTUP_EVENTS``; the driver
(:mod:`benchmarks.startup`) subtracts the time it started the process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

_EVENTS = os.environ.get("STARTUP_EVENTS", os.devnull)


def mark(event: str, **extra: Any) -> None:
    """Append one timestamped event for the driver."""
    with open(_EVENTS, "a", encoding="utf-8") as out:
        out.write(json.dumps({"event": event, "t": time.time(), **extra}) + "\n")


mark("interpreter")  # the interpreter and this module, before Kedro


def _mark_first_step() -> None:
    """Mark the first train-step call's start and end, once per process."""
    from activation_compare.pipelines.modelling.epoch_timer import EpochTimer

    if getattr(EpochTimer, "_startup_marked", False):
        return
    EpochTimer._startup_marked = True
    seen: set[str] = set()

    def once(event: str) -> None:
        if event not in seen:
            seen.add(event)
            mark(event)

    EpochTimer.on_train_begin = lambda self, logs=None: once("fit_start")
    EpochTimer.on_train_batch_begin = lambda self, batch, logs=None: once("first_step_start")
    EpochTimer.on_train_batch_end = lambda self, batch, logs=None: once("first_step_end")


def phase_hooks() -> Any:
    """Kedro hooks that only mark when each phase of the run starts and ends (Kedro loads after "interpreter")."""
    from kedro.framework.hooks import hook_impl

    class PhaseHooks:
        @hook_impl
        def after_context_created(self, context: Any) -> None:
            mark("context_created")

        @hook_impl
        def after_catalog_created(self, catalog: Any) -> None:
            mark("catalog_created")

        @hook_impl
        def before_pipeline_run(self, run_params: Any) -> None:
            mark("pipeline_start")

        @hook_impl
        def before_node_run(self, node: Any) -> None:
            if "train_model" in node.name:
                _mark_first_step()
            mark("node_start", node=node.name)

        @hook_impl
        def after_node_run(self, node: Any) -> None:
            mark("node_end", node=node.name)

        @hook_impl
        def after_pipeline_run(self, run_params: Any) -> None:
            mark("pipeline_end")

    return PhaseHooks()


def main(argv: list[str]) -> None:
    # The project in the working directory, as Kedro loads it (its src/ first on
    # sys.path), not an installed copy: the settings are imported before Kedro's
    # bootstrap would put it there.
    source = os.path.join(os.getcwd(), "src")
    if os.path.isdir(source) and source not in sys.path:
        sys.path.insert(0, source)
    import activation_compare.settings as settings
    from kedro.framework.cli import main as kedro_main

    # Kedro reads HOOKS from the settings module when the session starts.
    settings.HOOKS = (*settings.HOOKS, phase_hooks())
    sys.argv = ["kedro", *argv]
    try:
        kedro_main()
    finally:
        mark("exit")


if __name__ == "__main__":
    main(sys.argv[1:])
