"""``python -m ait ...`` (also what ``torchrun -m ait`` runs)."""

import sys

from ait.cli import main

sys.exit(main())
