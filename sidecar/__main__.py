"""``python -m kglance.sidecar``: the same server as ``kglance serve``."""

import sys

from kglance.sidecar import server

sys.exit(server.main())
