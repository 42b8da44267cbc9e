"""``python -m eisen_lightning VERB OVERRIDES`` is the ``eisen`` command."""

import sys

from eisen_lightning.cli import main

sys.exit(main())
