"""Every command of README.md and the documentation site, run as written.

The blocks run in the order a reader meets them (README, then the site's nav),
in one fresh copy of the project (its git files, nothing a developer has
built or run), each as a ``bash -e`` script from the project root, so a page
may use what an earlier one made (the smoke run's store and outputs). What
the copy does not have is supplied the way a user's machine has it:

- ``uv``: the environment is already installed (the test runs in it), so
  ``uv run CMD`` and ``python3 scripts/uv.py run --frozen CMD`` run CMD in it
  through a small stand-in for uv on ``PATH`` (answering as the pinned
  version, so ``scripts/uv.py`` picks it up). The install itself is what CI's
  own test command does;
- ``<CIFAR10_ARCHIVE>``: a generated class-folder archive of CIFAR-10's
  layout (10 classes, 30 training and 10 test images each).

A ``background`` block (a server) runs until the end of its page. Blocks
marked ``skip`` (see ``doc_blocks``) do not run; their smoke twins do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT, stop_process_group, test_env
from documentation.doc_blocks import Block, collect

pytestmark = pytest.mark.slow

BLOCKS = [block for block in collect(PROJECT_ROOT) if block.skip is None]
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
UV_VERSION = "0.13.8"  # scripts/uv.py's pinned version

UV_STAND_IN = f"""#!/bin/sh
# The docs tests' uv: runs `uv run [--frozen] CMD` as CMD in the installed environment.
case "$1" in
  --version) echo "uv {UV_VERSION} (docs-test stand-in)"; exit 0 ;;
  run) shift ;;
  *) echo "docs-test uv stand-in: only 'uv run' is supported, not: uv $*" >&2; exit 2 ;;
esac
while [ $# -gt 0 ]; do
  case "$1" in
    --frozen|--locked|--no-sync|--offline) shift ;;
    --extra|--group|--with|--env-file) shift 2 ;;
    *) break ;;
  esac
done
exec "$@"
"""


def _copy_project(destination: Path) -> Path:
    """The project as a fresh clone has it: git's files (committed, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = PROJECT_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    return destination


def _cifar10_archive(path: Path) -> Path:
    """A small CIFAR-10 lookalike in class folders (JPEG), a class signal in every image."""
    from PIL import Image

    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        staging = path.parent / "cifar10-jpeg"
        for split, count in (("train", 30), ("test", 10)):
            for label, name in enumerate(CIFAR10_CLASSES):
                folder = staging / split / name
                folder.mkdir(parents=True, exist_ok=True)
                for index in range(count):
                    blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
                    blocks[0, 0] = (label * 25, 255 - label * 25, 128)
                    pixels = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))
                    Image.fromarray(pixels).save(folder / f"{index:04d}.jpg", quality=95)
        tar.add(staging, arcname="cifar10-jpeg")
    return path


class Reader:
    """Runs the blocks in one project copy, keeping each page's servers until the page ends."""

    def __init__(self, root: Path) -> None:
        self.project = _copy_project(root / "project")
        self.logs = root / "logs"
        self.logs.mkdir()
        shims = root / "bin"
        shims.mkdir()
        (shims / "uv").write_text(UV_STAND_IN)
        (shims / "uv").chmod(0o755)
        self.archive = _cifar10_archive(root / "cifar10-jpeg.tar.gz")
        # The tests' one environment (no developer MLflow/Kedro settings, no telemetry), with
        # the uv stand-in first on PATH and no uv or virtualenv variables of the developer's.
        path = os.pathsep.join([str(shims), str(Path(sys.executable).parent), "/usr/bin", "/bin"])
        env = {
            k: v for k, v in test_env(PATH=path, MPLBACKEND="Agg").items()
            if not k.startswith(("UV_", "VIRTUAL_ENV"))
        }
        # TensorFlow's start-up as a user gets it (the project quiets it unless
        # TF_CPP_MIN_LOG_LEVEL is set, as QUIET_ENV sets it for the other tests).
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
        # Each command is a new process importing TensorFlow: let the first compile its
        # bytecode for the rest, as on a user's machine (CI sets PYTHONDONTWRITEBYTECODE).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env = env
        self.page: str | None = None
        self.servers: list[tuple[Block, subprocess.Popen, Path]] = []

    def code_of(self, block: Block) -> str:
        return block.code.replace("<CIFAR10_ARCHIVE>", str(self.archive))

    def turn_to(self, page: str) -> None:
        if page != self.page:
            self.stop_servers()
            self.page = page

    def stop_servers(self) -> None:
        while self.servers:
            _, process, _ = self.servers.pop()
            stop_process_group(process)

    def run(self, block: Block) -> None:
        self.turn_to(block.page)
        if block.background:
            self._serve(block)
            return
        started = time.monotonic()
        try:
            result = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", self.code_of(block)],
                cwd=self.project, env=self.env, capture_output=True, text=True,
                timeout=block.timeout, stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{block.where} ran past {block.timeout:.0f} s:\n{block.code}\n{_tail(exc.stdout, exc.stderr)}")
        output = result.stdout + result.stderr
        (self.logs / f"{block.page.replace('/', '_')}-{block.line}.log").write_text(output)
        assert result.returncode == block.exit, (
            f"{block.where} exited {result.returncode} (expected {block.exit}) after {time.monotonic() - started:.0f} s:\n"
            f"{block.code}\n{_tail(result.stdout, result.stderr)}"
        )
        for text in block.expect:
            assert text in output, f"{block.where}: no {text!r} in its output:\n{output[-3000:]}"

    def _serve(self, block: Block) -> None:
        log_path = self.logs / f"{block.page.replace('/', '_')}-{block.line}.log"
        log = open(log_path, "w")  # noqa: SIM115 - the server's process owns it until stopped
        process = subprocess.Popen(
            ["bash", "-e", "-c", self.code_of(block)], cwd=self.project, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.servers.append((block, process, log_path))
        deadline = time.monotonic() + block.timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"{block.where}: the server exited {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(block.wait, timeout=5):
                    return
            except urllib.error.HTTPError as exc:
                if exc.code < 500:  # it answers: up
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{block.where}: {block.wait} did not answer in {block.timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)


def _tail(stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    def text(value: str | bytes | None) -> str:
        return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")

    return f"--- stdout ---\n{text(stdout)[-2500:]}\n--- stderr ---\n{text(stderr)[-2500:]}"


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> Iterator[Reader]:
    reader = Reader(tmp_path_factory.mktemp("docs-commands"))
    try:
        yield reader
    finally:
        reader.stop_servers()


@pytest.mark.parametrize("block", BLOCKS, ids=[block.where for block in BLOCKS])
def test_documented_command_runs_as_written(reader: Reader, block: Block) -> None:
    reader.run(block)
