"""The rbd driver: glance_store's rbd store on librados/librbd (Debian's python3-rados/-rbd).

Modules: ``options`` (glance's option names), ``cluster`` (the one shared connection),
``aio`` (librbd aio awaited from asyncio), ``writing`` and ``reading`` (the data paths),
``removal`` (delete semantics, the removal lock, the leftover sweep), ``uploads`` (the
pool's record of uploads in progress), ``failures`` (errno to our errors), ``driver`` (the
verbs).
"""

from kglance.drivers.rbd.driver import RbdDriver

__all__ = ["RbdDriver"]
