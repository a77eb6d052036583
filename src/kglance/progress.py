"""A one-line transfer display for the terminal: bytes, percentage, throughput and ETA.

Written by hand because it is forty lines and a progress library would be the command line's
only dependency beyond the standard library. It draws only when its stream is a terminal, so
``kglance get ID > file`` in a script or a test writes nothing to stderr but errors.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self, TextIO

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(count: float) -> str:
    for unit in _UNITS:
        if abs(count) < 1024 or unit == _UNITS[-1]:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts bytes and redraws one line at most every ``interval`` seconds.

    ``initial`` bytes (a resumed download's existing part) count toward the percentage but
    not toward the throughput, which measures this run only.
    """

    def __init__(
        self,
        label: str,
        *,
        total: int | None,
        stream: TextIO,
        initial: int = 0,
        enabled: bool | None = None,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.done = initial
        self._initial = initial
        self._stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def advance(self, count: int) -> None:
        self.done += count
        now = self._clock()
        if self.enabled and (self._drawn_at is None or now - self._drawn_at >= self._interval):
            self._draw(now)

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw(self._clock())
            self._stream.write("\n")
            self._stream.flush()
            self.enabled = False

    def line(self, now: float) -> str:
        """The text of the display at time ``now``, without the bar."""
        elapsed = max(now - self._started, 1e-9)
        rate = (self.done - self._initial) / elapsed
        parts = [human_bytes(self.done)]
        if self.total is not None:
            parts[0] += f" / {human_bytes(self.total)}"
            percent = 100.0 if self.total == 0 else 100.0 * self.done / self.total
            parts.insert(0, f"{percent:3.0f}%")
        parts.append(f"{human_bytes(rate)}/s")
        if self.total is not None and self.done < self.total and rate > 0:
            parts.append(f"ETA {human_duration((self.total - self.done) / rate)}")
        elif self.total is not None and self.done >= self.total:
            parts.append(f"in {human_duration(elapsed)}")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        text = self.line(now)
        width = shutil.get_terminal_size((80, 24)).columns - 1  # the last column would wrap
        room = width - len(self.label) - len(text) - 4  # " [", "]" and " "
        bar = ""
        if self.total and room >= 10:
            cells = min(room, 40)
            filled = min(cells, cells * self.done // self.total)
            bar = " [" + "#" * filled + "-" * (cells - filled) + "]"
        line = f"{self.label}{bar} {text}"
        self._stream.write("\r" + line[:width].ljust(width))
        self._stream.flush()
