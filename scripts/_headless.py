"""Shared helpers of the screenshot scripts: headless Chromium driven over the DevTools protocol.

Chromium comes from the OS, never from a browser download::

    sudo apt-get update && sudo apt-get install -y chromium     # Debian/Ubuntu

(or set ``CHROMIUM=/path/to/chrome``). The DevTools protocol is spoken with
``websockets``, which the project's environment already has (kedro-viz depends
on ``uvicorn[standard]``, which brings it).

The browser is started with a throwaway profile and no network beyond
127.0.0.1: every other host name resolves to nothing, so pages that reference
web fonts or analytics never wait on the network.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

INSTALL_HINT = (
    "Chromium was not found. Install it from the OS packages, e.g. "
    "`sudo apt-get update && sudo apt-get install -y chromium`, or set CHROMIUM=/path/to/chromium."
)

# Nothing but the local servers may be reached from the page.
_HOST_RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"


def find_chromium() -> str:
    """The Chromium (or Chrome) executable: $CHROMIUM, else the first one on PATH."""
    candidates = [os.environ.get("CHROMIUM", "")]
    candidates += ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
    for candidate in candidates:
        if candidate and (found := shutil.which(candidate)):
            return found
    raise SystemExit(INSTALL_HINT)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers (any HTTP status), or fail if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.5)


@contextlib.contextmanager
def background(
    command: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """Run ``command`` (a server) for the duration of the block, then stop it and its children."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        list(command), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield process
    finally:
        stop(process)
        if log:
            out.close()


def stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate a process started with ``start_new_session=True`` and its whole group."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


def log_tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class Browser:
    """One headless Chromium tab, driven over the Chrome DevTools Protocol.

    Use as a context manager; ``screenshot()`` writes a PNG of the viewport.
    """

    def __init__(self, width: int = 1600, height: int = 1000, scale: float = 1.0) -> None:
        self.width, self.height, self.scale = width, height, scale
        self._profile = Path(tempfile.mkdtemp(prefix="screenshot-chromium-"))
        self._process: subprocess.Popen | None = None
        self._ws: Any = None
        self._next_id = 0

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        from websockets.sync.client import connect

        command = [
            find_chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--mute-audio",
            f"--host-resolver-rules={_HOST_RULES}",
            f"--user-data-dir={self._profile}",
            f"--window-size={self.width},{self.height}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=open(self._profile / "chromium.log", "wb"),
            start_new_session=True,
        )
        port = self._devtools_port(timeout=60)
        page = self._page_target(port, timeout=30)
        self._ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=self.scale,
            mobile=False,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()
        if self._process is not None:
            stop(self._process, grace=5)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _devtools_port(self, timeout: float) -> int:
        marker = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError("Chromium exited at start:\n" + log_tail(self._profile / "chromium.log"))
            if marker.exists():
                text = marker.read_text().split()
                if text:
                    return int(text[0])
            time.sleep(0.2)
        raise TimeoutError("Chromium did not open its DevTools port")

    @staticmethod
    def _page_target(port: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    return pages[0]
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium has no page to drive")
            time.sleep(0.2)

    # -- protocol ------------------------------------------------------------------------

    def send(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events are skipped)."""
        self._next_id += 1
        message_id = self._next_id
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer to {method} within {timeout:.0f} s")
            message = json.loads(self._ws.recv(timeout=remaining))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str, timeout: float = 60) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value."""
        result = self.send(
            "Runtime.evaluate",
            timeout=timeout,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise RuntimeError(f"JavaScript failed: {text}\n{expression[:300]}")
        return result.get("result", {}).get("value")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_until(self, expression: str, timeout: float = 60, what: str = "") -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
                if value:
                    return value
            except RuntimeError as exc:  # e.g. the page is still navigating
                last_error = str(exc)
            time.sleep(0.5)
        raise TimeoutError(f"timed out waiting for {what or expression[:200]} {last_error}".strip())

    def settle(self, seconds: float) -> None:
        """Give animations and lazy rendering time to finish."""
        time.sleep(seconds)

    def screenshot(self, path: Path | str) -> Path:
        """Write a PNG of the viewport to ``path``."""
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


def project_root(explicit: str | None) -> Path:
    """The Kedro project: the argument, else $ACTIVATION_COMPARE_PROJECT, else this repository."""
    root = Path(
        explicit or os.environ.get("ACTIVATION_COMPARE_PROJECT") or Path(__file__).resolve().parents[1]
    )
    root = root.expanduser().resolve()
    if not (root / "pyproject.toml").is_file():
        raise SystemExit(f"{root} is not a Kedro project (no pyproject.toml)")
    return root


def executable(name: str) -> str:
    """A console script of the running interpreter's environment (kedro, mlflow), else PATH's."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"`{name}` is not installed in this environment; run the script with `uv run`.")
    return found
