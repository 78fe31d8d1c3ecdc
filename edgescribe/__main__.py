"""`python -m edgescribe` runs the CLI."""

from edgescribe.cli import main

raise SystemExit(main())
