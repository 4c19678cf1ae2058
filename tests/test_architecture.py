"""docs/architecture.md names every module of the package and every script, each under its own folder."""

import os
import re

from helpers import ROOT

FOLDERS = [
    "cluebench",
    "cluebench/tasks",
    "cluebench/train",
    "cluebench/grid",
    "classification",
    "mrc",
    "grid_search_tools",
]


def sections():
    """{folder: the names listed as `* `name`:` under its "`folder/`" heading}."""
    text = open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8").read()
    found, folder = {}, None
    for line in text.splitlines():
        heading = re.match(r"`([\w/]+)/`.*:$", line)
        if heading:
            folder = heading.group(1)
            found[folder] = set()
        elif line.startswith("#"):
            folder = None
        elif folder and line.startswith("* "):
            found[folder].update(re.findall(r"`([\w.]+)`", line.split(":", 1)[0]))
    return found


def test_every_module_and_script_is_on_the_map():
    listed = sections()
    for folder in FOLDERS:
        present = {
            n for n in os.listdir(os.path.join(ROOT, folder)) if n.endswith((".py", ".sh")) and n != "__main__.py"
        }
        assert present == listed.get(folder), f"docs/architecture.md, {folder}/"
