"""Run the project's pinned uv on any Python, installing uv first if it is missing.

    python3 scripts/uv.py run --frozen kedro run --pipeline=compare
    python3 scripts/uv.py run --frozen pytest

Why not ``pip install uv``: Debian 12, Ubuntu 23.04+ and Homebrew mark their
Python "externally managed" (PEP 668), so ``pip install`` refuses there, and a
stock Debian has no pip at all. This script needs only the standard library: it
uses a uv 0.13.8 that is already installed (on ``PATH`` or as ``python3 -m uv``)
or fetches uv's wheel for this platform from PyPI, checks it against the SHA-256
pinned below, and unpacks the ``uv`` binary into ``.tools/`` in the project.
Then it runs uv with the arguments given, and uv installs the locked
environment (``uv.lock``) into ``.venv``.

``UV_PY_INDEX`` names another index with PyPI's JSON API (a mirror, or a local
server in the tests).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

VERSION = "0.13.8"
INDEX = os.environ.get("UV_PY_INDEX", "https://pypi.org/simple")

# uv 0.13.8's wheels on PyPI, by (system, machine): file name and SHA-256.
WHEELS = {
    ("linux", "x86_64"): (
        "uv-0.13.8-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "e18a57b8b352eb7c8feb317b9f6f533c8f0ad9673fd6cf34bbe3cf1a9f6a8984",
    ),
    ("linux", "aarch64"): (
        "uv-0.13.8-py3-none-manylinux_2_28_aarch64.whl",
        "5337c30bb893b4f9ce0ceb921ba2da0d13f649da644f40ad3bef84083bef0203",
    ),
    ("darwin", "x86_64"): (
        "uv-0.13.8-py3-none-macosx_10_12_x86_64.whl",
        "b7124ca1956ec2e476a1003ea5715a15f0266afaec37f4dc9c6972ba8183e6d1",
    ),
    ("darwin", "arm64"): (
        "uv-0.13.8-py3-none-macosx_11_0_arm64.whl",
        "62b6943c7fd64fac6854f780bea6e0359e5a5bc3241f83ee357bb38276afac49",
    ),
    ("windows", "amd64"): (
        "uv-0.13.8-py3-none-win_amd64.whl",
        "cfbc13020a64cdf2f116d2936824c38edbf41e5c07f1ea291baf02e31ebf3ed0",
    ),
}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


class SetupError(RuntimeError):
    """uv could not be found or installed; the message says why and what to do."""


def wheel_for(system: str, machine: str) -> tuple[str, str]:
    """The wheel file name and SHA-256 for a platform, as ``platform.system()``/``machine()`` name it."""
    system, machine = system.lower(), machine.lower()
    candidates = [machine, _MACHINE_ALIASES.get(machine, machine)]
    if system == "darwin" and machine in ("arm64", "aarch64"):
        candidates = ["arm64"]
    if system == "windows":
        candidates = ["amd64"] if machine in ("amd64", "x86_64") else [machine]
    for candidate in candidates:
        if (system, candidate) in WHEELS:
            return WHEELS[(system, candidate)]
    raise SetupError(
        f"no uv {VERSION} wheel is pinned for {system}/{machine}; install uv {VERSION} yourself "
        f"(https://docs.astral.sh/uv/) and run `uv run --frozen …` instead"
    )


def _installed_uv() -> list[str] | None:
    """A command for an already installed uv of the pinned version, if there is one."""
    for command in (["uv"], [sys.executable, "-m", "uv"]):
        try:
            version = subprocess.run(
                [*command, "--version"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if version.split()[1:2] == [VERSION]:
            return command
    return None


def _wheel_url(filename: str) -> str:
    request = urllib.request.Request(
        f"{INDEX.rstrip('/')}/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    for entry in files:
        if entry["filename"] == filename:
            return entry["url"]
    raise SetupError(f"{filename} is not listed by {INDEX}/uv/")


def install(tools: Path, system: str | None = None, machine: str | None = None) -> Path:
    """Download, verify and unpack uv's binary into ``tools``; return its path."""
    filename, sha256 = wheel_for(system or platform.system(), machine or platform.machine())
    url = _wheel_url(filename)
    print(f"Installing uv {VERSION} from {url.split('#')[0]}", file=sys.stderr)
    with urllib.request.urlopen(url, timeout=300) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SetupError(
            f"{filename} from {INDEX} has SHA-256 {digest}, expected {sha256}; nothing was installed"
        )
    exe = ".exe" if filename.endswith(("win_amd64.whl", "win32.whl", "win_arm64.whl")) else ""
    member = f"uv-{VERSION}.data/scripts/uv{exe}"
    tools.mkdir(parents=True, exist_ok=True)
    # Unpacked beside its final place and renamed: a half-written binary is never run.
    with zipfile.ZipFile(io.BytesIO(data)) as wheel, tempfile.NamedTemporaryFile(
        dir=tools, delete=False
    ) as partial:
        shutil.copyfileobj(wheel.open(member), partial)
    os.chmod(partial.name, 0o755)
    target = tools / f"uv{exe}"
    os.replace(partial.name, target)
    return target


def uv_command(project: Path) -> list[str]:
    """The uv to run: the project's own copy, an installed one of the pinned version, or a fresh install."""
    tools = project / ".tools" / f"uv-{VERSION}"
    own = tools / ("uv.exe" if os.name == "nt" else "uv")
    if own.exists():
        return [str(own)]
    return _installed_uv() or [str(install(tools))]


def main(argv: list[str]) -> int:
    project = Path(__file__).resolve().parent.parent
    try:
        command = [*uv_command(project), *argv]
    except (SetupError, OSError) as exc:
        print(f"error: could not set up uv {VERSION}: {exc}", file=sys.stderr)
        return 1
    if os.name == "nt":
        return subprocess.call(command)
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
