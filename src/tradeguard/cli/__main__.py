"""``python -m tradeguard.cli``: the same as the ``tradeguard`` command."""

from __future__ import annotations

from tradeguard.cli import main

if __name__ == "__main__":
    main()
