import sys

from .scheduler import run_dir_main

run_dir_main(sys.argv[1:])
