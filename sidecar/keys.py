"""Typed keys of the state an application carries (aiohttp's ``AppKey``)."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from kglance.sidecar import recording, service


@dataclasses.dataclass(frozen=True, slots=True)
class AppSettings:
    upload_idle_timeout: float = 120.0  # seconds without body bytes before an upload fails
    check_retry_interval: float = 5.0  # seconds between checks of backends that failed one


SERVICE = web.AppKey("service", service.Service)
SETTINGS = web.AppKey("settings", AppSettings)
RECORDER = web.AppKey("recorder", recording.Recorder)  # only when recording is on
