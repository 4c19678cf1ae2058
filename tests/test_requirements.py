"""The two Paddle lines' locks stay in step: the same set but for paddlepaddle and its own dependency."""

import os

from helpers import ROOT


def pins(name):
    with open(os.path.join(ROOT, name)) as f:
        return {line.split("#")[0].strip() for line in f if line.split("#")[0].strip()}


def test_the_two_locks_differ_only_in_paddle():
    three, two = pins("requirements.txt"), pins("requirements-paddle2.txt")
    assert three - two == {
        "paddlepaddle==3.3.1",
        'networkx==3.6.1; python_version >= "3.11"',
        'networkx==3.4.2; python_version < "3.11"',
    }
    assert two - three == {"paddlepaddle==2.6.2"}
    assert "-e ." in three and "paddlenlp==2.8.1" in three
