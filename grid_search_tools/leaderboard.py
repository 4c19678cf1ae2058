"""The upstream README's two tables (dev results, best hyper-parameters) across the models of a grid root.

    python leaderboard.py [--output_root ROOT] [--output DIR] [MODEL ...]

Prints both tables as Markdown and writes ROOT/leaderboard/ (--output elsewhere): leaderboard.md,
leaderboard.csv, leaderboard_hyperparameters.csv and leaderboard.png. Models in the upstream README get
their published row and ours − published beside ours. Exit 0: written; 2: bad input, said in one line.
The logic is cluebench/leaderboard.py's.
"""

import sys

from cluebench.grid import leaderboard  # the package first sets up the process, before paddle is imported

if __name__ == "__main__":
    sys.exit(leaderboard.main())
