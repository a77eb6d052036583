"""The cinder driver: glance_store's cinder store on python-cinderclient and os-brick.

Modules: ``options`` (glance's option names and ours), ``api`` (the Cinder volume API and
its errors), ``attach`` (os-brick attach and detach, undone on every path), ``transfer``
(writes to and reads from the attached device), ``driver`` (the verbs, volume states,
growth of unknown-size images).
"""

from kglance.drivers.cinder.driver import CinderDriver

__all__ = ["CinderDriver"]
