"""SIGINT and SIGTERM as a stop request that a process's main loop polls.

The handler only sets a flag. Python runs a handler in the main thread between two
bytecodes, so it may interrupt an earlier handler; had it called ``threading.Event.set``,
the second call would wait forever on the lock the first one holds (a burst of signals
hung a node's shutdown that way).
"""

from __future__ import annotations

import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by a signal; ``requested`` tells the main loop to finish."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, *_: object) -> None:
        self.requested = True

    @staticmethod
    def ignore_further() -> None:
        """Once the process has finished its work: later signals change nothing. (Python
        puts the default handlers back as it exits, and a late SIGINT would then end a
        cleanly stopped process with a failed status.)"""
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def stop_on_signals() -> StopRequest:
    """Install the handler for SIGINT and SIGTERM (main thread only) and return it."""
    request = StopRequest()
    for sig in SIGNALS:
        signal.signal(sig, request)
    return request
