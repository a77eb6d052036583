"""``install()`` makes the package importable as ``glance_store``, and only when called.

Import side effects are process-wide, so these run in fresh interpreters.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
import types

import pytest


def run(code: str, *, path: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    env_path = [str(path)] if path else []
    script = f"import sys; sys.path[:0] = {env_path!r}\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=50, check=False
    )


def test_importing_the_package_does_not_install_it() -> None:
    result = run(
        """
        import kglance.drivers.glance_store
        assert "glance_store" not in sys.modules, sorted(sys.modules)
        try:
            import glance_store
        except ImportError:
            print("absent")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "absent"


def test_a_consumer_imports_glance_store_after_install() -> None:
    result = run(
        """
        import kglance.drivers.glance_store as compat
        compat.install()
        compat.install()  # idempotent
        import glance_store
        from glance_store import multi_backend, exceptions
        import glance_store._drivers.filesystem
        import glance_store._drivers.swift.store as swift
        from glance_store._drivers.cinder import store as cinder
        assert glance_store is compat
        assert multi_backend is compat.multi_backend
        assert glance_store.NotFound is exceptions.NotFound is compat.exceptions.NotFound
        assert glance_store._drivers.filesystem.Store.KGLANCE_TYPE == "file"
        assert swift.ChunkReader and cinder.StoreLocation
        # names in both multi_backend and backend resolve to backend's, as in glance_store
        assert glance_store.store_add_to_backend.__module__.endswith("glance_store.backend")
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_install_refuses_when_a_real_glance_store_is_imported(tmp_path: pathlib.Path) -> None:
    fake = tmp_path / "glance_store"
    fake.mkdir()
    (fake / "__init__.py").write_text("REAL = True\n")
    result = run(
        """
        import glance_store
        import kglance.drivers.glance_store as compat
        try:
            compat.install()
        except ImportError as exc:
            print("refused:", exc)
        assert glance_store.REAL and sys.modules["glance_store"] is glance_store
        """,
        path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused: cannot install kglance as glance_store")
    assert "already imported" in result.stdout


def test_installed_in_this_process(gs: types.ModuleType) -> None:
    assert gs.installed()
    assert sys.modules["glance_store.location"] is gs.location
    with pytest.raises(ImportError):
        __import__("glance_store.no_such_module")
