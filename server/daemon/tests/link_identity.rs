//! Stable link identity: the journal records a lease's link by its `[[link]]` name, so leases
//! stay on their links when the configuration's links are reordered, and a version-1 journal
//! (links by position) still replays onto the links it was written for.

mod common;

use common::Scratch;
use std::fs;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::Config;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::table::{EventKind, EventSink, IaKind, LeaseEvent, LeaseRecord, LeaseTable};
use xdhcp6_engine::testing::{Client, Server, ip};
use xdhcp6d::journal::{
    Durability, Journal, JournalOptions, JournalSink, Link, LinkNames, Replay, Snapshot, VERSION,
    format, read_journal,
};

const FIXTURE_CONFIG: &str = include_str!("fixtures/journal-v1.toml");
const FIXTURE_JOURNAL: &[u8] = include_bytes!("fixtures/journal-v1.bin");

/// Two links, each with an address pool and a prefix pool; `reordered` puts beta first.
fn two_links(reordered: bool) -> String {
    let head = r#"
[server]
duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:01"
salt = "link-identity"
expected-leases = 1000
"#;
    let alpha = r#"
[[link]]
name = "alpha"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56
"#;
    let beta = r#"
[[link]]
name = "beta"
interfaces = ["eth2"]

[[link.pool]]
prefix = "2001:db8:2::/64"

[[link.pd-pool]]
prefix = "2001:db8:200::/48"
delegated-length = 56
"#;
    if reordered {
        format!("{head}{beta}{alpha}")
    } else {
        format!("{head}{alpha}{beta}")
    }
}

fn scratch(name: &str) -> Scratch {
    common::scratch_dir("links", name)
}

fn no_snapshot() -> Snapshot {
    Arc::new(Vec::new)
}

/// The link name of every replayed lease, with its kind and address.
fn placed(config: &Config, records: &[LeaseRecord]) -> Vec<(String, &'static str, Ipv6Addr, u8)> {
    let mut placed: Vec<_> = records
        .iter()
        .map(|record| {
            let link = config.link(record.lease.link);
            (
                link.name.clone(),
                kind(record.lease.kind),
                Ipv6Addr::from(record.lease.addr),
                record.lease.prefix_len,
            )
        })
        .collect();
    placed.sort();
    placed
}

fn kind(kind: IaKind) -> &'static str {
    match kind {
        IaKind::Na => "na",
        IaKind::Pd => "pd",
    }
}

/// The leases of the fixture, as its configuration comment lists them.
fn fixture_leases() -> Vec<(String, &'static str, Ipv6Addr, u8)> {
    let mut leases = vec![
        ("alpha".to_owned(), "na", ip("2001:db8:1::100"), 128),
        ("alpha".to_owned(), "pd", ip("2001:db8:100:100::"), 56),
        ("beta".to_owned(), "na", ip("2001:db8:2::200"), 128),
        ("beta".to_owned(), "pd", ip("2001:db8:200:200::"), 56),
    ];
    leases.sort();
    leases
}

fn config(text: &str) -> Config {
    Config::from_toml_str(text, "test.toml").unwrap()
}

fn copy_fixture(dir: &Path) -> PathBuf {
    let path = dir.join("leases.journal");
    fs::write(&path, FIXTURE_JOURNAL).unwrap();
    path
}

#[test]
fn a_version_1_journal_replays_onto_the_links_it_was_written_for() {
    let dir = scratch("v1");
    let path = copy_fixture(&dir.0);
    let config = config(FIXTURE_CONFIG);

    // Reading changes nothing.
    let read = read_journal(&path, &LinkNames::of(&config)).unwrap();
    assert_eq!(read.version, Some(1));
    assert_eq!(read.events, 7);
    assert!(read.unplaced.is_empty());
    assert_eq!(placed(&config, &read.records), fixture_leases());
    assert_eq!(fs::read(&path).unwrap(), FIXTURE_JOURNAL);

    // Opening replays the same, keeps the old file and rewrites it as version 2, with names.
    let (journal, replay) = Journal::open(
        &path,
        Durability::Always,
        LinkNames::of(&config),
        no_snapshot(),
    )
    .unwrap();
    journal.shutdown();
    assert_eq!(replay.version, Some(1));
    assert!(!replay.corrupt);
    assert_eq!(placed(&config, &replay.records), fixture_leases());
    let renewed = replay
        .records
        .iter()
        .find(|record| record.duid.as_bytes() == b"client-beta-na")
        .unwrap();
    assert_eq!(renewed.lease.expires, 1_750_007_200);
    assert_eq!(
        fs::read(dir.0.join("leases.journal.v1")).unwrap(),
        FIXTURE_JOURNAL
    );
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes[..16], format::header(VERSION));
    assert!(bytes.windows(5).any(|window| window == b"alpha"));

    // Now the links may move: every lease stays on its link.
    let reordered = config_with_links_swapped();
    let again = read_journal(&path, &LinkNames::of(&reordered)).unwrap();
    assert_eq!(again.version, Some(VERSION));
    assert_eq!(placed(&reordered, &again.records), fixture_leases());
}

/// The fixture's configuration with its two `[[link]]` blocks swapped.
fn config_with_links_swapped() -> Config {
    let mut text = FIXTURE_CONFIG.to_owned();
    let beta = text.find("[[link]]\nname = \"beta\"").unwrap();
    let beta_block = text.split_off(beta);
    let alpha = text.find("[[link]]\nname = \"alpha\"").unwrap();
    let alpha_block = text.split_off(alpha);
    let config = config(&format!("{text}{beta_block}\n{alpha_block}"));
    assert_eq!(config.links[0].name, "beta");
    assert_eq!(config.links[1].name, "alpha");
    config
}

/// The fixture's configuration without its second link.
fn config_without_beta() -> Config {
    let mut text = FIXTURE_CONFIG.to_owned();
    let beta = text.find("[[link]]\nname = \"beta\"").unwrap();
    text.truncate(beta);
    let config = config(&text);
    assert_eq!(config.links.len(), 1);
    config
}

#[test]
fn leases_of_a_link_the_configuration_lacks_are_kept_until_it_is_back() {
    let dir = scratch("unplaced");
    let path = copy_fixture(&dir.0);
    let full = config(FIXTURE_CONFIG);
    let (journal, _) = Journal::open(
        &path,
        Durability::Always,
        LinkNames::of(&full),
        no_snapshot(),
    )
    .unwrap();
    journal.shutdown();

    // Without beta, its leases are reported and not served...
    let alpha_only = config_without_beta();
    let replay = read_journal(&path, &LinkNames::of(&alpha_only)).unwrap();
    let alpha: Vec<LeaseRecord> = replay.records.clone();
    let snapshot: Snapshot = Arc::new(move || alpha.clone());
    let options = JournalOptions {
        min_bytes: 1,
        ratio: 1,
        ..JournalOptions::default()
    };
    let (journal, replay) = Journal::open_with(
        &path,
        Durability::Always,
        LinkNames::of(&alpha_only),
        snapshot,
        options,
    )
    .unwrap();
    assert_eq!(replay.records.len(), 2);
    let mut unplaced: Vec<_> = replay
        .unplaced
        .iter()
        .map(|lease| (lease.link.clone(), Ipv6Addr::from(lease.record.lease.addr)))
        .collect();
    unplaced.sort_by_key(|(_, addr)| *addr);
    assert_eq!(
        unplaced,
        vec![
            (Link::Name("beta".into()), ip("2001:db8:2::200")),
            (Link::Name("beta".into()), ip("2001:db8:200:200::")),
        ]
    );
    // ... and survive a compaction, which writes them again beside the table's leases.
    let mut sink = journal.sink();
    let mut renewed = replay.records[0].clone();
    renewed.lease.expires += 60;
    sink.emit(LeaseEvent {
        kind: EventKind::Renewed,
        at: 1_750_000_100,
        record: renewed,
    });
    journal.wait_durable(sink.last_seq()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal.compactions() == 0 {
        assert!(Instant::now() < deadline, "the journal never compacted");
        std::thread::sleep(Duration::from_millis(5));
    }
    journal.shutdown();

    // With beta back, they are served again.
    let back = read_journal(&path, &LinkNames::of(&full)).unwrap();
    assert!(back.unplaced.is_empty());
    assert_eq!(placed(&full, &back.records), fixture_leases());
}

/// A client of the reorder test: where it is and what it holds.
struct Held {
    client: Client,
    interface: &'static str,
    address: Ipv6Addr,
    prefix: (Ipv6Addr, u8),
}

/// A server for `config_text` over a fresh table, its journal replayed into it.
fn restart(config_text: &str, path: &Path) -> (Server, Journal, Replay) {
    let config = Arc::new(config(config_text));
    let table = Arc::new(LeaseTable::with_capacity(
        1000,
        SaltKey::from_salt(&config.server.salt),
    ));
    let (journal, replay) = Journal::open(
        path,
        Durability::Always,
        LinkNames::of(&config),
        no_snapshot(),
    )
    .unwrap();
    let server = Server::with_table(config, table);
    (server, journal, replay)
}

/// Hands the server's collected events to the journal and waits until they are durable.
fn journal_events(server: &mut Server, journal: &Journal, sink: &mut JournalSink) {
    for event in server.take_events() {
        sink.emit(event);
    }
    journal.wait_durable(sink.last_seq()).unwrap();
}

#[test]
fn reordering_the_links_keeps_every_lease_on_its_link() {
    let dir = scratch("reorder");
    let path = dir.0.join("leases.journal");

    // Clients on both links bind an address and a prefix.
    let (mut server, journal, _) = restart(&two_links(false), &path);
    let mut sink = journal.sink();
    let mut held = Vec::new();
    for n in 1..=6u64 {
        let interface = if n % 2 == 0 { "eth2" } else { "eth1" };
        server.link = server.engine.link_for_interface(interface, None);
        let client = Client::new(n);
        let address = server.bind_address(&client, 1);
        let prefix = server.bind_prefix(&client, 2);
        journal_events(&mut server, &journal, &mut sink);
        held.push(Held {
            client,
            interface,
            address,
            prefix,
        });
    }
    journal.shutdown();

    // The links trade places in the file; the server restarts and replays.
    let (mut server, journal, replay) = restart(&two_links(true), &path);
    assert_eq!(server.engine.config().links[0].name, "beta");
    assert!(replay.unplaced.is_empty());
    let report = server.engine.restore(replay.records);
    assert_eq!((report.loaded, report.conflicts), (12, 0));
    let mut sink = journal.sink();
    let duid = server.duid();
    for held in &held {
        server.link = server.engine.link_for_interface(held.interface, None);
        // Renew keeps the address and the prefix, with lifetimes.
        let renew = held
            .client
            .renew(&duid)
            .ia_na(1, &[held.address])
            .ia_pd(2, &[held.prefix]);
        let reply = server.send(&renew);
        assert_eq!(reply.msg_type, MessageType::Reply);
        assert_eq!(reply.ia_na(1).address(), held.address, "{}", held.interface);
        assert_eq!(reply.ia_pd(2).prefix(), held.prefix, "{}", held.interface);
        // A Solicit from the same client is offered what it holds.
        let advertise = server.send(&held.client.solicit().ia_na(1, &[]).ia_pd(2, &[]));
        assert_eq!(advertise.msg_type, MessageType::Advertise);
        assert_eq!(advertise.ia_na(1).address(), held.address);
        assert_eq!(advertise.ia_pd(2).prefix(), held.prefix);
        journal_events(&mut server, &journal, &mut sink);
    }
    journal.shutdown();
}
