"""``python -m robocell`` runs the command line."""

import sys

from robocell.cli import main

sys.exit(main())
