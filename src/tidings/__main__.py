"""`python -m tidings ROLE` is the same as `tidings ROLE`."""

from tidings.app.cli import main

raise SystemExit(main())
