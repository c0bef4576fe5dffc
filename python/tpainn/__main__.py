"""`python -m tpainn ...`, the `tpainn` command (as `torchrun ... -m tpainn train CONFIG` runs it)."""

import sys

from tpainn.cli import main

sys.exit(main())
