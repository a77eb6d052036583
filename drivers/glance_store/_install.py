"""``install()``: make this package importable under glance_store's name.

Every module of the package is imported and entered in ``sys.modules`` as
``glance_store`` plus the same dotted suffix, so ``import glance_store``,
``from glance_store import multi_backend`` and ``import glance_store._drivers.filesystem``
all resolve to the kglance modules (one module object per name, never a second copy). It
refuses when a real glance_store is already imported, because two implementations of the
same API in one process would share nothing (scheme tables, exception classes) and fail in
confusing ways.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import types

PUBLIC_NAME = "glance_store"
_PACKAGE = "kglance.drivers.glance_store"


def _modules() -> list[types.ModuleType]:
    package = importlib.import_module(_PACKAGE)
    walked = pkgutil.walk_packages(package.__path__, prefix=f"{_PACKAGE}.")
    return [package, *(importlib.import_module(info.name) for info in walked)]


def installed() -> bool:
    """Whether ``glance_store`` currently resolves to this package."""
    current = sys.modules.get(PUBLIC_NAME)
    return current is not None and current is sys.modules.get(_PACKAGE)


def install() -> None:
    """Register this package as ``glance_store`` (and its submodules) in ``sys.modules``.

    Idempotent. Raises ``ImportError`` if another ``glance_store`` is already imported.
    """
    if installed():
        return
    foreign = sorted(
        name for name in sys.modules if name == PUBLIC_NAME or name.startswith(f"{PUBLIC_NAME}.")
    )
    if foreign:
        origin = getattr(sys.modules.get(foreign[0]), "__file__", None) or "unknown location"
        raise ImportError(
            f"cannot install kglance as glance_store: {foreign[0]} is already imported "
            f"(from {origin}); call kglance.drivers.glance_store.install() before anything "
            "imports glance_store, or uninstall the glance_store distribution"
        )
    for module in _modules():
        sys.modules[PUBLIC_NAME + module.__name__[len(_PACKAGE) :]] = module
