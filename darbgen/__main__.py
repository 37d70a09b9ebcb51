"""``python -m darbgen`` is the ``darbgen`` command."""
import sys

from .cli import main

sys.exit(main())
