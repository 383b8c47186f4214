"""The SMTP client's IP address: one spelling for limits and logs, and the address literal for Received."""

import ipaddress


def canonical_ip(address: str) -> str:
    """One spelling per client: IPv4-mapped IPv6 (`::ffff:192.0.2.7`, from a dual-stack socket) becomes the
    IPv4 address, an IPv6 zone (`%eth0`) is dropped, IPv6 is compressed. Anything unparsable is kept as is."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def address_literal(address: str | None) -> str:
    """RFC 5321 §4.1.3: `[192.0.2.7]` for IPv4, `[IPv6:2001:db8::7]` for IPv6."""
    if not address:
        return "[unknown]"
    canonical = canonical_ip(address)
    try:
        ip = ipaddress.ip_address(canonical)
    except ValueError:
        return "[unknown]"
    return f"[IPv6:{ip}]" if ip.version == 6 else f"[{ip}]"
