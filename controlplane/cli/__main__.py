"""`python -m controlplane.cli`: the same as the `kubelab` command."""

import sys

from controlplane.cli import main

sys.exit(main())
