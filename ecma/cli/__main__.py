"""``python -m ecma.cli``: the ``ecma`` command."""

import sys

from ecma.cli import main

sys.exit(main())
