"""A progress line for the commands: one line on the terminal, rewritten in place."""

import sys
import time
from typing import Optional


class TerminalProgress:
    """Call it with the running values for ``template`` (``"listed {:,} objects"``); ``done()``
    shows the last ones and ends the line. Redraws at most a few times a second, so callers may
    report every item."""

    INTERVAL = 0.2  # seconds between redraws

    def __init__(self, template: str):
        self._template = template
        self._values: Optional[tuple] = None
        self._drawn = 0.0

    def __call__(self, *values) -> None:
        self._values = values
        now = time.monotonic()
        if now - self._drawn >= self.INTERVAL:
            self._drawn = now
            self._draw(values)

    def done(self) -> None:
        if self._values is not None:
            self._draw(self._values)
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _draw(self, values: tuple) -> None:
        sys.stderr.write("\r" + self._template.format(*values))
        sys.stderr.flush()
