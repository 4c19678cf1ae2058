"""`python -m cluebench.seeds`: moved to cluebench.grid.seeds; kept so that command lines keep working."""

import sys

from .grid.seeds import main

if __name__ == "__main__":
    sys.exit(main())
