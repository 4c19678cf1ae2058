"""Check a CLUE leaderboard submission (a zip or a folder) against the official test files.

    python check_submission.py ZIP_OR_DIR --data_dir DIR [--strict]

One line per file: `OK  NAME  N ids`, or `FAIL NAME: reason` (with the line where one applies); leaderboard
files the submission lacks are listed (failures with --strict). Exit 0: all good, 1: a failure, 2: usage.
The checks are cluebench/submission_check.py's.
"""

import sys

from cluebench.grid import submission_check  # the package first sets up the process, before paddle is imported

if __name__ == "__main__":
    sys.exit(submission_check.main())
