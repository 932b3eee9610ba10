"""``python -m omnicodec.cli ...``: what Ray Jobs and subprocess launchers run."""

import sys

from omnicodec.cli import main

sys.exit(main())
