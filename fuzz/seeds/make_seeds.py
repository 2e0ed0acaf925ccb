#!/usr/bin/env python3
"""Writes the seeds of the `engine` and `frame` fuzz targets (fuzz/seeds/engine, fuzz/seeds/frame).

Run from anywhere: python3 fuzz/seeds/make_seeds.py. The step framing of `engine` seeds is
described in fuzz/fuzz_targets/engine.rs; the server DUID and the pools are those of its
configuration.
"""

import ipaddress
import os
import struct

SEEDS = os.path.dirname(os.path.abspath(__file__))
SERVER_DUID = bytes.fromhex("0001 0001 2e00 0009 0200 0000 000c".replace(" ", ""))

SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY, RELEASE, DECLINE = range(1, 10)
INFORMATION_REQUEST, RELAY_FORW, LEASEQUERY = 11, 12, 14


def ip(text):
    return ipaddress.IPv6Address(text).packed


def opt(code, body):
    return struct.pack("!HH", code, len(body)) + body


def duid(n):
    return bytes.fromhex("000100012e000000") + n.to_bytes(6, "big")


def ia_na(iaid, addr=None):
    body = struct.pack("!III", iaid, 0, 0)
    if addr:
        body += opt(5, ip(addr) + struct.pack("!II", 0, 0))
    return opt(3, body)


def ia_pd(iaid, prefix=None, length=56):
    body = struct.pack("!III", iaid, 0, 0)
    if prefix:
        body += opt(26, struct.pack("!IIB", 0, 0, length) + ip(prefix))
    return opt(25, body)


def message(msg_type, xid, client, *options, server=False, rapid=False):
    client_id = client if isinstance(client, bytes) else duid(client)
    body = bytes([msg_type]) + xid.to_bytes(3, "big") + opt(1, client_id)
    if server:
        body += opt(2, SERVER_DUID)
    body += opt(8, b"\0\0") + opt(6, struct.pack("!HH", 23, 24))
    if rapid:
        body += opt(14, b"")
    return body + b"".join(options)


def relay(inner, link="2001:db8:2::1", peer="fe80::1:2", interface_id=b"port-7", hops=0):
    return (
        bytes([RELAY_FORW, hops])
        + ip(link)
        + ip(peer)
        + opt(18, interface_id)
        + opt(9, inner)
    )


def lq_query(query_type, link, *options):
    return bytes([query_type]) + ip(link) + b"".join(options)


def leasequery(xid, requestor, query):
    return bytes([LEASEQUERY]) + xid.to_bytes(3, "big") + opt(1, duid(requestor)) + opt(44, query)


# Step ops: 1 direct multicast, 5 direct unicast, 2 relayed (no direct link); bits 3-4 pick
# the sender.
def msg(data, op=1):
    return bytes([op]) + struct.pack("!H", len(data)) + data


def tick(quarter_seconds):
    return bytes([0, quarter_seconds])


def write(folder, name, data):
    os.makedirs(os.path.join(SEEDS, folder), exist_ok=True)
    with open(os.path.join(SEEDS, folder, name + ".bin"), "wb") as f:
        f.write(data)


def engine_seeds():
    na, pd = "2001:db8:1::3", "2001:db8:100:100::"
    both = (ia_na(1, na), ia_pd(2, pd))
    write(
        "engine",
        "direct-solicit-request-renew-release",
        msg(message(SOLICIT, 1, 7, *both))
        + msg(message(REQUEST, 2, 7, *both, server=True))
        + tick(3)
        + msg(message(RENEW, 3, 7, *both, server=True))
        + msg(message(REBIND, 4, 7, *both))
        + msg(message(RELEASE, 5, 7, *both, server=True))
        + tick(10),
    )
    rna, rpd = "2001:db8:2::5", "2001:db8:200:200::"
    rboth = (ia_na(1, rna), ia_pd(2, rpd))
    write(
        "engine",
        "relayed-solicit-request-renew-release",
        msg(relay(message(SOLICIT, 1, 8, *rboth)), 2)
        + msg(relay(message(REQUEST, 2, 8, *rboth, server=True)), 2)
        + tick(3)
        + msg(relay(message(RENEW, 3, 8, *rboth, server=True)), 2)
        + msg(relay(relay(message(REBIND, 4, 8, *rboth), hops=0), link="::", hops=1), 2)
        + msg(relay(message(RELEASE, 5, 8, *rboth, server=True)), 2),
    )
    # Rapid-commit binds of ten clients from four MACs: pools, caps and rates run out; the
    # leases expire and the pools fill again.
    flood = b""
    for n in range(10):
        flood += msg(message(SOLICIT, n, 100 + n, ia_na(1), ia_pd(2), rapid=True), 1 | (n % 4) << 3)
    flood += tick(10) + tick(255)
    for n in range(10):
        flood += msg(message(SOLICIT, n, 200 + n, ia_na(1), ia_pd(2), rapid=True), 1 | (n % 4) << 3)
    write("engine", "rapid-commit-exhaustion-and-expiry", flood)
    write(
        "engine",
        "decline-confirm-information-request",
        msg(message(SOLICIT, 1, 9, ia_na(1, na), rapid=True))
        + msg(message(DECLINE, 2, 9, ia_na(1, na), ia_pd(2, pd), server=True))
        + msg(message(CONFIRM, 3, 9, ia_na(1, na)))
        + msg(message(INFORMATION_REQUEST, 4, 9))
        + tick(40)
        + msg(message(SOLICIT, 5, 9, ia_na(1), rapid=True)),
    )
    write(
        "engine",
        "reserved-client",
        msg(message(SOLICIT, 1, 1, ia_na(1), ia_pd(2), rapid=True))
        + msg(message(RENEW, 2, 1, ia_na(1, "2001:db8:1::100"), ia_pd(2, "2001:db8:100:ff00::"), server=True))
        + tick(20),
    )
    # Leasequery (RFC 5007) after a direct binding (the reserved client, whose address and
    # prefix are known) and a relayed one: by address, by an address inside the delegated
    # prefix, by client identifier, relayed on the relayed link, from a requestor that is not
    # allowed (link-local), a malformed query and an unknown query type; unicast from the
    # global sender 2001:db8:ffff::1 (op 7).
    requestor = 9000
    reserved = bytes.fromhex("00010001 2e000000 02000000 0001".replace(" ", ""))
    by_na = lq_query(1, "::", opt(5, ip("2001:db8:1::100") + struct.pack("!II", 0, 0)))
    by_pd = lq_query(1, "::", opt(5, ip("2001:db8:100:ff00::42") + struct.pack("!II", 0, 0)))
    by_client = lq_query(2, "::", opt(1, reserved))
    on_relayed_link = lq_query(2, "2001:db8:2::1", opt(1, duid(8)))
    write(
        "engine",
        "leasequery",
        msg(message(SOLICIT, 1, reserved, ia_na(1), ia_pd(2), rapid=True))
        + msg(relay(message(REQUEST, 2, 8, *rboth, server=True)), 2)
        + msg(leasequery(3, requestor, by_na), 7)
        + msg(leasequery(4, requestor, by_pd), 7)
        + msg(leasequery(5, requestor, by_client), 7)
        + msg(relay(leasequery(6, requestor, on_relayed_link), peer="2001:db8:ffff::9"), 2)
        + msg(leasequery(7, requestor, by_na), 5)
        + msg(leasequery(8, requestor, b"\x01\x00"), 7)
        + msg(leasequery(9, requestor, lq_query(3, "::", b"")), 7)
        + tick(10)
        + msg(leasequery(10, requestor, by_client), 7),
    )
    # A captured Relay-forward (dhcrelay, Interface-Id) and a captured direct Solicit.
    for folder, name, op in [
        ("relay", "dhcrelay-relay-forw-solicit-000", 2),
        ("relay", "dhcrelay-2hop-relay-forw-request-000", 2),
        ("message", "dhclient-napd-solicit-000", 1),
    ]:
        with open(os.path.join(SEEDS, folder, name + ".bin"), "rb") as f:
            write("engine", "captured-" + name, msg(f.read(), op) + tick(1))


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF or 0xFFFF


def frame(
    payload,
    tags=(),
    source="fe80::200:5eff:fe10:1",
    destination="ff02::1:2",
    dst_mac="333300010002",
    sport=546,
    dport=547,
    ext=None,
    bad_checksum=False,
):
    udp_len = 8 + len(payload)
    pseudo = ip(source) + ip(destination) + struct.pack("!IxxxB", udp_len, 17)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    csum = checksum(pseudo + udp) ^ (0x5555 if bad_checksum else 0)
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    next_header, l3_payload = 17, udp
    if ext is not None:
        # Hop-by-hop options header (8 bytes, PadN) in front of UDP.
        l3_payload = bytes([17, 0, 1, 4, 0, 0, 0, 0]) + udp
        next_header = ext
    ipv6 = (
        struct.pack("!IHBB", 6 << 28, len(l3_payload), next_header, 1 if dport == 547 and destination.startswith("ff") else 64)
        + ip(source)
        + ip(destination)
    )
    eth = bytes.fromhex(dst_mac) + bytes.fromhex("02005e100001")
    for tpid, vid in tags:
        eth += struct.pack("!HH", tpid, vid)
    return eth + struct.pack("!H", 0x86DD) + ipv6 + l3_payload


def frame_seeds():
    with open(os.path.join(SEEDS, "message", "dhclient-napd-solicit-000.bin"), "rb") as f:
        solicit = f.read()
    with open(os.path.join(SEEDS, "relay", "dhcrelay-relay-forw-request-000.bin"), "rb") as f:
        relay_forw = f.read()
    write("frame", "untagged-solicit", frame(solicit))
    write("frame", "vlan-solicit", frame(solicit, tags=[(0x8100, 100)]))
    write("frame", "qinq-solicit", frame(solicit, tags=[(0x88A8, 10), (0x8100, 100)]))
    write("frame", "double-8021q-solicit", frame(solicit, tags=[(0x8100, 10), (0x8100, 100)]))
    write("frame", "three-tags", frame(solicit, tags=[(0x88A8, 1), (0x8100, 2), (0x8100, 3)]))
    write("frame", "hop-by-hop-extension", frame(solicit, ext=0))
    write("frame", "bad-checksum", frame(solicit, bad_checksum=True))
    write(
        "frame",
        "relay-forward-unicast",
        frame(
            relay_forw,
            source="2001:db8:ffff::2",
            destination="2001:db8:ffff::1",
            dst_mac="020000000547",
            sport=547,
        ),
    )
    write(
        "frame",
        "relay-source-port",
        frame(relay_forw, source="2001:db8:ffff::2", destination="2001:db8:ffff::1", sport=40000),
    )
    write("frame", "reply-to-client-port", frame(solicit, sport=547, dport=546))
    write("frame", "short-frame", frame(solicit)[:40])
    ipv4 = bytes.fromhex("ffffffffffff02005e1000010800") + bytes(28)
    write("frame", "ipv4", ipv4)


engine_seeds()
frame_seeds()
