"""Fixtures of the driver tests: real-socket peers (console, PDU, SSH) and an emulated lab.

The peers themselves live in ``driver_peers.py`` so tests can import them by a unique module
name (``conftest`` is ambiguous when several test folders each have one).
"""

from driver_peers import (  # noqa: F401 - re-exported as fixtures
    console_peer,
    emulated,
    mini_shell,
    pdu_peer,
    ssh_peer,
)
