"""`python -m logwarden` is the `logwarden` command."""

import sys

from logwarden.cli import main

sys.exit(main())
