"""``python -m clustersim``: the ``clustersim`` command (clustersim.cli)."""

import sys

from clustersim.cli import main

if __name__ == "__main__":
    sys.exit(main())
