"""``python -m devstack``: ``make run``."""

import sys

from devstack.run import main

if __name__ == "__main__":
    sys.exit(main())
