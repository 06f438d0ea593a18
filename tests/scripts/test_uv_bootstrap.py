"""scripts/uv.py: uv installed from a wheel checked against its pinned SHA-256, on a bare Python.

The index is a local HTTP server speaking PyPI's JSON simple API, serving a
wheel made here: no network.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import io
import json
import threading
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "uv.py"


@pytest.fixture
def bootstrap():
    spec = importlib.util.spec_from_file_location("uv_bootstrap", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wheel(version: str, payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(f"uv-{version}.data/scripts/uv", payload)
    return buffer.getvalue()


@pytest.fixture
def index(bootstrap):
    """Serves /simple/uv/ (JSON) and the wheel; yields (base URL, wheel bytes, file name)."""
    filename = "uv-test-linux.whl"
    wheel = _wheel(bootstrap.VERSION, b"#!/bin/sh\necho fake uv\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.rstrip("/") == "/simple/uv":
                body = json.dumps({"files": [{"filename": filename, "url": f"{base}/files/{filename}"}]})
                data = body.encode()
            elif self.path == f"/files/{filename}":
                data = wheel
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base, wheel, filename
    server.shutdown()


def test_every_common_platform_has_a_pinned_wheel(bootstrap):
    assert bootstrap.wheel_for("Linux", "x86_64")[0].endswith("manylinux2014_x86_64.whl")
    assert "aarch64" in bootstrap.wheel_for("Linux", "aarch64")[0]
    assert "arm64" in bootstrap.wheel_for("Darwin", "arm64")[0]
    assert bootstrap.wheel_for("Windows", "AMD64")[0].endswith("win_amd64.whl")
    with pytest.raises(bootstrap.SetupError, match="no uv .* wheel is pinned for sunos/sparc"):
        bootstrap.wheel_for("SunOS", "sparc")


def test_installs_the_binary_when_the_checksum_matches(bootstrap, index, tmp_path, monkeypatch):
    base, wheel, filename = index
    monkeypatch.setattr(bootstrap, "INDEX", f"{base}/simple")
    monkeypatch.setitem(bootstrap.WHEELS, ("linux", "x86_64"), (filename, hashlib.sha256(wheel).hexdigest()))
    uv = bootstrap.install(tmp_path / "tools", "Linux", "x86_64")
    assert uv.read_bytes() == b"#!/bin/sh\necho fake uv\n"
    assert uv.stat().st_mode & 0o111
    assert [p.name for p in (tmp_path / "tools").iterdir()] == ["uv"]


def test_refuses_a_wheel_whose_checksum_differs(bootstrap, index, tmp_path, monkeypatch):
    base, _, filename = index
    monkeypatch.setattr(bootstrap, "INDEX", f"{base}/simple")
    monkeypatch.setitem(bootstrap.WHEELS, ("linux", "x86_64"), (filename, "0" * 64))
    with pytest.raises(bootstrap.SetupError, match="SHA-256 .* expected 0{64}; nothing was installed"):
        bootstrap.install(tmp_path / "tools", "Linux", "x86_64")
    assert not (tmp_path / "tools").exists()


def test_the_projects_own_copy_is_used_first(bootstrap, tmp_path):
    own = tmp_path / ".tools" / f"uv-{bootstrap.VERSION}" / "uv"
    own.parent.mkdir(parents=True)
    own.write_text("")
    assert bootstrap.uv_command(tmp_path) == [str(own)]
