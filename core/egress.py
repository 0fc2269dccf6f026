"""Egress rules: the one address check every outgoing request goes through (judge endpoints,
webhook deliveries, served models), and the HTTP session that applies it on every connection.

A host is refused when any address it resolves to is loopback, link-local, private (RFC 1918,
unique-local IPv6), shared (CGNAT), multicast, unspecified, reserved, documentation or
benchmarking space, a cloud metadata address, or an IPv6 address embedding one of those
(IPv4-mapped, 6to4, NAT64), unless the operator allows its network (LETHE_EGRESS_ALLOW_NETWORKS,
or an endpoint profile's own networks). A cloud metadata address stays refused inside a wider
allowed network: only a network that is exactly that one address allows it, so allowing
169.254.0.0/16 for a link-local service does not open the instance's credentials.

``EgressSession`` checks on every new connection, after DNS resolution, and connects to the very
address it checked (no second lookup that a rebinding DNS server could answer differently),
while the URL's host name stays the Host header, the TLS SNI and the name the certificate is
checked against. It follows no redirects and takes no proxy, .netrc or CA settings from the
environment. No Django imports: settings reach it as arguments (``egress_policy`` is the one
place that reads them).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from socket import timeout as SocketTimeout

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

from core.errors import LetheError

ALLOW_SETTING = "LETHE_EGRESS_ALLOW_NETWORKS"

# Addresses that hand out the machine's cloud credentials or identity (AWS, GCP, Azure,
# OpenStack, DigitalOcean: 169.254.169.254; AWS IPv6 IMDS; ECS and EKS credential agents;
# Alibaba Cloud; Oracle Cloud).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "100.100.100.200",
        "192.0.0.192",
    )
)

_FORBIDDEN_NETWORKS = [
    (ipaddress.ip_network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "shared (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # with 255.255.255.255, the broadcast address
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "reserved"),  # IPv4-compatible (deprecated); Python counts it as global
        ("64:ff9b:1::/48", "reserved"),
        ("100::/64", "reserved"),
        ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo among them
        ("2001:db8::/32", "documentation"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "reserved"),
        ("ff00::/8", "multicast"),
    )
]

# What an endpoint profile's "allow_private": true opens: the loopback, private, shared and
# link-local ranges (metadata addresses stay refused, see above).
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# inet_aton's forms: 2130706433, 0177.0.0.1, 0x7f.1, 127.1. Only these characters, so a name is
# never mistaken for one (and inet_aton's tolerance of trailing text never comes into play).
_INET_ATON_FORM = re.compile(r"^[0-9a-fA-FxX.]+$")


class EgressRefused(LetheError):
    """An outgoing request to an address the egress rules forbid; nothing was sent."""

    code = "egress_refused"


def _embedded_ipv4(address):
    """The IPv4 address an IPv6 address carries and routes to, if any."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_forbidden_reason(address) -> str | None:
    """Why ``address`` is not a public destination ("loopback", "private (RFC 1918)", "cloud
    metadata", ...), or None when it is one. Allowed networks are not considered here."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_forbidden_reason(embedded)
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    for network, reason in _FORBIDDEN_NETWORKS:
        if address.version == network.version and address in network:
            return reason
    if not address.is_global:
        return "reserved"
    return None


def address_refusal(address, allow_networks=()) -> str | None:
    """Why a connection to ``address`` is refused under ``allow_networks``, or None if allowed."""
    reason = address_forbidden_reason(address)
    if reason is None:
        return None
    candidates = [address] + [embedded for embedded in [_embedded_ipv4(address)] if embedded is not None]
    for network in allow_networks:
        if reason == "cloud metadata" and network.num_addresses != 1:
            continue
        if any(candidate.version == network.version and candidate in network for candidate in candidates):
            return None
    return reason


def ip_literal(host: str):
    """The address ``host`` spells, in any form a resolver would also read as one (dotted,
    IPv6 with or without brackets and zone, and inet_aton's decimal, octal, hex and short forms),
    or None for a name. Nothing is looked up."""
    text = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _INET_ATON_FORM.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (raises socket.gaierror)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def parse_networks(values, *, setting=ALLOW_SETTING) -> tuple:
    """``["127.0.0.0/8", "::1"]`` as networks; a bad entry is a ValueError naming the setting."""
    networks = []
    for value in values or ():
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{setting}: {value!r} is not a network such as 127.0.0.0/8 or fd12::/64 ({exc})") from None
    return tuple(networks)


def egress_check(host: str, port: int, *, allow_networks=(), resolver=None) -> list:
    """The addresses ``host`` may be reached at, after resolution; raises EgressRefused when any
    of them is forbidden (a name with one public and one private address is refused whole: the
    connection could go to either). A name that does not resolve raises socket.gaierror.

    ``resolver(host, port) -> [address text]`` defaults to the system resolver (this module's
    ``resolve_host``, looked up at each call).
    """
    if not host:
        raise EgressRefused("An outgoing request needs a host name or address.")
    literal = ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        names = (resolver or resolve_host)(host, port)
        addresses = list(dict.fromkeys(ipaddress.ip_address(name) for name in names))
        if not addresses:
            raise socket.gaierror(f"{host!r} resolved to no address")
    for address in addresses:
        reason = address_refusal(address, allow_networks)
        if reason is not None:
            where = f"{host!r} is a {reason} address" if literal is not None else f"{host!r} resolves to a {reason} address"
            raise EgressRefused(
                f"Outgoing request refused: {where}, which Lethe does not send requests to. An operator can allow "
                f"its network with {ALLOW_SETTING} (or an endpoint profile's allow_private / allow_networks)."
            )
    return addresses


@dataclass(frozen=True)
class EgressPolicy:
    """The networks an outgoing request may reach besides public addresses."""

    allow_networks: tuple = ()

    def check(self, host: str, port: int) -> list:
        return egress_check(host, port, allow_networks=self.allow_networks)

    def widened(self, networks) -> EgressPolicy:
        return EgressPolicy(tuple(dict.fromkeys((*self.allow_networks, *networks))))


def egress_policy() -> EgressPolicy:
    """The installation's policy: LETHE_EGRESS_ALLOW_NETWORKS from the settings."""
    from django.conf import settings

    return EgressPolicy(parse_networks(settings.LETHE_EGRESS_ALLOW_NETWORKS))


# ---------------------------------------------------------------- the session


def _checked_connection(conn):
    """Resolve, check and connect in one step: the socket goes to an address that was checked."""
    try:
        addresses = conn.egress_policy.check(conn._dns_host, conn.port)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    last_error = None
    for address in addresses:
        try:
            sock = create_connection((str(address), conn.port), conn.timeout, source_address=conn.source_address, socket_options=conn.socket_options)
        except SocketTimeout as exc:
            raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})") from exc
        except OSError as exc:
            last_error = exc
            continue
        return sock
    raise NewConnectionError(conn, f"Failed to establish a new connection: {last_error}")


class _CheckedHTTPConnection(HTTPConnection):
    egress_policy: EgressPolicy = EgressPolicy()

    def _new_conn(self):
        return _checked_connection(self)


class _CheckedHTTPSConnection(HTTPSConnection):
    egress_policy: EgressPolicy = EgressPolicy()

    def _new_conn(self):
        return _checked_connection(self)


class EgressAdapter(HTTPAdapter):
    """Connection pools whose every new connection passes ``policy``; proxies are refused."""

    def __init__(self, policy: EgressPolicy, **kwargs):
        self.egress_policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        policy = self.egress_policy
        http = type("EgressHTTPConnection", (_CheckedHTTPConnection,), {"egress_policy": policy})
        https = type("EgressHTTPSConnection", (_CheckedHTTPSConnection,), {"egress_policy": policy})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("EgressHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("EgressHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise EgressRefused("Outgoing requests go directly to their host; a proxy is not used.")


class EgressSession(requests.Session):
    """A requests session under egress rules: every connection checked, redirects never followed
    (a 3xx answer is returned as it is), nothing taken from the environment but a CA bundle."""

    def __init__(self, policy: EgressPolicy, *, pool_maxsize: int = 10):
        super().__init__()
        self.trust_env = False  # no proxies or .netrc credentials from the environment
        self.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        adapter = EgressAdapter(policy, pool_connections=4, pool_maxsize=max(1, pool_maxsize))
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request, **kwargs):
        kwargs["allow_redirects"] = False
        return super().send(request, **kwargs)
