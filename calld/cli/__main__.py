"""``python -m calld.cli``: the ``calld`` command (its exit status through ``SystemExit``)."""

from calld.cli.main import main

raise SystemExit(main())
