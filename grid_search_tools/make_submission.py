"""Make the CLUE leaderboard zip of a grid run: each task's best dev job's test predictions.

    python make_submission.py MODEL [--output_root ROOT] [--out FILE] [--strict] [--data_dir DIR]

Writes RUN_DIR/submission/, RUN_DIR/submission.zip and submission.md beside the zip; lists the tasks
missing and why. With --data_dir, checks the zip as check_submission.py does. Exit 0: written; 1: --strict
and incomplete (nothing written) or the check failed; 2: usage. The logic is cluebench/submission.py's.
"""

import sys

from cluebench.grid import submission  # the package first sets up the process, before paddle is imported

if __name__ == "__main__":
    sys.exit(submission.main())
