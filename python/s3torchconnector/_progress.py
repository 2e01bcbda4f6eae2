"""A progress line for the commands: one line on the terminal, rewritten in place."""

import sys
import time


class TerminalProgress:
    """Call it with the running values for ``template`` (``"listed {:,} objects"``); ``done()``
    shows the last ones and ends the line. Redraws at most a few times a second, so callers may
    report every item."""

    INTERVAL = 0.2  # seconds between redraws

    def __init__(self, template: str):
        self._template = template
        self._values = None
        self._drawn = 0.0

    def __call__(self, *values) -> None:
        self._values = values
        now = time.monotonic()
        if now - self._drawn >= self.INTERVAL:
            self._drawn = now
            self._draw()

    def done(self) -> None:
        if self._values is not None:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _draw(self) -> None:
        sys.stderr.write("\r" + self._template.format(*self._values))
        sys.stderr.flush()
