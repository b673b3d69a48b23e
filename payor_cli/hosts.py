"""What payor knows of hosts: which ones are this machine (plain http and no proxy only there)."""

from __future__ import annotations

import ipaddress

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: this machine only."""
    if host.strip("[]").lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
