"""``python -m tradeguard``: the command line (``tradeguard serve``, ``secrets`` ...)."""

from tradeguard.cli import main

if __name__ == "__main__":
    main()
