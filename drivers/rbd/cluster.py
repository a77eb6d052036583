"""One librados connection per backend: opened on first use, shared, replaced when it dies.

glance_store connected and shut down a ``rados.Rados`` for every operation (two for a get,
one more per store lookup just to read the fsid). A connection is a monitor session, cephx
authentication, an OSD map download and a few threads, so that cost sat in front of every
request. Here a ``Cluster`` keeps one connection and one I/O context on the backend's pool:

* it connects lazily, on the first operation (or ``check()``, which the sidecar runs at
  start-up), so building a backend never blocks and never fails on the network;
* every operation *leases* the connection for its duration. When an operation sees that the
  connection is dead (librados returns ``ESHUTDOWN`` once the client has been blocklisted or
  shut down; ``rados.state`` stops being ``connected``), the connection is retired: the next
  operation opens a new one, and the old one is shut down when its last lease ends, never
  under an operation still using it. librados itself reconnects to monitors and OSDs that
  restart, so that is the only case that needs a new connection;
* one connection attempt runs at a time; operations that arrive meanwhile wait for it. A
  cancelled waiter does not cancel the attempt (its thread cannot be interrupted), and the
  connection it produces is kept, not leaked.

The cluster's fsid is read once per connection and kept for ``owns()``, which is synchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Concatenate, ParamSpec, TypeVar

import rados

from kglance.drivers import _threads, errors
from kglance.drivers.rbd import failures, options

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

RBD_DIRECTORY = "rbd_directory"  # librbd's index of the image names of a pool
CLOSE_TIMEOUT = 30.0  # seconds aclose() waits for calls still using the connection


@dataclasses.dataclass(eq=False)
class Connection:
    """A connected ``rados.Rados`` with an I/O context on the backend's pool."""

    cluster: rados.Rados
    ioctx: rados.Ioctx
    fsid: str
    leases: int = 0
    retired: bool = False

    @property
    def usable(self) -> bool:
        return not self.retired and self.cluster.state == "connected"

    def shutdown(self) -> None:
        """Close the I/O context and the connection (blocking)."""
        try:
            self.ioctx.close()
        finally:
            self.cluster.shutdown()


def connect(settings: options.RbdOptions) -> Connection:
    """Connect as glance_store does (conf file, user, timeouts) and open the pool (blocking)."""
    pool = settings.rbd_store_pool
    user = f"client.{settings.rbd_store_user or 'admin'}"
    try:
        cluster = rados.Rados(
            conffile=settings.rbd_store_ceph_conf, rados_id=settings.rbd_store_user
        )
    except rados.Error as exc:
        where = settings.rbd_store_ceph_conf or "the default locations"
        raise errors.ConfigurationError(
            f"cannot read the Ceph configuration from {where}: {exc}"
        ) from exc
    try:
        if settings.rbd_store_keyring is not None:
            cluster.conf_set("keyring", settings.rbd_store_keyring)
        if settings.rados_connect_timeout >= 0:
            timeout = str(settings.rados_connect_timeout)
            for name in ("rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"):
                cluster.conf_set(name, timeout)
        cluster.connect()
        fsid = cluster.get_fsid()
        ioctx = cluster.open_ioctx(pool)
    except rados.ObjectNotFound as exc:
        cluster.shutdown()
        raise errors.ConfigurationError(
            f"the pool {pool!r} does not exist, or {user} may not see it"
        ) from exc
    except (rados.PermissionError, rados.PermissionDeniedError) as exc:
        cluster.shutdown()
        raise errors.ConfigurationError(
            f"the Ceph cluster refused {user}: check its key and caps ({exc})"
        ) from exc
    except BaseException as exc:
        cluster.shutdown()
        raise failures.translate(
            exc, action=f"cannot connect to the Ceph cluster as {user}"
        ) from exc
    return Connection(cluster=cluster, ioctx=ioctx, fsid=fsid)


class Cluster:
    """The backend's shared connection.

    ``await cluster.run(fn, *args)`` runs ``fn(ioctx, *args)`` on the backend's thread pool
    under a lease that lasts until the *thread* returns, not until the awaiting task does: a
    cancelled caller gets control back at once, and the connection still cannot be shut down
    under the call. ``async with cluster.ioctx() as ioctx`` leases it for a longer stretch
    (an upload, a download) whose own clean-up waits for its threads.
    """

    def __init__(self, settings: options.RbdOptions, *, runner: _threads.BlockingRunner) -> None:
        self._settings = settings
        self._runner = runner
        self._current: Connection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._leased: set[Connection] = set()
        self._idle = asyncio.Event()  # set while no connection is leased
        self._idle.set()
        self._shutting_down: set[asyncio.Future[None]] = set()
        self.fsid: str | None = None  # of the last connection; None before the first
        self.connections_opened = 0
        self._closed = False

    async def run(
        self,
        function: Callable[Concatenate[rados.Ioctx, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``function(ioctx, *args, **kwargs)`` on a worker thread, under a lease."""
        connection = await self._lease()
        call = asyncio.ensure_future(self._runner.run(function, connection.ioctx, *args, **kwargs))
        call.add_done_callback(functools.partial(self._call_done, connection))
        return await asyncio.shield(call)

    def _call_done(self, connection: Connection, call: asyncio.Future[object]) -> None:
        error = None if call.cancelled() else call.exception()  # also marks it retrieved
        if failures.connection_lost(error):
            self._lost(connection, error)
        self._release(connection)

    @contextlib.asynccontextmanager
    async def ioctx(self) -> AsyncIterator[rados.Ioctx]:
        """The pool's I/O context for a stretch whose clean-up waits for its own threads."""
        connection = await self._lease()
        try:
            yield connection.ioctx
        except BaseException as exc:
            if failures.connection_lost(exc):
                self._lost(connection, exc)
            raise
        finally:
            self._release(connection)

    def client_address(self) -> str | None:
        """The address the cluster knows this client by (what ``osd blocklist`` takes)."""
        current = self._current
        return None if current is None else str(current.cluster.get_addrs())

    async def connected_fsid(self) -> str:
        """The fsid of the cluster, connecting first if needed."""
        async with self.ioctx():
            pass
        assert self.fsid is not None
        return self.fsid

    async def _lease(self) -> Connection:
        while True:
            if self._closed:
                raise errors.BackendError("the rbd backend is closed")
            current = self._current
            if current is not None and current.usable:
                current.leases += 1
                self._leased.add(current)
                self._idle.clear()
                return current
            if current is not None:
                self._retire(current)
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(self._connect())
                self._connecting.add_done_callback(_retrieve)
            # a cancelled waiter leaves the attempt running; its connection is installed
            await asyncio.shield(self._connecting)

    async def _connect(self) -> None:
        try:
            connection = await self._runner.run(connect, self._settings)
            self.connections_opened += 1
            self._current = connection
            self.fsid = connection.fsid
            if self._closed:
                self._retire(connection)
        finally:
            self._connecting = None

    def _lost(self, connection: Connection, error: BaseException | None) -> None:
        logger.warning("the Ceph connection was lost (%s); reconnecting on next use", error)
        self._retire(connection)

    def _retire(self, connection: Connection) -> None:
        if connection.retired:
            return  # its shutdown is already arranged
        connection.retired = True
        if self._current is connection:
            self._current = None
        if connection.leases == 0:
            self._shutdown_later(connection)

    def _release(self, connection: Connection) -> None:
        connection.leases -= 1
        if connection.leases == 0:
            self._leased.discard(connection)
            if not self._leased:
                self._idle.set()
            if connection.retired:
                self._shutdown_later(connection)

    def _shutdown_later(self, connection: Connection) -> None:
        # the default executor: the backend's own pool may already be closed
        future = asyncio.get_running_loop().run_in_executor(None, _shutdown_quietly, connection)
        self._shutting_down.add(future)
        future.add_done_callback(self._shutting_down.discard)

    async def check(self) -> None:
        """A round trip to the cluster on a live connection; one reconnect if it was dead."""
        for attempt in (1, 2):
            try:
                await self.run(_probe, self._settings.rbd_store_pool)
                return
            except errors.StoreError as exc:
                if attempt == 2 or not failures.connection_lost(exc):
                    raise

    async def aclose(self) -> None:
        """Shut the connection down once the calls still using it have returned."""
        self._closed = True
        if self._connecting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._connecting)
        if self._current is not None:
            self._retire(self._current)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._idle.wait()
        except TimeoutError:
            logger.warning("closing the rbd backend while calls still use its Ceph connection")
        if self._shutting_down:
            await asyncio.gather(*self._shutting_down, return_exceptions=True)


def _probe(ioctx: rados.Ioctx, pool: str) -> None:
    """One OSD round trip that needs read access to the pool.

    A monitor command (pool stats) would still succeed for a blocklisted client; a stat of
    the pool's image directory reaches an OSD, which is where blocklisting bites.
    """
    try:
        ioctx.stat(RBD_DIRECTORY)
    except rados.ObjectNotFound:
        pass  # a pool no image was ever created in
    except rados.Error as exc:
        raise failures.translate(exc, action=f"cannot reach the OSDs of pool {pool!r}") from exc


def _shutdown_quietly(connection: Connection) -> None:
    try:
        connection.shutdown()
    except rados.Error as exc:
        logger.warning("shutting down a Ceph connection failed: %s", exc)


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a failed attempt's exception as seen: its waiters may all have been cancelled."""
    if not task.cancelled():
        task.exception()
