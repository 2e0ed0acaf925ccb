#!/usr/bin/env bash
# Capture real DHCPv6 traffic (ISC dhclient, ISC dhcrelay, Kea perfdhcp against
# Kea DHCPv6 2.2) inside private network namespaces and turn every DHCPv6 UDP
# payload into a seed file under fuzz/seeds/{message,relay}/.
#
# Usage (as root, Debian 12 packages: kea-dhcp6-server kea-admin isc-dhcp-client
#        isc-dhcp-relay tshark tcpdump iproute2 python3):
#   sudo fuzz/seeds/capture.sh            # regenerates message/, relay/, README.md
#   KEEP_PCAP=/some/dir fuzz/seeds/capture.sh   # additionally keep the raw pcaps
#   CAP=8 fuzz/seeds/capture.sh           # max seeds per (source, message type)
#   KEEP_WORK=1 fuzz/seeds/capture.sh     # keep the temp dir (logs, configs)
#
# All traffic stays inside the namespaces created here (xd6srv, xd6cli, xd6rel,
# xd6cli2, xd6rel2, xd6cli3); they and every daemon started are removed on exit.
set -euo pipefail

SEEDS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CAP="${CAP:-8}"
KEEP_PCAP="${KEEP_PCAP:-}"

NS_SRV=xd6srv
NS_CLI=xd6cli
NS_REL=xd6rel
NS_CLI2=xd6cli2
NS_REL2=xd6rel2
NS_CLI3=xd6cli3
SRV_ADDR=2001:db8:1::1        # server address on the direct client link
SRV_UP_ADDR=2001:db8:ffff::1  # server address on the relay link
REL_UP_ADDR=2001:db8:ffff::2
REL_DOWN_ADDR=2001:db8:2::1

for tool in ip kea-dhcp6 perfdhcp dhclient dhcrelay tcpdump tshark python3; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "must run as root (network namespaces)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/xd6-capture.XXXXXX)"
PIDS=()
KEA_PID=""
TCPDUMP_PID=""

log() { printf '[capture %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
    set +e
    local p
    for p in "${PIDS[@]}" $TCPDUMP_PID $KEA_PID; do
        [ -n "$p" ] || continue
        kill -CONT "$p" 2>/dev/null
        kill "$p" 2>/dev/null
    done
    sleep 0.5
    for p in "${PIDS[@]}" $TCPDUMP_PID $KEA_PID; do
        [ -n "$p" ] || continue
        kill -9 "$p" 2>/dev/null
    done
    # anything still running inside our namespaces was started by this script
    for ns in $NS_SRV $NS_CLI $NS_REL $NS_CLI2 $NS_REL2 $NS_CLI3; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Foreground helper only: backgrounded jobs use "ip netns exec" directly so that
# $! is the daemon itself (ip execs the command).
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# --------------------------------------------------------------------------
# Topology
#
#   xd6cli [veth-c] ---- [veth-s  2001:db8:1::1/64]  xd6srv (kea-dhcp6)
#                        [veth-sr 2001:db8:ffff::1/64]
#                               |
#   xd6rel [veth-rs 2001:db8:ffff::2/64] (dhcrelay -6 -I)
#          [veth-rc 2001:db8:2::1/64] ---- [veth-c2] xd6cli2
#          [veth-r3 2001:db8:3::1/64] ---- [veth-r3u 2001:db8:3::2/64] xd6rel2
#                                              (dhcrelay -6 -I, 2nd hop)
#                                          [veth-r4 2001:db8:4::1/64] ---- [veth-c3] xd6cli3
# --------------------------------------------------------------------------
setup_topology() {
    log "creating namespaces"
    for ns in $NS_SRV $NS_CLI $NS_REL $NS_CLI2 $NS_REL2 $NS_CLI3; do
        ip netns del "$ns" 2>/dev/null || true
        ip netns add "$ns"
        in_ns "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0
        in_ns "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0
        in_ns "$ns" ip link set lo up
    done
    ip link add name veth-s netns $NS_SRV type veth peer name veth-c netns $NS_CLI
    ip link add name veth-sr netns $NS_SRV type veth peer name veth-rs netns $NS_REL
    ip link add name veth-rc netns $NS_REL type veth peer name veth-c2 netns $NS_CLI2
    ip link add name veth-r3 netns $NS_REL type veth peer name veth-r3u netns $NS_REL2
    ip link add name veth-r4 netns $NS_REL2 type veth peer name veth-c3 netns $NS_CLI3
    local ns ifc
    for pair in $NS_SRV:veth-s $NS_SRV:veth-sr $NS_CLI:veth-c $NS_REL:veth-rs \
                $NS_REL:veth-rc $NS_CLI2:veth-c2 $NS_REL:veth-r3 $NS_REL2:veth-r3u \
                $NS_REL2:veth-r4 $NS_CLI3:veth-c3; do
        ns=${pair%%:*}; ifc=${pair#*:}
        in_ns "$ns" sysctl -qw "net.ipv6.conf.$ifc.accept_dad=0"
        in_ns "$ns" sysctl -qw "net.ipv6.conf.$ifc.accept_ra=0"
    done
    in_ns $NS_SRV ip addr add $SRV_ADDR/64 dev veth-s nodad
    in_ns $NS_SRV ip addr add $SRV_UP_ADDR/64 dev veth-sr nodad
    in_ns $NS_REL ip addr add $REL_UP_ADDR/64 dev veth-rs nodad
    in_ns $NS_REL ip addr add $REL_DOWN_ADDR/64 dev veth-rc nodad
    in_ns $NS_REL ip addr add 2001:db8:3::1/64 dev veth-r3 nodad
    in_ns $NS_REL2 ip addr add 2001:db8:3::2/64 dev veth-r3u nodad
    in_ns $NS_REL2 ip addr add 2001:db8:4::1/64 dev veth-r4 nodad
    for pair in $NS_SRV:veth-s $NS_SRV:veth-sr $NS_CLI:veth-c $NS_REL:veth-rs \
                $NS_REL:veth-rc $NS_CLI2:veth-c2 $NS_REL:veth-r3 $NS_REL2:veth-r3u \
                $NS_REL2:veth-r4 $NS_CLI3:veth-c3; do
        ns=${pair%%:*}; ifc=${pair#*:}
        in_ns "$ns" ip link set "$ifc" up
    done
    in_ns $NS_SRV ip route add 2001:db8:2::/64 via $REL_UP_ADDR dev veth-sr
    sleep 1
}

# --------------------------------------------------------------------------
# Kea DHCPv6 (memfile, short T1/T2 so that dhclient renews and rebinds)
# --------------------------------------------------------------------------
start_kea() {
    mkdir -p "$WORK/kea"
    cat >"$WORK/kea/kea-dhcp6.conf" <<EOF
{
  "Dhcp6": {
    "interfaces-config": {
      "interfaces": [ "veth-s/$SRV_ADDR", "veth-sr/$SRV_UP_ADDR" ]
    },
    "server-id": { "type": "LLT", "persist": false },
    "lease-database": {
      "type": "memfile", "persist": true, "lfc-interval": 0,
      "name": "$WORK/kea/leases6.csv"
    },
    "renew-timer": 5,
    "rebind-timer": 8,
    "preferred-lifetime": 60,
    "valid-lifetime": 120,
    "option-data": [
      { "name": "dns-servers", "data": "2001:db8:1::53, 2001:db8:1::54" },
      { "name": "domain-search", "data": "example.com, lab.example.net" },
      { "name": "sntp-servers", "data": "2001:db8:1::123" },
      { "name": "information-refresh-time", "data": "600" },
      { "name": "preference", "data": "255", "always-send": true }
    ],
    "subnet6": [
      {
        "id": 1,
        "subnet": "2001:db8:1::/64",
        "interface": "veth-s",
        "rapid-commit": true,
        "pools": [ { "pool": "2001:db8:1::1000 - 2001:db8:1::ffff" } ],
        "pd-pools": [
          { "prefix": "2001:db8:100::", "prefix-len": 40, "delegated-len": 56 }
        ]
      },
      {
        "id": 2,
        "subnet": "2001:db8:2::/64",
        "pools": [ { "pool": "2001:db8:2::1000 - 2001:db8:2::ffff" } ],
        "pd-pools": [
          { "prefix": "2001:db8:200::", "prefix-len": 40, "delegated-len": 56 }
        ],
        "relay": { "ip-addresses": [ "$REL_DOWN_ADDR" ] }
      },
      {
        "id": 3,
        "subnet": "2001:db8:4::/64",
        "pools": [ { "pool": "2001:db8:4::1000 - 2001:db8:4::ffff" } ],
        "pd-pools": [
          { "prefix": "2001:db8:400::", "prefix-len": 40, "delegated-len": 56 }
        ]
      }
    ],
    "loggers": [
      { "name": "kea-dhcp6", "severity": "INFO",
        "output_options": [ { "output": "$WORK/kea/kea.log" } ] }
    ]
  }
}
EOF
    log "starting kea-dhcp6"
    KEA_PIDFILE_DIR="$WORK/kea" KEA_LOCKFILE_DIR="$WORK/kea" \
        ip netns exec $NS_SRV kea-dhcp6 -c "$WORK/kea/kea-dhcp6.conf" \
        >"$WORK/kea/stdout.log" 2>&1 &
    KEA_PID=$!
    sleep 2
    kill -0 "$KEA_PID" || { cat "$WORK/kea/stdout.log" "$WORK/kea/kea.log" >&2; exit 1; }
}

# --------------------------------------------------------------------------
# Capture helpers (tcpdump on all interfaces of the server namespace)
# --------------------------------------------------------------------------
PCAPS=()   # "source:file"
cap_start() {
    local src=$1
    CUR_PCAP="$WORK/pcap/$src.pcap"
    mkdir -p "$WORK/pcap"
    ip netns exec $NS_SRV tcpdump -i any -U -s 0 -w "$CUR_PCAP" 'udp port 546 or udp port 547' \
        >"$WORK/pcap/$src.tcpdump.log" 2>&1 &
    TCPDUMP_PID=$!
    local i
    for i in $(seq 50); do
        grep -q listening "$WORK/pcap/$src.tcpdump.log" 2>/dev/null && break
        sleep 0.1
    done
    PCAPS+=("$src:$CUR_PCAP")
    log "capture '$src' started"
}
cap_stop() {
    sleep 1
    kill -TERM "$TCPDUMP_PID"   # SIGINT is ignored by background jobs of a script
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=""
}

# --------------------------------------------------------------------------
# ISC dhclient helpers
# --------------------------------------------------------------------------
mkdir -p "$WORK/dhc"
cat >"$WORK/dhc/noop-script" <<'EOF'
#!/bin/sh
# Do not touch addresses/resolv.conf; the capture only needs the packets.
exit 0
EOF
chmod +x "$WORK/dhc/noop-script"
cat >"$WORK/dhc/dhclient.conf" <<'EOF'
send fqdn.fqdn "seed-client.example.com.";
send fqdn.server-update on;
request dhcp6.name-servers, dhcp6.domain-search, dhcp6.sntp-servers,
        dhcp6.info-refresh-time;
EOF

# dhc_start NAME NS IFACE ARGS...  -> runs dhclient -6 in the foreground (-d) in background
dhc_start() {
    local name=$1 ns=$2 ifc=$3; shift 3
    [ -n "${DHC_KEEP_LEASE:-}" ] || rm -f "$WORK/dhc/$name.leases"
    rm -f "$WORK/dhc/$name.pid"
    ip netns exec "$ns" dhclient -6 -d -v "$@" -cf "$WORK/dhc/dhclient.conf" \
        -lf "$WORK/dhc/$name.leases" -pf "$WORK/dhc/$name.pid" \
        -sf "$WORK/dhc/noop-script" "$ifc" >"$WORK/dhc/$name.log" 2>&1 &
    DHC_PID=$!
    PIDS+=("$DHC_PID")
}
# wait until the lease file holds N leases (bound / renewed)
dhc_wait_bound() {
    local name=$1 i
    for i in $(seq 100); do
        grep -q 'lease6' "$WORK/dhc/$name.leases" 2>/dev/null && return 0
        sleep 0.1
    done
    log "warning: $name did not bind"; return 0
}
# dhc_release NAME NS IFACE ARGS...  (stops the running client and sends Release)
dhc_release() {
    local name=$1 ns=$2 ifc=$3; shift 3
    in_ns "$ns" timeout 10 dhclient -6 -r -v "$@" -cf "$WORK/dhc/dhclient.conf" \
        -lf "$WORK/dhc/$name.leases" -pf "$WORK/dhc/$name.pid" \
        -sf "$WORK/dhc/noop-script" "$ifc" >>"$WORK/dhc/$name.release.log" 2>&1 || true
    kill "$DHC_PID" 2>/dev/null || true
    wait "$DHC_PID" 2>/dev/null || true
}
dhc_kill() { kill "$DHC_PID" 2>/dev/null || true; wait "$DHC_PID" 2>/dev/null || true; }

# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------
scenario_dhclient_na() {
    # Solicit/Advertise/Request/Reply, a Renew, then Kea is frozen (SIGSTOP)
    # so that the next Renew goes unanswered until T2 -> Rebind, then Release.
    cap_start dhclient-na
    dhc_start na $NS_CLI veth-c -N
    dhc_wait_bound na
    sleep 6.5                       # first Renew at T1 = 5 s
    log "freezing kea to provoke Rebind"
    kill -STOP "$KEA_PID"
    # Next Renew at T1; dhclient retransmits it ~10 s later and, T2 being past
    # by then, switches to Rebind.  Resume Kea once a Rebind went out.
    local i
    for i in $(seq 300); do
        grep -q 'XMT: Rebind on' "$WORK/dhc/na.log" && break
        sleep 0.1
    done
    sleep 0.5
    kill -CONT "$KEA_PID"
    sleep 2
    dhc_release na $NS_CLI veth-c -N
    cap_stop
}
scenario_dhclient_pd() {
    cap_start dhclient-pd
    dhc_start pd $NS_CLI veth-c -P
    dhc_wait_bound pd
    sleep 6.5
    dhc_release pd $NS_CLI veth-c -P
    cap_stop
}
scenario_dhclient_napd() {
    cap_start dhclient-napd
    dhc_start napd $NS_CLI veth-c -N -P
    dhc_wait_bound napd
    sleep 6.5
    # stop without releasing and start again on the same lease file: with an
    # IA_PD in the lease dhclient re-validates with Rebind (RFC 8415 18.2.5)
    dhc_kill
    DHC_KEEP_LEASE=1 dhc_start napd $NS_CLI veth-c -N -P
    sleep 3
    dhc_release napd $NS_CLI veth-c -N -P
    cap_stop
}
scenario_dhclient_confirm() {
    # IA_NA only: restarting on the old lease file makes dhclient send Confirm
    cap_start dhclient-confirm
    dhc_start conf $NS_CLI veth-c -N
    dhc_wait_bound conf
    sleep 0.5
    dhc_kill
    DHC_KEEP_LEASE=1 dhc_start conf $NS_CLI veth-c -N
    sleep 3
    dhc_release conf $NS_CLI veth-c -N
    cap_stop
}
scenario_dhclient_ta() {
    # IA_TA (temporary address); Kea 2.2 does not hand out IA_TA, so only the
    # client side (Solicit with IA_TA) plus whatever Kea answers is expected.
    cap_start dhclient-ta
    dhc_start ta $NS_CLI veth-c -T
    sleep 4
    dhc_kill
    cap_stop
}
scenario_dhclient_info() {
    cap_start dhclient-info
    dhc_start info $NS_CLI veth-c -S
    sleep 3
    dhc_kill
    cap_stop
}
scenario_dhcrelay() {
    # xd6rel relays for xd6cli2 (veth-rc) and for the second relay xd6rel2
    # (veth-r3); xd6rel2 relays for xd6cli3, giving two-level relay chains.
    ip netns exec $NS_REL dhcrelay -6 -d -I --no-pid -l veth-rc -l veth-r3 \
        -u "$SRV_UP_ADDR%veth-rs" >"$WORK/dhcrelay.log" 2>&1 &
    local rel=$!
    PIDS+=("$rel")
    ip netns exec $NS_REL2 dhcrelay -6 -d -I --no-pid -l veth-r4 \
        -u "2001:db8:3::1%veth-r3u" >"$WORK/dhcrelay2.log" 2>&1 &
    local rel2=$!
    PIDS+=("$rel2")
    sleep 1

    cap_start dhcrelay
    dhc_start rnapd $NS_CLI2 veth-c2 -N -P
    dhc_wait_bound rnapd
    sleep 6.5
    dhc_release rnapd $NS_CLI2 veth-c2 -N -P
    dhc_start rinfo $NS_CLI2 veth-c2 -S
    sleep 3
    dhc_kill
    cap_stop

    cap_start dhcrelay-2hop
    dhc_start r2napd $NS_CLI3 veth-c3 -N -P
    dhc_wait_bound r2napd
    sleep 6.5
    dhc_release r2napd $NS_CLI3 veth-c3 -N -P
    dhc_start r2info $NS_CLI3 veth-c3 -S
    sleep 3
    dhc_kill
    cap_stop

    kill "$rel" "$rel2" 2>/dev/null || true
    wait "$rel" "$rel2" 2>/dev/null || true
}
# perfdhcp_run SOURCE ARGS...
perfdhcp_run() {
    local src=$1; shift
    cap_start "$src"
    in_ns $NS_CLI timeout 20 perfdhcp -6 -g single -l veth-c "$@" \
        >"$WORK/$src.perfdhcp.log" 2>&1 || log "perfdhcp $src exited $?"
    cap_stop
}
scenario_perfdhcp() {
    perfdhcp_run perfdhcp -r 20 -R 100 -p 3 -f 5 -F 5 -W 500000
    perfdhcp_run perfdhcp-pd -e prefix-only -r 20 -R 100 -p 2 -W 500000
    perfdhcp_run perfdhcp-napd -e address-and-prefix -r 20 -R 100 -p 3 -f 5 -F 5 -W 500000
    perfdhcp_run perfdhcp-relay -A1 -r 20 -R 100 -p 3 -f 5 -F 5 -W 500000
    perfdhcp_run perfdhcp-relay-napd -A1 -e address-and-prefix -r 20 -R 100 -p 2 -W 500000
    # Rapid Commit (perfdhcp's own -c is broken in 2.2: send option 14 by hand)
    perfdhcp_run perfdhcp-rapid -o 14, -r 10 -R 50 -p 2 -W 500000
}

# --------------------------------------------------------------------------
# Extraction: one .bin per distinct DHCPv6 UDP payload
# --------------------------------------------------------------------------
extract() {
    log "extracting payloads"
    local out="$WORK/payloads.tsv" pair src file
    : >"$out"
    for pair in "${PCAPS[@]}"; do
        src=${pair%%:*}; file=${pair#*:}
        [ -s "$file" ] || continue
        tshark -r "$file" -n -Y '!icmpv6 && (udp.port == 546 || udp.port == 547)' \
            -T fields -e udp.payload 2>/dev/null | sed "s/^/$src\t/" >>"$out"
        if [ -n "$KEEP_PCAP" ]; then mkdir -p "$KEEP_PCAP"; cp "$file" "$KEEP_PCAP/"; fi
    done
    rm -rf "$SEEDS_DIR/message" "$SEEDS_DIR/relay"
    python3 - "$out" "$SEEDS_DIR" "$CAP" >"$WORK/counts.md" <<'PY'
import collections, os, sys
tsv, seeds, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
NAMES = {1: "solicit", 2: "advertise", 3: "request", 4: "confirm", 5: "renew",
         6: "rebind", 7: "reply", 8: "release", 9: "decline", 10: "reconfigure",
         11: "information-request", 12: "relay-forw", 13: "relay-reply",
         14: "leasequery", 15: "leasequery-reply"}
def name(t): return NAMES.get(t, "type%d" % t)
def inner_type(b):
    """Follow the Relay Message option (9) down to the innermost message."""
    while b and b[0] in (12, 13):
        i, inner = 34, None
        while i + 4 <= len(b):
            code = int.from_bytes(b[i:i+2], "big"); ln = int.from_bytes(b[i+2:i+4], "big")
            if code == 9:
                inner = b[i+4:i+4+ln]; break
            i += 4 + ln
        if inner is None:
            return None
        b = inner
    return b[0] if b else None
seen, count, total = set(), collections.Counter(), collections.Counter()
for line in open(tsv):
    src, _, hexs = line.rstrip("\n").partition("\t")
    if not hexs:
        continue
    data = bytes.fromhex(hexs.replace(":", ""))
    if not data or data in seen:
        continue
    seen.add(data)
    t = data[0]
    if t in (12, 13):
        group = "relay"
        it = inner_type(data)
        mt = name(t) + "-" + (name(it) if it is not None else "none")
    else:
        group, mt = "message", name(t)
    key = (group, src, mt)
    total[key] += 1
    if count[key] >= cap:
        continue
    d = os.path.join(seeds, group)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "%s-%s-%03d.bin" % (src, mt, count[key])), "wb") as f:
        f.write(data)
    count[key] += 1
print("| group | source | message type | seeds kept | distinct payloads captured |")
print("|---|---|---|---:|---:|")
for key in sorted(count):
    print("| %s | %s | %s | %d | %d |" % (key + (count[key], total[key])))
bytype = collections.Counter()
for (g, s, m), n in count.items():
    bytype[(g, m)] += n
print()
print("Totals per group and message type:")
print()
print("| group | message type | seeds |")
print("|---|---|---:|")
for key in sorted(bytype):
    print("| %s | %s | %d |" % (key + (bytype[key],)))
print()
print("Total: %d seed files." % sum(count.values()))
PY
}

write_readme() {
    local ver
    ver=$(dpkg-query -W -f='| ${Package} | ${Version} |\n' kea-dhcp6-server kea-admin \
          kea-common isc-dhcp-client isc-dhcp-relay tshark tcpdump iproute2 2>/dev/null || true)
    cat >"$SEEDS_DIR/README.md" <<EOF
# DHCPv6 seed corpus (captured traffic)

Real DHCPv6 UDP payloads (the bytes after the UDP header, ports 546/547),
one message per file, captured from real implementations talking to each
other. Generated by \`capture.sh\` in this directory; do not edit the \`.bin\`
files by hand — rerun the script instead:

    sudo fuzz/seeds/capture.sh               # as root; about 2.5 minutes
    KEEP_PCAP=/tmp/pcaps sudo -E fuzz/seeds/capture.sh   # also keep the pcaps

Last generated: $(date -u +%Y-%m-%dT%H:%MZ) on $(. /etc/os-release; echo "$PRETTY_NAME").

## Layout

* \`message/<source>-<msgtype>-<nnn>.bin\` — client/server messages
  (Solicit, Advertise, Request, Reply, Renew, Rebind, Release,
  Information-request, ...).
* \`relay/<source>-relay-forw-<inner>-<nnn>.bin\`,
  \`relay/<source>-relay-reply-<inner>-<nnn>.bin\` — Relay-forward /
  Relay-reply chains as seen by the server; \`<inner>\` is the innermost
  message type inside the Relay Message option(s).

Payloads are deduplicated by content and capped at $CAP files per
(source, message type[, inner type]); \`nnn\` is the order of appearance in
the capture. Total size: $(find "$SEEDS_DIR" -name '*.bin' -printf '%s\n' | awk '{s+=$1} END {printf "%.1f KiB", s/1024}') of payload bytes.

Not captured: Decline (dhclient only declines after a failed DAD reported by
its script; perfdhcp does not send it), Reconfigure (Kea 2.2 does not send
it), Leasequery. IA_TA appears only in dhclient-ta's Solicits (Kea 2.2
ignores IA_TA: its Advertise carries no IA at all).

## Software

| package | version |
|---|---|
$ver

## Topology

All traffic ran inside private network namespaces created (and deleted) by
the script; tcpdump ran on all interfaces of the server namespace.

    xd6cli  [veth-c]  ---- [veth-s  2001:db8:1::1/64]    xd6srv: kea-dhcp6
                           [veth-sr 2001:db8:ffff::1/64]
                                    |
    xd6rel  [veth-rs 2001:db8:ffff::2/64]  dhcrelay -6 -I (adds Interface-Id)
            [veth-rc 2001:db8:2::1/64] ---- [veth-c2]    xd6cli2
            [veth-r3 2001:db8:3::1/64] ---- [veth-r3u 2001:db8:3::2/64] xd6rel2
                                            dhcrelay -6 -I (second hop)
                                            [veth-r4 2001:db8:4::1/64] ---- [veth-c3] xd6cli3

Kea DHCPv6 (memfile): subnet 2001:db8:1::/64 on veth-s (IA_NA pool
2001:db8:1::1000-ffff, PD pool 2001:db8:100::/40 delegating /56, rapid-commit
enabled) and subnet 2001:db8:2::/64 for relayed clients (PD pool
2001:db8:200::/40 → /56, selected by the relay's link-address) and subnet
2001:db8:4::/64 for the two-hop clients (PD 2001:db8:400::/40 → /56).
T1 = 5 s, T2 = 8 s, preferred/valid 60/120 s.
Options: dns-servers, domain-search, sntp-servers, information-refresh-time,
preference 255 (always-send). Interfaces are given with unicast addresses
(\`veth-s/2001:db8:1::1\`), which Kea 2.2 needs to answer relayed traffic.
The dhclient config sends a Client FQDN option and requests DNS, domain
search, SNTP and information-refresh-time.

## Sources

| source | what ran |
|---|---|
| dhclient-na | \`dhclient -6 -N\`: 4-message exchange, Renew at T1; Kea then frozen with SIGSTOP so the next Renew goes unanswered and the client Rebinds at T2 (Kea resumed afterwards); then \`dhclient -6 -r\` (Release) |
| dhclient-pd | \`dhclient -6 -P\` (IA_PD), a Renew, Release |
| dhclient-napd | \`dhclient -6 -N -P\` (IA_NA + IA_PD), a Renew; the client is then killed and restarted on its lease file, which makes it Rebind (a lease with IA_PD is re-validated with Rebind, not Confirm); Release |
| dhclient-confirm | \`dhclient -6 -N\` bound, killed, restarted on its lease file → Confirm / Reply; Release |
| dhclient-ta | \`dhclient -6 -T\` (IA_TA; Kea 2.2 ignores it, so the client keeps soliciting) |
| dhclient-info | \`dhclient -6 -S\` (Information-request) |
| dhcrelay | \`dhclient -6 -N -P\` (with Renew and Release) and \`dhclient -6 -S\` in xd6cli2, relayed by \`dhcrelay -6 -I\`; server side only sees Relay-forward/Relay-reply with Interface-Id |
| dhcrelay-2hop | the same from xd6cli3 through two dhcrelay instances: nested Relay-forward/Relay-reply (hop count 1 and 0), each level with Interface-Id |
| perfdhcp | \`perfdhcp -6 -g single -r 20 -R 100 -p 3 -f 5 -F 5\` (Solicit/Advertise/Request/Reply, Renew, Release) |
| perfdhcp-pd | same with \`-e prefix-only\` |
| perfdhcp-napd | same with \`-e address-and-prefix\` |
| perfdhcp-relay | \`-A1\` (perfdhcp's own relay encapsulation) |
| perfdhcp-relay-napd | \`-A1 -e address-and-prefix\` |
| perfdhcp-rapid | \`-o 14,\` (Rapid Commit option sent by hand; perfdhcp's \`-c\` is broken in 2.2) |

## Counts

$(cat "$WORK/counts.md")
EOF
}

setup_topology
start_kea
scenario_dhclient_na
scenario_dhclient_pd
scenario_dhclient_napd
scenario_dhclient_confirm
scenario_dhclient_ta
scenario_dhclient_info
scenario_dhcrelay
scenario_perfdhcp
extract
write_readme
log "done: $(find "$SEEDS_DIR" -name '*.bin' | wc -l) seed files, $(du -sh "$SEEDS_DIR" | cut -f1)"
