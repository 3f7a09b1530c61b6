"""``python -m polytask`` runs the command line."""

from polytask.cli import main

raise SystemExit(main())
