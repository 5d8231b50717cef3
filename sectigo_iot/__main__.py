"""``python -m sectigo_iot``: the ``sectigo`` command (needs the ``cli`` extra)."""

import sys

from .cli import main

sys.exit(main())
