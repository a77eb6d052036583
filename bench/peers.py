"""The interpreters cases run in: the project's venv and a venv of glance_store 5.7.0.

glance_store pins its own oslo.* and friends, so it gets a virtualenv of its own under
``.bench/`` rather than polluting the project's; it is created and filled on first use.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from bench import plan

GLANCE_STORE_VERSION = "5.7.0"
GLANCE_REQUIREMENTS = (
    f"glance_store=={GLANCE_STORE_VERSION}",
    "oslo.config",
    "boto3",
    "python-swiftclient",
)

_VERSION_PROBE = (
    "import importlib.metadata as m, platform, boto3, swiftclient; "
    "print(platform.python_version(), m.version('glance_store'))"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Peers:
    glance_venv: Path

    def python(self, peer: plan.PeerName) -> str:
        if peer == plan.GLANCE:
            return str(self.glance_venv / "bin" / "python")
        return sys.executable  # the runner itself runs in the project's venv

    def ensure(self, peer: plan.PeerName) -> None:
        if peer == plan.GLANCE:
            self._ensure_glance()

    def describe(self, peer: plan.PeerName) -> str:
        if peer == plan.GLANCE:
            python, version = self._glance_versions() or ("?", "?")
            return f"glance_store {version}, Python {python} ({self.python(peer)})"
        python = ".".join(str(part) for part in sys.version_info[:3])
        return f"kglance from this checkout, Python {python} ({self.python(peer)})"

    def _glance_versions(self) -> tuple[str, str] | None:
        python = self.glance_venv / "bin" / "python"
        if not python.exists():
            return None
        probe = subprocess.run(
            [str(python), "-c", _VERSION_PROBE], capture_output=True, text=True, check=False
        )
        if probe.returncode != 0:
            return None
        python_version, glance_version = probe.stdout.split()
        return python_version, glance_version

    def _ensure_glance(self) -> None:
        python = self.glance_venv / "bin" / "python"
        if not python.exists():
            print(f"creating {self.glance_venv}", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(self.glance_venv)], check=True)
        versions = self._glance_versions()
        if versions is None or versions[1] != GLANCE_STORE_VERSION:
            print(f"pip install {' '.join(GLANCE_REQUIREMENTS)}", file=sys.stderr)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *GLANCE_REQUIREMENTS], check=True
            )
