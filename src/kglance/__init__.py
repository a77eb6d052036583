"""kglance: glance_store rebuilt Kubernetes-native.

The import package is assembled from the repository's top-level folders (see pyproject's
package-dir mapping): ``kglance.drivers`` is ``drivers/``, ``kglance.sidecar`` is ``sidecar/``
and ``kglance.operator`` is ``operator/``. Importing this package has no side effects.
"""

__version__ = "0.1.0"
