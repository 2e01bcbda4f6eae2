"""``python -m s3torchconnector COMMAND ...``: the ``s3torchconnector`` command (see ``_cli``)."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
