"""PaddleNLP's logger, imported at its first use.

The task layer (data readers, the submission checker, the grid tools) imports no Paddle: a tool that
only reads files starts in a fraction of a second. A training run logs through this as through
PaddleNLP's own logger, so its lines look the same.
"""


class _Deferred:
    def __getattr__(self, name):
        from paddlenlp.utils.log import logger

        return getattr(logger, name)


logger = _Deferred()
