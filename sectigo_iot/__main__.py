"""``python -m sectigo_iot``: the ``sectigo`` command (needs the ``cli`` extra)."""

import sys

try:
    from .cli import main
except ModuleNotFoundError as exc:  # the extra is missing: say so in one line
    if exc.name not in ("typer", "rich"):
        raise
    sys.exit(f'error: the sectigo command needs {exc.name}: pip install "sectigo-iot[cli]"')

sys.exit(main())
