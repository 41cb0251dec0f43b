"""Load and fault tests send traffic to this machine only: every target is checked here first."""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlsplit


def loopback_only(url: str) -> str:
    """`url` unchanged if it names this machine (a loopback address, localhost or a unix socket); else refuse."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = parts.scheme == "unix" or host == "localhost" or ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refused: {host or url!r} is not a loopback address; load goes to this machine only")
    return url
