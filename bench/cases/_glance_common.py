"""What every glance_store case does the same way: configure one backend as Glance does, add, get.

These functions run in the glance venv (``peers.py``), where kglance is not installed, so this
module imports nothing of kglance (nor anything outside the standard library and ``bench``);
glance_store and oslo.config are imported by name at call time, which keeps it importable (and
type-checked) in the project's venv too, where the runner reads ``cases()``.
"""

from __future__ import annotations

import dataclasses
import importlib
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from bench import plan
from bench.core import Job, Stopwatch, Timing

TITLE = "glance_store 5.7.0"


def _nothing() -> None:
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Store:
    """One glance_store backend under test; its bound methods are the case functions.

    ``options(job)`` are set in the backend's group; ``prepare()`` runs before glance_store is
    imported (loading bindings, replacing what cannot work against the test server).
    """

    store_type: str
    _: dataclasses.KW_ONLY
    backend_id: str
    options: Callable[[Job], Mapping[str, object]]
    prepare: Callable[[], None] = _nothing
    id_prefix: str = ""  # before the random image id of an add

    def configure(self, job: Job) -> Any:
        """A configured ``glance_store.multi_backend`` with this one backend."""
        self.prepare()
        cfg = importlib.import_module("oslo_config.cfg")
        multi_backend = importlib.import_module("glance_store.multi_backend")
        # multi_backend reads the global CONF in get/get_store_from_store_identifier, so use it
        conf = cfg.CONF
        conf.register_opt(cfg.DictOpt("enabled_backends"))  # Glance registers it, not the library
        conf([], project="kglance-bench", default_config_files=[], default_config_dirs=[])
        conf.set_override("enabled_backends", {self.backend_id: self.store_type})
        multi_backend.register_store_opts(conf)
        conf.set_override("default_backend", self.backend_id, group="glance_store")
        for name, value in self.options(job).items():
            conf.set_override(name, value, group=self.backend_id)
        multi_backend.create_multi_stores(conf)
        multi_backend.verify_store()
        return multi_backend

    def timed_add(
        self, multi_backend: Any, image_id: str, size: int, job: Job
    ) -> tuple[Stopwatch, tuple[Any, ...]]:
        """``add_with_multihash`` of the input as ``size`` bytes (0: glance's "unknown")."""
        conf = importlib.import_module("oslo_config.cfg").CONF
        with open(job.input_file, "rb") as image_file, Stopwatch() as watch:
            result = multi_backend.add_with_multihash(
                conf, image_id, image_file, size, self.backend_id, "sha512"
            )
        return watch, tuple(result)

    def add(self, job: Job) -> Timing:
        """Add under a fresh id (known size unless ``params["sized"]`` is ``no``), then delete."""
        multi_backend = self.configure(job)
        size = job.size if job.params.get("sized", "yes") == "yes" else 0  # glance's "unknown"
        watch, (url, written, checksum, multihash, _meta) = self.timed_add(
            multi_backend, f"{self.id_prefix}{uuid.uuid4()}", size, job
        )
        multi_backend.delete(url, self.backend_id)
        return watch.timing(written, md5=checksum, sha512=multihash)

    def add_for_get(self, multi_backend: Any, image_id: str, job: Job) -> Timing:
        """Add the input (known size) for the get cases; its location goes to their params."""
        watch, (url, *_rest) = self.timed_add(multi_backend, image_id, job.size, job)
        return watch.timing(job.size, location=url)

    def store_once(self, multi_backend: Any, job: Job, *, image_id: str, url: str) -> Timing:
        """Keep the image at ``url`` if it has the input's size, else (re)store it."""
        exceptions = importlib.import_module("glance_store.exceptions")
        try:
            if multi_backend.get_size_from_uri_and_backend(url, self.backend_id) == job.size:
                return Timing(0.0, 0, 0.0, info={"location": url})
            multi_backend.delete(url, self.backend_id)
        except exceptions.NotFound:
            pass
        return self.add_for_get(multi_backend, image_id, job)

    def get(self, job: Job) -> Timing:
        """``multi_backend.get`` of ``params["location"]`` and a loop over every chunk."""
        multi_backend = self.configure(job)
        nbytes = 0
        with Stopwatch() as watch:
            chunks, _size = multi_backend.get(job.params["location"], self.backend_id)
            for chunk in chunks:
                nbytes += len(chunk)
        return watch.timing(nbytes)


def server_cases(
    module: str, *, store_type: str, server: str, add_setup: str | None = None
) -> list[plan.Case]:
    """``glance.<type>.add`` (known size), ``.add.unsized`` and ``.get``, run by ``module``."""

    def add_case(case_id: str, *, sized: bool) -> plan.PythonCase:
        size = "known size" if sized else "unknown size (image_size 0)"
        return plan.PythonCase(
            id=case_id,
            title=f"{TITLE} {store_type} add_with_multihash sha512, {size} ({server})",
            section="add",
            peer=plan.GLANCE,
            function=f"{module}:add",
            setup=add_setup and f"{module}:{add_setup}",
            params={"sized": "yes" if sized else "no"},
        )

    return [
        add_case(f"glance.{store_type}.add", sized=True),
        add_case(f"glance.{store_type}.add.unsized", sized=False),
        plan.PythonCase(
            id=f"glance.{store_type}.get",
            title=f"{TITLE} {store_type} get ({server})",
            section="get (warm cache)",
            peer=plan.GLANCE,
            function=f"{module}:get",
            setup=f"{module}:store_for_get",
            workdir=f"glance.{store_type}.get",
        ),
    ]
