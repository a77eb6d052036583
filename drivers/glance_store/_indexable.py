"""``Indexable``: glance_store's wrapper giving an iterator a length and slice access.

It exists because Glance once passed ``get()`` results straight into ``add()`` through
eventlet sockets that index the data (``data[start:]``). The image iterators the
compatibility stores return derive from it, so ``len()`` gives the size ``get`` reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class Indexable:
    """Wrap an iterator or file-like object of ``size`` bytes as an indexable sequence."""

    def __init__(self, wrapped: Any, size: int | None) -> None:
        self.wrapped = wrapped
        self.size = int(size) if size else int(getattr(wrapped, "len", 0))
        self.cursor = 0
        self.chunk: Any = None

    def __iter__(self) -> Iterator[Any]:
        for chunk in self.wrapped:
            self.chunk = chunk
            yield chunk

    def __getitem__(self, i: Any) -> Any:
        """The rest of the current chunk, or the next one (``i`` is a slice to the end)."""
        start = (i.start or 0) if isinstance(i, slice) else i
        if start < self.cursor:
            return self.chunk[(start - self.cursor) :]
        self.chunk = self.another()
        if self.chunk:
            self.cursor += len(self.chunk)
        return self.chunk

    def another(self) -> Any:
        """The next element; implemented by subclasses."""
        raise NotImplementedError

    def getvalue(self) -> Any:
        """The whole value of the wrapped object (used in tests)."""
        return self.wrapped.getvalue()

    def __len__(self) -> int:
        return self.size
