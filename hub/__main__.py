"""`python -m hub` runs the commandhub command line."""

import sys

from hub.cli import main

sys.exit(main())
