"""``python -m server``: the same as the ``prospect-sync`` command."""

import sys

from server.cli import main

sys.exit(main())
