"""`python -m wasi_hw` is `wasi-hw`: a program, at the top of the layers (nothing imports it)."""

import sys

from wasi_hw.apps.cli import main

sys.exit(main())
