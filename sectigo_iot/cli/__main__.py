"""``python -m sectigo_iot.cli``: the same as the ``sectigo`` command."""

import sys

from . import main

sys.exit(main())
