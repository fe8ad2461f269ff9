"""``python -m inplace_magic``: the command (a watched child does the check, see :mod:`.cli`)."""

import sys

from .cli import console, main
from .cli.options import CHILD_FLAG

if sys.argv[1:2] == [CHILD_FLAG]:
    sys.exit(main(sys.argv[3:], channel_fd=int(sys.argv[2])))
sys.exit(console())
