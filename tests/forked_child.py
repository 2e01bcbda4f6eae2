"""Running a check in a forked child of the test process."""

import os


def in_forked_child(report) -> str:
    """What report() returns in a forked child, as text."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        try:
            os.write(write, str(report()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as child:
        reported = child.read()
    os.waitpid(pid, 0)
    return reported
