"""The aiohttp application: routes, error rendering and the service state, nothing about sockets.

``make_app`` is what tests and ``server`` both use, so the application can be exercised
in-process without a socket, and the server adds only the process concerns (socket, signals,
reload) around it.
"""

from __future__ import annotations

from aiohttp import web

from kglance.drivers import backends
from kglance.sidecar import keys, metrics, middleware, recording, routes, service
from kglance.sidecar import settings as serve_settings


def make_app(
    backends_: backends.Backends,
    settings: keys.AppSettings | None = None,
    *,
    recording_options: serve_settings.RecordingOptions | None = None,
) -> web.Application:
    app = web.Application(middlewares=[middleware.errors_to_json, middleware.count_requests])
    settings = settings or keys.AppSettings()
    app[keys.SERVICE] = service.Service(
        backends_,
        metrics_=metrics.Metrics(),
        check_retry_interval=settings.check_retry_interval,
    )
    app[keys.SETTINGS] = settings
    app.on_response_prepare.append(middleware.prepare_response)
    app.on_startup.append(_start_checks)
    if recording_options is not None:
        app[keys.RECORDER] = recording.Recorder(
            recording_options, metrics_=app[keys.SERVICE].metrics
        )
        app.on_startup.append(_start_recording)
        app.on_cleanup.append(_flush_records)
    app.on_cleanup.append(_close)
    routes.add_routes(app)
    return app


async def _start_checks(app: web.Application) -> None:
    app[keys.SERVICE].start_checks()


async def _start_recording(app: web.Application) -> None:
    app[keys.RECORDER].start()


async def _flush_records(app: web.Application) -> None:
    await app[keys.RECORDER].aclose()


async def _close(app: web.Application) -> None:
    await app[keys.SERVICE].aclose()
