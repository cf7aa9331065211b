"""`python -m innrsic` runs the command line."""

import sys

from innrsic.cli import main

sys.exit(main())
