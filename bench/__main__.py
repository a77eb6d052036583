"""``python -m bench`` (what ``bench/run.sh`` runs): see ``bench.runner``."""

import sys

from bench.runner import main

sys.exit(main())
