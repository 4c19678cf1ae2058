"""`python -m cluebench.extract`: moved to cluebench.grid.extract; kept so that command lines keep working."""

import sys

from .grid.extract import main

if __name__ == "__main__":
    sys.exit(main())
