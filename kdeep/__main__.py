"""`python -m kdeep` runs the command line."""
from kdeep.cli import main

raise SystemExit(main())
