//! Relay data kept with each binding (RFC 5007 §4.1.2.4, RFC 5460): what a relayed Request,
//! Renew or Rebind stores, what a direct client stores (nothing), how the interned parts are
//! shared and freed, the size cap, the read API and the Bulk Leasequery selections.

use std::net::Ipv6Addr;

use xdhcp6_engine::table::{
    IaKind, LeaseRecord, MAX_RELAY_DATA_LEN, RelayData, RelayQuery, RelayStats,
};
use xdhcp6_engine::testing::{Client, Relay, Server, ip};

const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:07"
salt = "relay-data"
expected-leases = 1000
preferred-lifetime = 200
valid-lifetime = 300
t1 = 100
t2 = 160

[[link]]
name = "cable-1"
interfaces = ["eth1"]
relay-prefixes = ["2001:db8:ffff:1::/64", "2001:db8:ffff:2::/64"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56
"#;

const CMTS_DUID: &[u8] = &[0, 3, 0, 1, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f];
const OTHER_CMTS_DUID: &[u8] = &[0, 3, 0, 1, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x10];

fn remote_id(modem: u8) -> Vec<u8> {
    // CableLabs' enterprise number, then the cable modem's MAC.
    vec![0, 0, 0x11, 0x8b, 0x00, 0x11, 0x22, 0x33, 0x44, modem]
}

fn client_mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x10, n]
}

/// A CMTS relay: link-address on the cable interface, Interface-Id, Relay-ID, the modem's
/// Remote-ID and the client's link-layer address; the client's link-local address as peer.
fn cmts(link: &str, relay_id: &[u8], modem: u8, client: u8) -> Relay {
    Relay::new(ip(link))
        .peer(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(client)))
        .interface_id(b"cable-1/0/0")
        .link_layer(1, &client_mac(client))
        .option(53, relay_id)
        .option(37, &remote_id(modem))
}

fn bound_record(s: &Server, addr: Ipv6Addr) -> LeaseRecord {
    s.engine
        .table()
        .lease_at(u128::from(addr), IaKind::Na)
        .expect("a lease on the address")
}

fn stats(s: &Server) -> RelayStats {
    s.engine.table().relay_stats()
}

#[test]
fn a_relayed_request_stores_the_chain_and_the_event_carries_it() {
    let mut s = Server::new(CONFIG);
    let client = Client::new(1).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 7, 1));
    let addr = s.bind_address(&client, 1);
    let record = bound_record(&s, addr);
    let relay = record.relay.expect("relay data stored");
    assert_eq!(relay.hop_len(), 1);
    let hop = relay.innermost().unwrap();
    assert_eq!(hop.link_address(), ip("2001:db8:ffff:1::1"));
    assert_eq!(hop.peer_address(), ip("fe80::1"));
    assert_eq!(hop.hop_count(), 0);
    assert_eq!(relay.relay_id(), Some(CMTS_DUID));
    assert_eq!(relay.remote_id(), Some(&remote_id(7)[..]));
    assert_eq!(relay.interface_id(), Some(&b"cable-1/0/0"[..]));
    assert_eq!(relay.client_link_layer(), Some((1, &client_mac(1)[..])));
    assert_eq!(relay.subscriber_id(), None);
    assert_eq!(relay.peer_address(), Some(ip("fe80::1")));
    // The bound event (the journal's record) carries the same data.
    let events = s.take_events();
    let bound = events.last().expect("a bound event");
    assert_eq!(bound.record.relay.as_ref(), Some(&relay));
    // The Relay Message option is not kept: the relay options alone.
    let codes: Vec<u16> = hop.options().map(|(code, _)| code).collect();
    assert_eq!(codes, [18, 53, 37, 79]);
    assert_eq!(
        stats(&s),
        RelayStats {
            paths: 1,
            subscribers: 1,
            ..stats(&s)
        }
    );
}

#[test]
fn relay_message_is_the_relay_forward_without_the_clients_message() {
    let mut s = Server::new(CONFIG);
    let client = Client::new(2)
        .via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 7, 2))
        .via(
            Relay::new(ip("2001:db8:ffff:2::1"))
                .peer(ip("2001:db8:ffff:1::1"))
                .option(53, OTHER_CMTS_DUID),
        );
    let addr = s.bind_address(&client, 1);
    let relay = bound_record(&s, addr).relay.unwrap();
    assert_eq!(relay.hop_len(), 2);
    assert_eq!(relay.peer_address(), Some(ip("2001:db8:ffff:1::1")));
    // The closest relay's Relay-ID comes first.
    assert_eq!(relay.relay_id(), Some(CMTS_DUID));
    let mut message = Vec::new();
    relay.write_relay_message(&mut message);
    assert_eq!(message.len(), relay.relay_message_len());
    // Parse it back by hand: RELAY-FORW, hop-count 1, link, peer, Relay-ID, Relay Message.
    assert_eq!(message[0], 12);
    assert_eq!(message[1], 1);
    assert_eq!(message[2..18], ip("2001:db8:ffff:2::1").octets());
    let after_relay_id = 34 + 4 + OTHER_CMTS_DUID.len();
    assert_eq!(message[34..36], 53u16.to_be_bytes());
    assert_eq!(
        message[after_relay_id..after_relay_id + 2],
        9u16.to_be_bytes()
    );
    let inner_len =
        u16::from_be_bytes([message[after_relay_id + 2], message[after_relay_id + 3]]) as usize;
    let inner = &message[after_relay_id + 4..];
    assert_eq!(inner.len(), inner_len);
    assert_eq!(inner[0], 12);
    assert_eq!(inner[1], 0);
    assert_eq!(inner[18..34], ip("fe80::2").octets());
    // The innermost Relay-forward has no Relay Message option: its options are the kept ones.
    let innermost = relay.innermost().unwrap();
    assert_eq!(&inner[34..], innermost.options_bytes());
}

#[test]
fn a_renew_through_another_relay_replaces_the_relay_data() {
    let mut s = Server::new(CONFIG);
    let client = Client::new(3).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 7, 3));
    let addr = s.bind_address(&client, 1);
    assert_eq!(stats(&s).paths, 1);
    s.advance(100);
    let moved = Client::new(3).via(cmts("2001:db8:ffff:2::1", OTHER_CMTS_DUID, 8, 3));
    let reply = s.send(&moved.renew(&s.duid()).ia_na(1, &[addr]));
    assert_eq!(reply.ia_na(1).address(), addr);
    let relay = bound_record(&s, addr).relay.unwrap();
    assert_eq!(relay.relay_id(), Some(OTHER_CMTS_DUID));
    assert_eq!(relay.remote_id(), Some(&remote_id(8)[..]));
    assert_eq!(
        relay.innermost().unwrap().link_address(),
        ip("2001:db8:ffff:2::1")
    );
    // Looked up by the client's key, the lease carries the new relay data too.
    let table = s.engine.table();
    let key = table.ia_key(&moved.duid, 1, IaKind::Na, s.engine.config().links[0].id);
    let mut by_client = Vec::new();
    table.records_of(&key, |record| by_client.push(record));
    assert_eq!(by_client.len(), 1);
    assert_eq!(by_client[0].relay.as_ref(), Some(&relay));
    // The old relay's parts had no other lease: freed.
    let now = stats(&s);
    assert_eq!((now.paths, now.subscribers), (1, 1));
    // A Rebind through the first relay again.
    let reply = s.send(&client.rebind().ia_na(1, &[addr]));
    assert_eq!(reply.ia_na(1).address(), addr);
    let relay = bound_record(&s, addr).relay.unwrap();
    assert_eq!(relay.relay_id(), Some(CMTS_DUID));
}

/// A Renew through the same relays leaves the stored parts as they are; one that differs in
/// any one part (the path, the subscriber part, the inline peer or link-layer address) stores
/// the change, and the parts nothing holds any more are freed.
#[test]
fn a_renew_keeps_equal_relay_data_and_stores_a_change_in_any_one_part() {
    let mut s = Server::new(CONFIG);
    let first = cmts("2001:db8:ffff:1::1", CMTS_DUID, 7, 3);
    let addr = s.bind_address(&Client::new(3).via(first), 1);
    let bound = bound_record(&s, addr).relay.unwrap();
    let before = stats(&s);
    assert_eq!((before.paths, before.subscribers), (1, 1));
    // The same relays again: the same relay data, the same parts.
    s.advance(100);
    let same = Client::new(3).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 7, 3));
    s.send(&same.renew(&s.duid()).ia_na(1, &[addr]));
    assert_eq!(bound_record(&s, addr).relay.as_ref(), Some(&bound));
    assert_eq!(stats(&s), before);
    let changes: [(&str, Relay); 4] = [
        // Another Relay-ID: the path part.
        ("path", cmts("2001:db8:ffff:1::1", OTHER_CMTS_DUID, 7, 3)),
        // Another modem's Remote-ID: the subscriber part.
        (
            "subscriber",
            cmts("2001:db8:ffff:1::1", OTHER_CMTS_DUID, 8, 3),
        ),
        // Another link-local peer, same link-layer address: the inline interface identifier.
        (
            "peer",
            cmts("2001:db8:ffff:1::1", OTHER_CMTS_DUID, 8, 3)
                .peer(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99)),
        ),
        // Another client link-layer address: the inline one.
        (
            "link-layer",
            cmts("2001:db8:ffff:1::1", OTHER_CMTS_DUID, 8, 3)
                .peer(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99))
                .link_layer(1, &client_mac(9)),
        ),
    ];
    let mut previous = bound;
    for (part, relay) in changes {
        s.advance(100);
        let client = Client::new(3).via(relay);
        let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[addr]));
        assert_eq!(reply.ia_na(1).address(), addr, "{part}");
        let stored = bound_record(&s, addr).relay.unwrap();
        assert_ne!(stored, previous, "a change of the {part} is stored");
        // What the next Renew through the same relays sends is what was stored.
        let events = s.take_events();
        assert_eq!(
            events.last().and_then(|event| event.record.relay.as_ref()),
            Some(&stored),
            "{part}"
        );
        // One lease: one path and one subscriber part, the old ones freed.
        let now = stats(&s);
        assert_eq!((now.paths, now.subscribers), (1, 1), "{part}");
        previous = stored;
    }
    assert_eq!(previous.relay_id(), Some(OTHER_CMTS_DUID));
    assert_eq!(previous.remote_id(), Some(&remote_id(8)[..]));
    assert_eq!(previous.client_link_layer(), Some((1, &client_mac(9)[..])));
    assert_eq!(
        previous.innermost().unwrap().peer_address(),
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99)
    );
}

#[test]
fn a_direct_client_stores_nothing() {
    let mut s = Server::new(CONFIG);
    let addr = s.bind_address(&Client::new(4), 1);
    assert_eq!(bound_record(&s, addr).relay, None);
    assert!(
        s.take_events()
            .iter()
            .all(|event| event.record.relay.is_none())
    );
    assert_eq!(stats(&s), RelayStats::default());
}

#[test]
fn clients_of_one_relay_and_one_modem_share_interned_parts() {
    let mut s = Server::new(CONFIG);
    // Eight clients behind two modems of one CMTS port.
    let mut addrs = Vec::new();
    for n in 0..8u8 {
        let client =
            Client::new(100 + u64::from(n)).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, n / 4, n));
        addrs.push(s.bind_address(&client, 1));
    }
    let shared = stats(&s);
    assert_eq!((shared.paths, shared.subscribers), (1, 2));
    // Each still reads back its own peer-address and link-layer address.
    for (n, addr) in addrs.iter().enumerate() {
        let relay = bound_record(&s, *addr).relay.unwrap();
        assert_eq!(
            relay.client_link_layer(),
            Some((1, &client_mac(n as u8)[..]))
        );
        assert_eq!(
            relay.innermost().unwrap().peer_address(),
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n as u16)
        );
        assert_eq!(relay.remote_id(), Some(&remote_id(n as u8 / 4)[..]));
    }
}

#[test]
fn release_and_expiry_free_the_interned_parts() {
    let mut s = Server::new(CONFIG);
    let first = Client::new(5).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 1, 5));
    let second = Client::new(6).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 2, 6));
    let addr = s.bind_address(&first, 1);
    s.bind_address(&second, 1);
    let both = stats(&s);
    assert_eq!((both.paths, both.subscribers), (1, 2));
    // Release: the first modem's part goes, the shared path stays.
    s.send(&first.release(&s.duid()).ia_na(1, &[addr]));
    let one = stats(&s);
    assert_eq!((one.paths, one.subscribers), (1, 1));
    // Expiry: the rest goes.
    s.advance(301);
    s.handle_timeout();
    assert!(s.engine.table().is_empty());
    let none = stats(&s);
    assert_eq!((none.paths, none.subscribers), (0, 0));
    // A new client interns again from empty entries.
    let third = Client::new(7).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 2, 7));
    let addr = s.bind_address(&third, 1);
    assert_eq!(
        bound_record(&s, addr).relay.unwrap().remote_id(),
        Some(&remote_id(2)[..])
    );
    let again = stats(&s);
    assert_eq!((again.paths, again.subscribers), (1, 1));
}

#[test]
fn oversized_relay_options_are_capped_and_counted() {
    let mut s = Server::new(CONFIG);
    let big = vec![0x5a; 300];
    let relay = cmts("2001:db8:ffff:1::1", CMTS_DUID, 1, 9)
        .option(38, &big)
        .option(17, &big);
    let client = Client::new(9).via(relay);
    let addr = s.bind_address(&client, 1);
    let relay = bound_record(&s, addr).relay.unwrap();
    assert!(relay.as_bytes().len() <= MAX_RELAY_DATA_LEN);
    // The Subscriber-ID fits; the vendor option would not: left out and counted, once per
    // message that bound or extended the lease (the Request).
    assert_eq!(relay.subscriber_id(), Some(&big[..]));
    assert_eq!(relay.option(17), None);
    assert_eq!(relay.relay_id(), Some(CMTS_DUID));
    assert!(stats(&s).options_cut >= 1);
    let cut = stats(&s).options_cut;
    s.advance(10);
    s.send(&client.renew(&s.duid()).ia_na(1, &[addr]));
    assert_eq!(stats(&s).options_cut, cut + 1);
}

#[test]
fn relay_data_round_trips_its_canonical_bytes_and_rejects_others() {
    let mut s = Server::new(CONFIG);
    let client = Client::new(10).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 1, 10));
    let addr = s.bind_address(&client, 1);
    let relay = bound_record(&s, addr).relay.unwrap();
    assert_eq!(RelayData::from_bytes(relay.as_bytes()), Some(relay.clone()));
    let bytes = relay.as_bytes();
    assert_eq!(RelayData::from_bytes(&bytes[..bytes.len() - 1]), None);
    assert_eq!(RelayData::from_bytes(&[0]), None);
    assert_eq!(RelayData::from_bytes(&[]), None);
    let mut nine_hops = bytes.to_vec();
    nine_hops[0] = 9;
    assert_eq!(RelayData::from_bytes(&nine_hops), None);
}

#[test]
fn restore_interns_relay_data_and_keeps_it_readable() {
    let mut s = Server::new(CONFIG);
    let mut records = Vec::new();
    for n in 0..4u8 {
        let client =
            Client::new(200 + u64::from(n)).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 1, n));
        let addr = s.bind_address(&client, 1);
        records.push(bound_record(&s, addr));
    }
    // A global (not link-local) peer-address is kept whole.
    let global = Client::new(300).via(
        Relay::new(ip("2001:db8:ffff:2::1"))
            .peer(ip("2001:db8:1:2::3"))
            .link_layer(6, &[1, 2, 3, 4, 5, 6, 7, 8]),
    );
    let addr = s.bind_address(&global, 1);
    records.push(bound_record(&s, addr));
    let fresh = Server::new(CONFIG);
    let report = fresh.engine.restore(records.clone());
    assert_eq!(report.loaded, records.len());
    for record in &records {
        assert_eq!(&bound_record(&fresh, record.lease.ip()), record);
    }
    let restored = stats(&fresh);
    assert_eq!((restored.paths, restored.subscribers), (2, 2));
    let relay = records.last().unwrap().relay.clone().unwrap();
    assert_eq!(
        relay.innermost().unwrap().peer_address(),
        ip("2001:db8:1:2::3")
    );
    assert_eq!(
        relay.client_link_layer(),
        Some((6, &[1, 2, 3, 4, 5, 6, 7, 8][..]))
    );
}

#[test]
fn bulk_selections_by_relay_id_remote_id_and_link_address() {
    let mut s = Server::new(CONFIG);
    for n in 0..6u8 {
        let (link, relay_id) = if n < 4 {
            ("2001:db8:ffff:1::1", CMTS_DUID)
        } else {
            ("2001:db8:ffff:2::1", OTHER_CMTS_DUID)
        };
        let client = Client::new(400 + u64::from(n)).via(cmts(link, relay_id, n / 2, n));
        s.bind_address(&client, 1);
    }
    s.bind_address(&Client::new(499), 1);
    let table = s.engine.table();
    let select = |query: RelayQuery<'_>| {
        let selected = table.relay_match(&query);
        let mut found = Vec::new();
        for shard in 0..table.shard_count() {
            table.iter_shard_relayed(shard, &selected, |record| {
                found.push(record.clone());
            });
        }
        found
    };
    let by_relay = select(RelayQuery::RelayId(CMTS_DUID));
    assert_eq!(by_relay.len(), 4);
    assert!(
        by_relay
            .iter()
            .all(|record| record.relay.as_ref().unwrap().relay_id() == Some(CMTS_DUID))
    );
    assert_eq!(select(RelayQuery::RelayId(OTHER_CMTS_DUID)).len(), 2);
    let by_remote = select(RelayQuery::RemoteId(&remote_id(1)));
    assert_eq!(by_remote.len(), 2);
    assert_eq!(
        select(RelayQuery::LinkAddress(ip("2001:db8:ffff:2::1"))).len(),
        2
    );
    assert!(select(RelayQuery::RemoteId(&remote_id(9))).is_empty());
    assert!(by_remote.iter().all(|record| {
        RelayQuery::RemoteId(&remote_id(1)).matches(record.relay.as_ref().unwrap())
    }));
    assert!(
        table
            .relay_match(&RelayQuery::RelayId(b"nobody"))
            .is_empty()
    );
}

#[test]
fn a_solicit_keeps_relay_data_only_when_rapid_commit_binds() {
    let mut s = Server::new(CONFIG);
    let client = Client::new(500).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 1, 50));
    s.send(&client.solicit().ia_na(1, &[]));
    assert!(s.events.is_empty());
    assert_eq!(stats(&s), RelayStats::default());

    let rapid = CONFIG.replace(
        "name = \"cable-1\"",
        "name = \"cable-1\"\nrapid-commit = true",
    );
    let mut s = Server::new(&rapid);
    let reply = s.send(&client.solicit().ia_na(1, &[]).rapid_commit());
    let addr = reply.ia_na(1).address();
    let relay = bound_record(&s, addr)
        .relay
        .expect("relay data of a rapid commit");
    assert_eq!(relay.relay_id(), Some(CMTS_DUID));
}

#[test]
fn a_selection_computed_before_its_entries_were_reused_selects_only_matching_leases() {
    let mut s = Server::new(CONFIG);
    let mut gone = Vec::new();
    for n in 0..64u8 {
        let client =
            Client::new(600 + u64::from(n)).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, n, n));
        gone.push((client.clone(), s.bind_address(&client, 1)));
    }
    let stale = s
        .engine
        .table()
        .relay_match(&RelayQuery::RelayId(CMTS_DUID));
    // Every one of them leaves; other modems of another relay take the freed entries.
    for (client, addr) in &gone {
        s.send(&client.release(&s.duid()).ia_na(1, &[*addr]));
    }
    assert_eq!(stats(&s).subscribers, 0);
    for n in 0..64u8 {
        let client = Client::new(700 + u64::from(n)).via(cmts(
            "2001:db8:ffff:2::1",
            OTHER_CMTS_DUID,
            100 + n,
            n,
        ));
        s.bind_address(&client, 1);
    }
    let table = s.engine.table();
    let mut found = 0;
    for shard in 0..table.shard_count() {
        table.iter_shard_relayed(shard, &stale, |_| found += 1);
    }
    assert_eq!(
        found, 0,
        "no lease of the other relay is taken for the first one's"
    );
}

#[test]
fn the_datagrams_source_is_kept_with_the_path_and_older_bytes_still_read() {
    let mut s = Server::new(CONFIG);
    s.peer.address = Some(ip("2001:db8:ffff:99::1"));
    let first = s.bind_address(
        &Client::new(30).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 7, 30)),
        1,
    );
    let second = s.bind_address(
        &Client::new(31).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 7, 31)),
        1,
    );
    let relay = bound_record(&s, first).relay.unwrap();
    assert_eq!(relay.source(), Some(ip("2001:db8:ffff:99::1")));
    // The source is not a hop: the hops read as without it.
    assert_eq!(relay.hop_len(), 1);
    assert_eq!(relay.peer_address(), Some(ip("fe80::1e")));
    assert_eq!(relay.relay_id(), Some(CMTS_DUID));
    assert_eq!(RelayData::from_bytes(relay.as_bytes()), Some(relay.clone()));
    assert_eq!(
        bound_record(&s, second).relay.unwrap().source(),
        Some(ip("2001:db8:ffff:99::1"))
    );
    // One relay port, one modem: one path and one subscriber part for both clients.
    assert_eq!((stats(&s).paths, stats(&s).subscribers), (1, 1));
    // The encoding without a source (format version 3 journals) reads as before.
    let bytes = relay.as_bytes();
    let mut older = vec![bytes[0] & 0x7f];
    older.extend_from_slice(&bytes[17..]);
    let older = RelayData::from_bytes(&older).expect("relay data without a source");
    assert_eq!(older.source(), None);
    assert_eq!(
        older.hops().collect::<Vec<_>>(),
        relay.hops().collect::<Vec<_>>()
    );
    // A relay seen from another source address is another path.
    s.peer.address = Some(ip("2001:db8:ffff:99::2"));
    s.bind_address(
        &Client::new(32).via(cmts("2001:db8:ffff:1::1", CMTS_DUID, 7, 32)),
        1,
    );
    assert_eq!(stats(&s).paths, 2);
    // A source flag without its 16 bytes is no encoding.
    assert_eq!(RelayData::from_bytes(&bytes[..10]), None);
}

#[test]
fn two_ethernet_link_layer_addresses_are_kept_the_last_one_inline() {
    let mut s = Server::new(CONFIG);
    let first = [0, 1, 2, 0, 0, 0, 0, 1];
    let second = [0, 1, 2, 0, 0, 0, 0, 2];
    let line = remote_id(5);
    let relay = Relay::new(ip("2001:db8:ffff:1::1"))
        .option(79, &first)
        .option(79, &second)
        .option(37, &line);
    let client = Client::new(500).via(relay);
    let addr = s.bind_address(&client, 1);
    let stored = bound_record(&s, addr).relay.expect("relay data kept");
    let options: Vec<(u16, &[u8])> = stored.innermost().expect("a hop").options().collect();
    // The Remote-ID moves before the last Ethernet-sized address, which the record keeps
    // inline; putting them in that order again changes nothing.
    assert_eq!(
        options,
        [(79, &first[..]), (37, &line[..]), (79, &second[..])]
    );
    assert_eq!(
        RelayData::from_bytes(stored.as_bytes()),
        Some(stored.clone())
    );
    assert_eq!(stored.client_link_layer(), Some((1, &first[2..])));
}

/// One relay of a generated chain: link-address, peer-address and options (code, body).
#[derive(Clone, Debug)]
struct HopSpec {
    link: Ipv6Addr,
    peer: Ipv6Addr,
    options: Vec<(u16, Vec<u8>)>,
}

/// The canonical encoding of `hops` (outermost first) and the kept options cut, as the module
/// documentation of `table::relay` describes it, written the plain way: each hop's kept
/// options chosen in the order received against what is left of the size budget, the
/// innermost hop's then stably sorted path class first, subscriber class next, the last
/// Ethernet-sized Client Link-Layer Address last.
fn reference_encoding(hops: &[HopSpec]) -> Option<(Vec<u8>, u32)> {
    const KEPT: [u16; 6] = [18, 37, 38, 79, 53, 17];
    if hops.is_empty() || hops.len() > 8 {
        return None;
    }
    let mut out = vec![hops.len() as u8];
    let mut budget = MAX_RELAY_DATA_LEN - 1 - 16 - hops.len() * 35;
    let mut cut = 0;
    for (index, hop) in hops.iter().enumerate() {
        let mut kept: Vec<&(u16, Vec<u8>)> = Vec::new();
        for option in hop.options.iter().filter(|(code, _)| KEPT.contains(code)) {
            if 4 + option.1.len() > budget {
                cut += 1;
            } else {
                budget -= 4 + option.1.len();
                kept.push(option);
            }
        }
        if index + 1 == hops.len() {
            let inline = kept
                .iter()
                .rposition(|(code, body)| *code == 79 && body.len() == 8);
            let mut classed: Vec<(u8, &(u16, Vec<u8>))> = kept
                .into_iter()
                .enumerate()
                .map(|(position, option)| {
                    let class = match option.0 {
                        _ if inline == Some(position) => 2,
                        18 | 53 => 0,
                        _ => 1,
                    };
                    (class, option)
                })
                .collect();
            classed.sort_by_key(|(class, _)| *class);
            kept = classed.into_iter().map(|(_, option)| option).collect();
        }
        out.push((hops.len() - 1 - index) as u8);
        out.extend_from_slice(&hop.link.octets());
        out.extend_from_slice(&hop.peer.octets());
        let len: usize = kept.iter().map(|(_, body)| 4 + body.len()).sum();
        out.extend_from_slice(&(len as u16).to_be_bytes());
        for (code, body) in kept {
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(body);
        }
    }
    Some((out, cut))
}

fn hop_spec() -> impl proptest::strategy::Strategy<Value = HopSpec> {
    use proptest::prelude::*;
    // Kept options (Client Link-Layer Address often Ethernet-sized), and two that are not.
    let option = prop_oneof![
        (
            prop::sample::select(vec![18u16, 37, 38, 53, 17, 1000, 65000]),
            prop::collection::vec(any::<u8>(), 0..70)
        ),
        (Just(79u16), prop::collection::vec(any::<u8>(), 8..=8)),
        (Just(79u16), prop::collection::vec(any::<u8>(), 0..12)),
    ];
    let peer = prop_oneof![
        any::<u64>().prop_map(|iid| Ipv6Addr::from(0xfe80u128 << 112 | u128::from(iid))),
        any::<u128>().prop_map(Ipv6Addr::from),
    ];
    (any::<u128>(), peer, prop::collection::vec(option, 0..5)).prop_map(|(link, peer, options)| {
        HopSpec {
            link: Ipv6Addr::from(link),
            peer,
            options,
        }
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

    /// Any chain of one to nine relays: `from_chain` gives the reference encoding and cut
    /// (nothing past eight hops), `from_bytes` takes its bytes back, and a lease bound through
    /// the chain reads back the same relay data from the table's interned parts.
    #[test]
    fn relay_data_is_the_reference_encoding_and_survives_the_table(
        mut hops in proptest::collection::vec(hop_spec(), 1..=9),
        client in 0u64..1_000_000,
    ) {
        // The innermost relay's link-address selects the configured link.
        if let Some(innermost) = hops.last_mut() {
            innermost.link = ip("2001:db8:ffff:1::1");
        }
        let expected = reference_encoding(&hops);
        let mut c = Client::new(client);
        for hop in hops.iter().rev() {
            let mut relay = Relay::new(hop.link).peer(hop.peer);
            for (code, body) in &hop.options {
                relay = relay.option(*code, body);
            }
            c = c.via(relay);
        }
        let message = c.solicit().encode();
        let xdhcp6_engine::proto::Packet::Relay(outermost) =
            xdhcp6_engine::proto::Packet::parse(&message).expect("a relayed message")
        else {
            panic!("not a Relay-forward");
        };
        let chain = xdhcp6_engine::proto::RelayChain::new(outermost).expect("a relay chain");
        let captured = RelayData::from_chain(&chain, None);
        let got = captured.as_ref().map(|c| (c.data.as_bytes().to_vec(), c.cut));
        proptest::prop_assert_eq!(&got, &expected);
        let Some(captured) = captured else {
            return Ok(());
        };
        proptest::prop_assert_eq!(RelayData::from_bytes(captured.data.as_bytes()), Some(captured.data.clone()));
        let mut s = Server::new(CONFIG);
        let addr = s.bind_address(&c, 1);
        let stored = bound_record(&s, addr).relay;
        proptest::prop_assert_eq!(stored, Some(captured.data));
    }
}
