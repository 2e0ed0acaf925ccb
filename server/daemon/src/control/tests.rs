//! The control API end to end in process: a real engine with leases, the server on a unix
//! socket (and TCP), and `xdhcp6d ctl`'s client.

use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hyper::Method;
use serde_json::{Value, json};
use xdhcp6_engine::Engine;
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::table::{EventKind, EventSink, IaKind, LeaseEvent, LeaseTable};
use xdhcp6_engine::testing::{self, Client, Server, T0};

use super::model::{ErrorBody, Leases, Pools, Released, ServerView};
use super::*;
use crate::ctl::{self, Answer, Target};

const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:0b"
salt = "control"
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "access-1"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/120"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
range = "2001:db8:100::/52"
delegated-length = 56

[[link]]
name = "access-2"
interfaces = ["eth2"]

[[link.pool]]
prefix = "2001:db8:2::/64"
"#;

fn t0() -> u32 {
    T0
}

/// Lease events a release sends, kept for the test.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<LeaseEvent>>>);

impl EventSink for Recorded {
    fn emit(&mut self, event: LeaseEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Events for Recorded {
    fn settle(&mut self) -> bool {
        true
    }
}

/// Hooks that answer with what they were given.
struct Echo;

impl ControlHooks for Echo {
    fn reload(&self) -> Result<Value, ApiError> {
        Err(ApiError::about(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "link[0].pool[0].range",
            "test.toml: is not inside prefix 2001:db8::/64",
        ))
    }

    fn add_reservation(&self, reservation: Value) -> Result<Value, ApiError> {
        Ok(json!({ "added": reservation }))
    }
}

/// An engine holding `clients` addresses on access-1 (IAID 1) and one prefix (IAID 2) of the
/// first client.
struct Fixture {
    engine: Arc<Engine>,
    addresses: Vec<Ipv6Addr>,
    prefix: (Ipv6Addr, u8),
    clients: Vec<Client>,
}

fn fixture(clients: u64) -> Fixture {
    let config = testing::config(CONFIG);
    let table = Arc::new(LeaseTable::with_capacity(
        1024,
        SaltKey::from_salt(&config.server.salt),
    ));
    let mut server = Server::with_table(config, table);
    let clients: Vec<Client> = (1..=clients).map(Client::new).collect();
    let addresses = clients
        .iter()
        .map(|client| server.bind_address(client, 1))
        .collect();
    let prefix = server.bind_prefix(&clients[0], 2);
    let engine = server.engine;
    Fixture {
        engine,
        addresses,
        prefix,
        clients,
    }
}

fn scratch(name: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(format!("xdhcp6-control-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    folder
}

fn sources(fixture: &Fixture, events: &Recorded) -> Sources {
    let mut sources = Sources::for_engine(Arc::clone(&fixture.engine));
    let events = events.clone();
    sources.events = Arc::new(move || Box::new(events.clone()));
    sources.clock = t0;
    sources
}

fn get(target: &Target, path: &str) -> Answer {
    ctl::request(target, Method::GET, path, None).unwrap()
}

fn error_of(answer: &Answer) -> ErrorBody {
    serde_json::from_slice(&answer.body)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&answer.body)))
}

#[test]
fn lookups_listings_pools_and_a_release() {
    let fixture = fixture(5);
    let events = Recorded::default();
    let folder = scratch("lookups");
    let socket = folder.join("sub/control.sock");
    let options = ControlOptions {
        socket: Some(socket.clone()),
        ..ControlOptions::off()
    };
    let handle = spawn(&options, sources(&fixture, &events)).unwrap();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let target = Target::Unix(socket.clone());

    // By address.
    let address = fixture.addresses[2];
    let leases: Leases = get(&target, &format!("/v1/leases?address={address}"))
        .parse()
        .unwrap();
    assert_eq!(leases.leases.len(), 1);
    let lease = &leases.leases[0];
    assert_eq!(lease.lease, address.to_string());
    assert_eq!(lease.kind, "na");
    assert_eq!(lease.state, "bound");
    assert_eq!(lease.link, "access-1");
    assert_eq!(lease.valid, Some(300));
    assert_eq!(lease.expires, Some(T0 + 300));
    let duid = lease.duid.clone();
    assert_eq!(duid, model::hex(&fixture.clients[2].duid));

    // By prefix.
    let (prefix, len) = fixture.prefix;
    let leases: Leases = get(&target, &format!("/v1/leases?prefix={prefix}/{len}"))
        .parse()
        .unwrap();
    assert_eq!(leases.leases[0].lease, format!("{prefix}/{len}"));
    assert_eq!(leases.leases[0].iaid, 2);

    // By DUID, with and without IAID (colons optional).
    let first = model::hex(&fixture.clients[0].duid);
    let leases: Leases = get(&target, &format!("/v1/leases?duid={first}"))
        .parse()
        .unwrap();
    assert_eq!(leases.leases.len(), 2, "{leases:?}");
    assert_eq!(leases.leases[0].kind, "na");
    assert_eq!(leases.leases[1].kind, "pd");
    let plain = first.replace(':', "");
    let leases: Leases = get(&target, &format!("/v1/leases?duid={plain}&iaid=2"))
        .parse()
        .unwrap();
    assert_eq!(leases.leases.len(), 1);
    assert_eq!(leases.leases[0].kind, "pd");

    // By link-layer address: the DUID-LLT's.
    let mac = model::hex(duid_link_layer(&fixture.clients[3].duid).unwrap());
    let leases: Leases = get(&target, &format!("/v1/leases?hw-address={mac}"))
        .parse()
        .unwrap();
    assert_eq!(leases.leases.len(), 1);
    assert_eq!(leases.leases[0].lease, fixture.addresses[3].to_string());

    // A listing in pages of 2: every lease once, in order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/v1/leases?link=access-1&limit=2".to_owned();
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let page: Leases = get(&target, &path).parse().unwrap();
        pages += 1;
        assert!(page.leases.len() <= 2);
        seen.extend(page.leases.iter().map(|lease| lease.lease.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<String> = fixture.addresses.iter().map(ToString::to_string).collect();
    expected.sort_by_key(|text| text.parse::<Ipv6Addr>().map(u128::from).unwrap());
    expected.push(format!("{prefix}/{len}"));
    assert_eq!(seen, expected);
    // Pool 1 of access-1 is the PD slice.
    let page: Leases = get(&target, "/v1/leases?link=access-1&pool=1")
        .parse()
        .unwrap();
    assert_eq!(page.leases.len(), 1);
    assert_eq!(page.leases[0].kind, "pd");
    let page: Leases = get(&target, "/v1/leases?link=access-2").parse().unwrap();
    assert!(page.leases.is_empty());

    // Pools: the bound counts, sizes and free units of each slice.
    let pools: Pools = get(&target, "/v1/pools").parse().unwrap();
    assert_eq!(pools.pools.len(), 3);
    let na = &pools.pools[0];
    assert_eq!(
        (na.link.as_str(), na.pool, na.kind.as_str()),
        ("access-1", 0, "na")
    );
    assert_eq!(na.bound, 5);
    assert_eq!(na.size, Some(256));
    assert_eq!(na.offered, 0);
    let pd = &pools.pools[1];
    assert_eq!((pd.pool, pd.kind.as_str(), pd.unit_length), (1, "pd", 56));
    assert_eq!(pd.bound, 1);
    assert_eq!(pd.size, Some(16));
    assert_eq!(pd.free, Some(15));
    assert_eq!(pools.pools[2].bound, 0);
    assert_eq!(pools.pools[2].size, Some(1 << 64));

    // A forced release: the Released event reaches the sink and the counters follow.
    let released: Released = ctl::request(
        &target,
        Method::DELETE,
        &format!("/v1/leases?address={address}"),
        None,
    )
    .unwrap()
    .parse()
    .unwrap();
    assert_eq!(released.released.lease, address.to_string());
    let recorded = events.0.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].kind, EventKind::Released);
    assert_eq!(recorded[0].record.lease.ip(), address);
    let missing = get(&target, &format!("/v1/leases?address={address}"));
    assert_eq!(missing.status, 404);
    assert_eq!(error_of(&missing).field.as_deref(), Some("address"));
    let pools: Pools = get(&target, "/v1/pools").parse().unwrap();
    assert_eq!(pools.pools[0].bound, 4);
    assert!(
        fixture
            .engine
            .table()
            .lease_at(u128::from(address), IaKind::Na)
            .is_none()
    );
    let again = ctl::request(
        &target,
        Method::DELETE,
        &format!("/v1/leases?address={address}"),
        None,
    )
    .unwrap();
    assert_eq!(again.status, 404);

    // The server and its configuration.
    let server: ServerView = get(&target, "/v1/server").parse().unwrap();
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(server.pid, std::process::id());
    assert_eq!(server.links, 2);
    assert_eq!(server.leases, 5);
    assert!(server.journal.healthy);
    let config: model::ConfigView = get(&target, "/v1/config").parse().unwrap();
    let reread = xdhcp6_engine::config::Config::from_toml_str(&config.toml, "api").unwrap();
    assert_eq!(reread.links.len(), 2);
    assert_eq!(reread.links[0].name, "access-1");

    drop(handle);
    assert!(!socket.exists(), "the socket is removed on the way out");
    let _ = std::fs::remove_dir_all(&folder);
}

#[test]
fn errors_are_json_and_name_the_field() {
    let fixture = fixture(1);
    let folder = scratch("errors");
    let socket = folder.join("control.sock");
    let options = ControlOptions {
        socket: Some(socket.clone()),
        ..ControlOptions::off()
    };
    let _handle = spawn(&options, sources(&fixture, &Recorded::default())).unwrap();
    let target = Target::Unix(socket);

    let answer = get(&target, "/v1/leases?address=2001:db8::zz");
    assert_eq!(answer.status, 400);
    let error = error_of(&answer);
    assert_eq!(error.field.as_deref(), Some("address"));
    assert_eq!(
        error.error,
        "address: \"2001:db8::zz\" is not an IPv6 address"
    );
    let message = format!("{:#}", answer.check().unwrap_err());
    assert!(
        message.contains("is not an IPv6 address (HTTP 400)"),
        "{message}"
    );

    for (path, status, field) in [
        ("/v1/leases?limit=5000", 400, "limit"),
        ("/v1/leases?link=nowhere", 404, "link"),
        ("/v1/leases?link=access-1&pool=9", 404, "pool"),
        ("/v1/leases?duid=00:01:00:01&iaid=x", 400, "iaid"),
        ("/v1/leases?color=blue", 400, "color"),
        ("/v1/leases?duid=00:01:02", 404, "duid"),
        ("/v1/nothing", 404, "path"),
    ] {
        let answer = get(&target, path);
        assert_eq!(answer.status, status, "{path}");
        assert_eq!(error_of(&answer).field.as_deref(), Some(field), "{path}");
    }
    let answer = ctl::request(&target, Method::PUT, "/v1/pools", None).unwrap();
    assert_eq!(answer.status, 405);
    assert_eq!(error_of(&answer).field.as_deref(), Some("method"));
    let answer = ctl::request(&target, Method::DELETE, "/v1/leases?address=1::2::3", None).unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(error_of(&answer).field.as_deref(), Some("address"));

    // Reload and reservations answer 501 until they are wired.
    for (method, path) in [
        (Method::POST, "/v1/reload"),
        (Method::GET, "/v1/reservations"),
    ] {
        let answer = ctl::request(&target, method, path, None).unwrap();
        assert_eq!(answer.status, 501, "{path}");
        assert!(error_of(&answer).error.contains("not available"));
    }
    // A body that is not JSON, or too large.
    let answer = ctl::request(
        &target,
        Method::POST,
        "/v1/reservations",
        Some(json!(["not", "an", "object"])),
    )
    .unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(error_of(&answer).field.as_deref(), Some("body"));
    let huge = json!({ "duid": "00".repeat(MAX_BODY) });
    let answer = ctl::request(&target, Method::POST, "/v1/reservations", Some(huge)).unwrap();
    assert_eq!(answer.status, 413);
    assert!(error_of(&answer).error.contains("larger than"));
    let _ = std::fs::remove_dir_all(&folder);
}

#[test]
fn hooks_answer_through_the_api() {
    let fixture = fixture(1);
    let folder = scratch("hooks");
    let socket = folder.join("control.sock");
    let mut sources = sources(&fixture, &Recorded::default());
    sources.hooks = Arc::new(Echo);
    let options = ControlOptions {
        socket: Some(socket.clone()),
        ..ControlOptions::off()
    };
    let _handle = spawn(&options, sources).unwrap();
    let target = Target::Unix(socket);
    let reservation = ctl::ReservationArgs {
        duid: Some("00:03:00:01:02:00:00:00:00:09".to_owned()),
        address: Some("2001:db8:1::99".to_owned()),
        ..Default::default()
    };
    let answer: Value = ctl::request(
        &target,
        Method::POST,
        "/v1/reservations",
        Some(reservation.to_json()),
    )
    .unwrap()
    .parse()
    .unwrap();
    assert_eq!(
        answer,
        json!({ "added": { "duid": "00:03:00:01:02:00:00:00:00:09", "address": "2001:db8:1::99" } })
    );
    let answer = ctl::request(&target, Method::POST, "/v1/reload", None).unwrap();
    assert_eq!(answer.status, 422);
    assert_eq!(
        error_of(&answer).field.as_deref(),
        Some("link[0].pool[0].range")
    );
    // The hook that is not implemented still answers 501.
    let answer = ctl::request(
        &target,
        Method::DELETE,
        "/v1/reservations?duid=00:03:00:01:02:00:00:00:00:09",
        None,
    )
    .unwrap();
    assert_eq!(answer.status, 501);
    let _ = std::fs::remove_dir_all(&folder);
}

#[test]
fn tcp_needs_the_bearer_token() {
    let fixture = fixture(1);
    let folder = scratch("tcp");
    std::fs::create_dir_all(&folder).unwrap();
    let token_file = folder.join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let wrong_file = folder.join("wrong");
    std::fs::write(&wrong_file, "s3cret-tokem\n").unwrap();
    let without = ControlOptions {
        socket: None,
        tcp: Some("[::1]:0".parse().unwrap()),
        token_file: None,
    };
    let error = spawn(&without, sources(&fixture, &Recorded::default())).unwrap_err();
    assert!(
        format!("{error:#}").contains("needs --control-token-file"),
        "{error:#}"
    );

    let options = ControlOptions {
        token_file: Some(token_file.clone()),
        ..without
    };
    let handle = spawn(&options, sources(&fixture, &Recorded::default())).unwrap();
    let url = format!("http://{}", handle.tcp_addr().unwrap());
    let right = Target::tcp(&url, &token_file).unwrap();
    let server: ServerView = get(&right, "/v1/server").parse().unwrap();
    assert_eq!(server.pid, std::process::id());
    let wrong = Target::tcp(&url, &wrong_file).unwrap();
    let answer = get(&wrong, "/v1/server");
    assert_eq!(answer.status, 401);
    assert_eq!(error_of(&answer).field.as_deref(), Some("authorization"));
    let Target::Tcp { authority, .. } = right else {
        unreachable!()
    };
    let none = Target::Tcp {
        authority,
        token: String::new(),
    };
    assert_eq!(get(&none, "/v1/leases").status, 401);
    let _ = std::fs::remove_dir_all(&folder);
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let fixture = fixture(1);
    let folder = scratch("stale");
    std::fs::create_dir_all(&folder).unwrap();
    let socket = folder.join("control.sock");
    // A socket nobody accepts on: left by a server that died.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let options = ControlOptions {
        socket: Some(socket.clone()),
        ..ControlOptions::off()
    };
    let first = spawn(&options, sources(&fixture, &Recorded::default())).unwrap();
    assert_eq!(get(&Target::Unix(socket.clone()), "/v1/server").status, 200);
    let error = spawn(&options, sources(&fixture, &Recorded::default())).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains(&socket.display().to_string()), "{message}");
    assert!(
        message.contains("in use by another running server"),
        "{message}"
    );
    // The first server still answers.
    assert_eq!(get(&Target::Unix(socket.clone()), "/v1/server").status, 200);
    drop(first);

    let file = folder.join("plain");
    std::fs::write(&file, "keep me").unwrap();
    let options = ControlOptions {
        socket: Some(file.clone()),
        ..ControlOptions::off()
    };
    let error = spawn(&options, sources(&fixture, &Recorded::default())).unwrap_err();
    assert!(
        format!("{error:#}").contains("is not a socket"),
        "{error:#}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    let _ = std::fs::remove_dir_all(&folder);
}

#[test]
fn an_idle_connection_gives_its_slot_to_the_next() {
    use std::io::{Read, Write};
    let fixture = fixture(1);
    let folder = scratch("idle");
    let socket = folder.join("control.sock");
    let options = ControlOptions {
        socket: Some(socket.clone()),
        ..ControlOptions::off()
    };
    let limits = Limits {
        connections: 1,
        idle: std::time::Duration::from_millis(300),
    };
    let _handle =
        spawn_with_limits(&options, sources(&fixture, &Recorded::default()), limits).unwrap();
    // The one slot, held by a client that sends half a request and then nothing.
    let mut idle = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    idle.write_all(b"GET /v1/server HTTP/1.1\r\n").unwrap();
    // The next request is served once the idle connection is closed.
    let answer = get(&Target::Unix(socket.clone()), "/v1/server");
    assert_eq!(answer.status, 200);
    let mut rest = Vec::new();
    idle.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    // Closed by the server: end of file (or a reset), never a hang.
    let _ = idle.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    let _ = std::fs::remove_dir_all(&folder);
}

#[test]
fn a_relayed_lease_shows_its_relay_data_and_reconfigure_is_501_without_hooks() {
    let config = testing::config(CONFIG);
    let table = Arc::new(LeaseTable::with_capacity(
        1024,
        SaltKey::from_salt(&config.server.salt),
    ));
    let mut server = Server::with_table(config, table);
    let cmts = testing::Relay::new("2001:db8:1::1".parse().unwrap())
        .peer("fe80::2:7".parse().unwrap())
        .interface_id(b"cable-1/0/0")
        .link_layer(1, &[2, 0, 0, 0, 0x10, 7])
        .option(53, &[0, 3, 0, 1, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f])
        .option(37, &[0, 0, 0x11, 0x8b, 0, 0x11, 0x22, 0x33, 0x44, 0x55])
        .option(38, b"line-7");
    let client = Client::new(70).via(cmts);
    server.peer.address = Some("2001:db8:ffff::2".parse().unwrap());
    let address = server.bind_address(&client, 1);
    let direct = server.bind_address(&Client::new(71), 1);
    let fixture = Fixture {
        engine: server.engine,
        addresses: vec![address, direct],
        prefix: (Ipv6Addr::UNSPECIFIED, 0),
        clients: vec![client],
    };
    let events = Recorded::default();
    let folder = scratch("relay-data");
    let socket = folder.join("control.sock");
    let options = ControlOptions {
        socket: Some(socket.clone()),
        ..ControlOptions::off()
    };
    let handle = spawn(&options, sources(&fixture, &events)).unwrap();
    let target = Target::Unix(socket);
    let answer = get(&target, &format!("/v1/leases?address={address}"));
    let leases: Value = serde_json::from_slice(&answer.body).unwrap();
    let relay = &leases["leases"][0]["relay"];
    assert_eq!(relay["source"], "2001:db8:ffff::2");
    assert_eq!(relay["hops"][0]["hop_count"], 0);
    assert_eq!(relay["hops"][0]["link_address"], "2001:db8:1::1");
    assert_eq!(relay["hops"][0]["peer_address"], "fe80::2:7");
    assert_eq!(relay["relay_id"], "00:03:00:01:0a:0b:0c:0d:0e:0f");
    assert_eq!(relay["remote_id"]["enterprise"], 4491);
    assert_eq!(relay["remote_id"]["id"], "00:11:22:33:44:55");
    assert_eq!(relay["subscriber_id"], model::hex(b"line-7"));
    assert_eq!(relay["interface_id"], model::hex(b"cable-1/0/0"));
    assert_eq!(relay["client_link_layer"]["hw_type"], 1);
    assert_eq!(relay["client_link_layer"]["address"], "02:00:00:00:10:07");
    assert_eq!(leases["leases"][0]["reconfigure"], false);
    // The typed view ctl reads parses it too.
    let typed: Leases = answer.parse().unwrap();
    let view = typed.leases[0].relay.as_ref().unwrap();
    assert_eq!(view.hops[0].options.len(), 5);
    // A direct client has none.
    let answer = get(&target, &format!("/v1/leases?address={direct}"));
    let leases: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(leases["leases"][0]["relay"], Value::Null);
    // Without a server's hooks, Reconfigure is not available.
    let answer = ctl::request(
        &target,
        Method::POST,
        "/v1/reconfigure",
        Some(json!({"duid": "00:03:00:01:02:00:00:00:00:01"})),
    )
    .unwrap();
    assert_eq!(answer.status, 501);
    let error = error_of(&answer);
    assert!(error.error.contains("reconfigure"), "{}", error.error);
    drop(handle);
    let _ = std::fs::remove_dir_all(&folder);
}
