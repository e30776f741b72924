"""``python -m pcctrl ...`` runs the ``pcctrl`` command."""

from pcctrl.cli import main

raise SystemExit(main())
