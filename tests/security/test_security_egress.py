"""The egress rules. The address check is tested as a function with a stubbed resolver (no
socket is opened); the session that applies it on every connection is tested against HTTP
servers on 127.0.0.1 only."""

import http.server
import ipaddress
import socket
import threading

import pytest
import requests

from core.egress import (
    EgressPolicy,
    EgressRefused,
    EgressSession,
    address_forbidden_reason,
    address_refusal,
    egress_check,
    ip_literal,
    parse_networks,
)


def stub_resolver(table):
    calls = []

    def resolve(host, port):
        calls.append((host, port))
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} unknown")
        return table[host]

    resolve.calls = calls
    return resolve


def refusing_resolver(host, port):
    raise AssertionError(f"an address literal was sent to the resolver: {host!r}")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.1", "private (RFC 1918)"),
        ("172.16.5.4", "private (RFC 1918)"),
        ("172.31.255.255", "private (RFC 1918)"),
        ("192.168.0.1", "private (RFC 1918)"),
        ("fd12:3456::1", "private (unique local)"),
        ("fc00::1", "private (unique local)"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.254", "shared (CGNAT)"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.0.8", "reserved"),
        ("192.0.2.10", "documentation"),
        ("198.51.100.10", "documentation"),
        ("203.0.113.10", "documentation"),
        ("2001:db8::1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("fec0::1", "reserved"),
        ("2001::1", "reserved"),
        # IPv6 forms that carry an IPv4 address are judged by it
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:a00:1", "private (RFC 1918)"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 of 169.254.169.254
        ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated)
    ],
)
def test_each_forbidden_range_is_refused_with_its_reason(address, reason):
    parsed = ipaddress.ip_address(address)
    assert address_forbidden_reason(parsed) == reason
    assert address_refusal(parsed) == reason
    with pytest.raises(EgressRefused, match=f"is a {reason.replace('(', '[(]').replace(')', '[)]')} address"):
        egress_check(address, 443, resolver=refusing_resolver)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8"])
def test_public_addresses_are_accepted(address):
    assert address_forbidden_reason(ipaddress.ip_address(address)) is None
    assert egress_check(address, 443, resolver=refusing_resolver) == [ipaddress.ip_address(address)]


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.0.0.1", "127.0.0.1"),  # hex
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # short form
        ("0", "0.0.0.0"),
        ("2852039166", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("[::1]", "::1"),
        ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),
    ],
)
def test_numeric_forms_of_an_address_are_read_as_that_address_without_a_lookup(host, address):
    assert ip_literal(host) == ipaddress.ip_address(address)
    with pytest.raises(EgressRefused):
        egress_check(host, 80, resolver=refusing_resolver)


@pytest.mark.parametrize("name", ["example.org", "cafe.be", "deadbeef.example", "1.2.3.4.example.org", "localhost"])
def test_names_are_not_mistaken_for_addresses(name):
    assert ip_literal(name) is None


def test_a_name_is_checked_after_resolution():
    resolver = stub_resolver(
        {
            "api.partner.test": ["93.184.216.34"],
            "metadata.google.internal": ["169.254.169.254"],
            "split.partner.test": ["93.184.216.34", "10.0.0.5"],
            "mapped.partner.test": ["::ffff:192.168.1.1"],
        }
    )

    assert egress_check("api.partner.test", 443, resolver=resolver) == [ipaddress.ip_address("93.184.216.34")]
    with pytest.raises(EgressRefused, match="'metadata.google.internal' resolves to a cloud metadata address"):
        egress_check("metadata.google.internal", 80, resolver=resolver)
    # One forbidden address among several refuses the name: the connection could go to any.
    with pytest.raises(EgressRefused, match="'split.partner.test' resolves to a private \\(RFC 1918\\) address"):
        egress_check("split.partner.test", 443, resolver=resolver)
    with pytest.raises(EgressRefused, match="resolves to a private \\(RFC 1918\\) address"):
        egress_check("mapped.partner.test", 443, resolver=resolver)
    with pytest.raises(socket.gaierror):
        egress_check("nowhere.partner.test", 443, resolver=resolver)
    assert resolver.calls == [
        ("api.partner.test", 443),
        ("metadata.google.internal", 80),
        ("split.partner.test", 443),
        ("mapped.partner.test", 443),
        ("nowhere.partner.test", 443),
    ]


def test_allowed_networks_open_exactly_their_ranges():
    allowed = parse_networks(["127.0.0.0/8", "10.1.0.0/16", "fd12::/16"])
    resolver = stub_resolver({"judge.internal": ["10.1.2.3"], "other.internal": ["10.2.0.1"]})

    assert egress_check("127.0.0.1", 80, allow_networks=allowed) == [ipaddress.ip_address("127.0.0.1")]
    assert egress_check("::ffff:127.0.0.1", 80, allow_networks=allowed) == [ipaddress.ip_address("::ffff:127.0.0.1")]
    assert egress_check("judge.internal", 443, allow_networks=allowed, resolver=resolver) == [ipaddress.ip_address("10.1.2.3")]
    assert egress_check("fd12::5", 443, allow_networks=allowed) == [ipaddress.ip_address("fd12::5")]
    with pytest.raises(EgressRefused, match="private"):
        egress_check("other.internal", 443, allow_networks=allowed, resolver=resolver)
    with pytest.raises(EgressRefused, match="loopback"):
        egress_check("::1", 80, allow_networks=allowed)


def test_metadata_stays_refused_inside_a_wider_allowed_network():
    wide = parse_networks(["169.254.0.0/16", "fd00::/8", "0.0.0.0/0"])
    exact = parse_networks(["169.254.169.254/32"])

    assert address_refusal(ipaddress.ip_address("169.254.10.10"), wide) is None
    assert address_refusal(ipaddress.ip_address("169.254.169.254"), wide) == "cloud metadata"
    assert address_refusal(ipaddress.ip_address("fd00:ec2::254"), wide) == "cloud metadata"
    assert address_refusal(ipaddress.ip_address("169.254.169.254"), exact) is None


def test_bad_network_settings_are_named():
    with pytest.raises(ValueError, match="LETHE_EGRESS_ALLOW_NETWORKS: 'localhost' is not a network such as 127.0.0.0/8"):
        parse_networks(["localhost"])


# ---------------------------------------------------------------- the session, on 127.0.0.1


class _Server:
    def __init__(self, code=200, location=""):
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(dict(self.headers))
                self.send_response(code)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = _Server()
    yield running
    running.close()


def test_the_session_refuses_loopback_when_it_is_not_allowed(server):
    with EgressSession(EgressPolicy()) as session, pytest.raises(EgressRefused, match="'127.0.0.1' is a loopback address"):
        session.get(server.url, timeout=5)
    assert server.requests == []


def test_the_session_connects_to_the_checked_address_and_keeps_the_host_name(server, dns_stub):
    dns_stub["judge.partner.test"] = ["127.0.0.1"]
    policy = EgressPolicy(parse_networks(["127.0.0.1/32"]))

    with EgressSession(policy) as session:
        reply = session.get(f"http://judge.partner.test:{server.port}/", timeout=5)

    assert reply.status_code == 200
    assert server.requests[0]["Host"] == f"judge.partner.test:{server.port}"


def test_a_rebound_name_is_refused_on_the_next_connection(server, dns_stub):
    dns_stub["judge.partner.test"] = ["127.0.0.2"]
    policy = EgressPolicy(parse_networks(["127.0.0.1/32"]))

    with EgressSession(policy) as session, pytest.raises(EgressRefused, match="'judge.partner.test' resolves to a loopback address"):
        session.get(f"http://judge.partner.test:{server.port}/", timeout=5)
    assert server.requests == []


def test_the_session_follows_no_redirect_whatever_its_target(server):
    # given a server that redirects to another allowed server, and one that redirects to 127.0.0.2
    # (outside the allowed network)
    allowed_target = _Server(location="")
    to_allowed = _Server(code=302, location=allowed_target.url)
    to_forbidden = _Server(code=307, location=f"http://127.0.0.2:{server.port}/")
    policy = EgressPolicy(parse_networks(["127.0.0.1/32"]))
    try:
        with EgressSession(policy) as session:
            first = session.get(to_allowed.url, timeout=5)
            second = session.get(to_forbidden.url, timeout=5, allow_redirects=True)

        # then both answers come back as they are, and neither target was asked
        assert (first.status_code, first.headers["Location"]) == (302, allowed_target.url)
        assert second.status_code == 307
        assert allowed_target.requests == [] and server.requests == []
    finally:
        for running in (allowed_target, to_allowed, to_forbidden):
            running.close()


def test_the_session_ignores_proxies_from_the_environment(server, monkeypatch):
    # a proxy variable would otherwise send the request (and its check) to the proxy's address
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    policy = EgressPolicy(parse_networks(["127.0.0.1/32"]))

    with EgressSession(policy) as session:
        assert session.get(server.url, timeout=5).status_code == 200
    with pytest.raises(requests.RequestException):
        requests.get(server.url, timeout=5)  # what a plain session does with that variable
