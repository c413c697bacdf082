"""``python -m ticketsim``; stays light for the same reason as :mod:`ticketsim._entry`."""

from __future__ import annotations

from ticketsim._entry import main

if __name__ == "__main__":
    main()
