"""`python -m wasi_hw` is `wasi-hw`."""

import sys

from ._cli import main

sys.exit(main())
