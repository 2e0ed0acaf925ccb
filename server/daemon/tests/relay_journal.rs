//! Relay data through the journal: a relayed lease's relay data (with the relay agent's
//! source address) survives a restart and a compaction, and version-2 (no relay data) and
//! version-3 (no flags) journals still replay and are rewritten as the current version.

mod common;

use common::Scratch;
use std::fs;
use std::net::Ipv6Addr;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::Config;
use xdhcp6_engine::table::{EventKind, EventSink, IaKind, LeaseRecord, LeaseTable};
use xdhcp6_engine::testing::{Client, Relay, Server, ip};
use xdhcp6d::journal::{
    Durability, Journal, JournalOptions, Link, LinkNames, Snapshot, format, read_journal,
};

const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:08"
salt = "relay-journal"
expected-leases = 1000
preferred-lifetime = 200
valid-lifetime = 300
t1 = 100
t2 = 160

[[link]]
name = "cable-1"
interfaces = ["eth1"]
relay-prefixes = ["2001:db8:ffff:1::/64"]

[[link.pool]]
prefix = "2001:db8:1::/64"
"#;

const CMTS_DUID: &[u8] = &[0, 3, 0, 1, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f];

fn scratch(name: &str) -> Scratch {
    common::scratch_dir("relay-journal", name)
}

fn config() -> Arc<Config> {
    Arc::new(Config::from_toml_str(CONFIG, "relay-journal.toml").unwrap())
}

fn new_table(config: &Config) -> Arc<LeaseTable> {
    Arc::new(LeaseTable::with_capacity(
        1000,
        SaltKey::from_salt(&config.server.salt),
    ))
}

/// Every lease of `table`, as the daemon's compaction snapshot takes them.
fn snapshot_of(table: &Arc<LeaseTable>) -> Snapshot {
    let table = Arc::clone(table);
    Arc::new(move || {
        let mut records = Vec::new();
        for shard in 0..table.shard_count() {
            table.iter_shard(shard, |record| records.push(record.clone()));
        }
        records
    })
}

/// Client `n` behind a CMTS, behind modem `n / 4`.
fn relayed(n: u16) -> Client {
    Client::new(u64::from(n)).via(
        Relay::new(ip("2001:db8:ffff:1::1"))
            .peer(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n))
            .interface_id(b"cable-1/0/0")
            .link_layer(1, &[2, 0, 0, 0, (n >> 8) as u8, n as u8])
            .option(53, CMTS_DUID)
            .option(
                37,
                &[0, 0, 0x11, 0x8b, 0, 0x11, 0x22, 0x33, 0x44, (n / 4) as u8],
            ),
    )
}

fn sorted(mut records: Vec<LeaseRecord>) -> Vec<LeaseRecord> {
    records.sort_by_key(|record| record.lease.addr);
    records
}

fn live(table: &LeaseTable) -> Vec<LeaseRecord> {
    let mut records = Vec::new();
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| records.push(record.clone()));
    }
    sorted(records)
}

#[test]
fn relay_data_survives_a_restart_and_a_compaction() {
    let dir = scratch("restart");
    let path = dir.0.join("leases.journal");
    let config = config();
    let table = new_table(&config);
    let options = JournalOptions {
        min_bytes: 4096,
        ratio: 2,
        ..JournalOptions::default()
    };
    let (journal, _) = Journal::open_with(
        &path,
        Durability::Always,
        LinkNames::of(&config),
        snapshot_of(&table),
        options,
    )
    .unwrap();
    let mut sink = journal.sink();
    let mut server = Server::with_table(Arc::clone(&config), Arc::clone(&table));
    server.peer.address = Some(ip("2001:db8:ffff:aa::1"));
    let mut addrs = Vec::new();
    for n in 0..16 {
        addrs.push(server.bind_address(&relayed(n), 1));
    }
    // A direct client too: it keeps no relay data.
    server.link = server.engine.link_for_interface("eth1", None);
    server.bind_address(&Client::new(999), 1);
    // Renewals until the journal compacts (the events are emitted under the table's locks,
    // as the daemon's sink takes them).
    let deadline = Instant::now() + Duration::from_secs(30);
    while journal.compactions() == 0 {
        assert!(Instant::now() < deadline, "no compaction happened");
        server.advance(1);
        for (n, addr) in addrs.iter().enumerate() {
            let client = relayed(n as u16);
            server.send(&client.renew(&server.duid()).ia_na(1, &[*addr]));
        }
        for event in server.take_events() {
            sink.emit(event);
        }
        journal.wait_durable(sink.last_seq()).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    let before = live(&table);
    assert_eq!(
        before
            .iter()
            .filter(|record| record.relay.is_some())
            .count(),
        16
    );
    journal.shutdown();

    let replay = read_journal(&path, &LinkNames::of(&config)).unwrap();
    assert!(!replay.corrupt);
    assert_eq!(sorted(replay.records.clone()), before);
    // A restart: a fresh table restored from the replay holds the same relay data, interned
    // again (one path, four modems).
    let restored = new_table(&config);
    let server = Server::with_table(Arc::clone(&config), Arc::clone(&restored));
    server.engine.restore(replay.records);
    assert_eq!(live(&restored), before);
    let stats = restored.relay_stats();
    assert_eq!((stats.paths, stats.subscribers), (1, 4));
    let record = restored.lease_at(u128::from(addrs[5]), IaKind::Na).unwrap();
    let relay = record.relay.unwrap();
    assert_eq!(relay.relay_id(), Some(CMTS_DUID));
    assert_eq!(
        relay.client_link_layer(),
        Some((1, &[2, 0, 0, 0, 0, 5][..]))
    );
    assert_eq!(relay.innermost().unwrap().peer_address(), ip("fe80::5"));
    assert_eq!(relay.source(), Some(ip("2001:db8:ffff:aa::1")));
}

/// Writes a version-2 journal of `records` (what the previous release wrote) at `path`.
fn write_version_2(path: &Path, records: &[LeaseRecord]) {
    let mut bytes = format::header(format::VERSION_2).to_vec();
    for (at, record) in records.iter().enumerate() {
        format::encode_v2(
            &mut bytes,
            EventKind::Bound,
            at as u32,
            &Link::Name("cable-1".into()),
            record,
        );
    }
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_version_3_journal_replays_with_its_relay_data_and_is_rewritten() {
    let dir = scratch("v3");
    let path = dir.0.join("leases.journal");
    let config = config();
    let table = new_table(&config);
    let mut server = Server::with_table(Arc::clone(&config), Arc::clone(&table));
    for n in 0..6 {
        server.bind_address(&relayed(n), 1);
    }
    let records = live(&table);
    assert!(records.iter().all(|record| record.relay.is_some()));
    let mut bytes = format::header(format::VERSION_3).to_vec();
    for (at, record) in records.iter().enumerate() {
        format::encode_v3(
            &mut bytes,
            EventKind::Bound,
            at as u32,
            &Link::Name("cable-1".into()),
            record,
        );
    }
    fs::write(&path, bytes).unwrap();

    let (journal, replay) = Journal::open(
        &path,
        Durability::Always,
        LinkNames::of(&config),
        Arc::new(Vec::new),
    )
    .unwrap();
    assert_eq!(replay.version, Some(format::VERSION_3));
    assert_eq!(sorted(replay.records), records);
    journal.shutdown();
    assert!(dir.0.join("leases.journal.v3").exists());
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes[..16], format::header(format::VERSION));
    let again = read_journal(&path, &LinkNames::of(&config)).unwrap();
    assert_eq!(again.version, Some(format::VERSION));
    assert_eq!(sorted(again.records), records);
}

#[test]
fn a_version_2_journal_replays_and_is_rewritten_as_the_current_version() {
    let dir = scratch("v2");
    let path = dir.0.join("leases.journal");
    let config = config();
    let table = new_table(&config);
    let mut server = Server::with_table(Arc::clone(&config), Arc::clone(&table));
    for n in 0..6 {
        server.bind_address(&relayed(n), 1);
    }
    let mut records = live(&table);
    write_version_2(&path, &records);
    // Version 2 has no relay data: the replayed leases have none.
    for record in &mut records {
        record.relay = None;
    }

    let (journal, replay) = Journal::open(
        &path,
        Durability::Always,
        LinkNames::of(&config),
        Arc::new(Vec::new),
    )
    .unwrap();
    assert_eq!(replay.version, Some(format::VERSION_2));
    assert_eq!(sorted(replay.records), records);
    journal.shutdown();
    // The old file is kept aside; the journal is of the current version and replays the
    // same leases.
    assert!(dir.0.join("leases.journal.v2").exists());
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes[..16], format::header(format::VERSION));
    let again = read_journal(&path, &LinkNames::of(&config)).unwrap();
    assert_eq!(again.version, Some(format::VERSION));
    assert_eq!(sorted(again.records), records);
}
