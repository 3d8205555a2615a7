"""Where a request comes from, as the per-network limits count it."""

from __future__ import annotations

import ipaddress


def client_network(address: str | None) -> str | None:
    """What per-network limits count: an IPv4 address, or an IPv6 address's /64 (one
    home or phone gets a whole /64, so its addresses are one network)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
