//! The metrics endpoint: what a scrape shows after real exchanges with an engine, and the HTTP
//! server's answers to good, wrong, oversized and slow requests.

use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::table::{LeaseEvent, LeaseTable};
use xdhcp6_engine::testing::{self, Client, Msg, REPLY_BUF, Relay, ReplyView, T0};
use xdhcp6_engine::{Arrival, Context, Destination, DropReason, Engine, Outcome};
use xdhcp6d::metrics::{self, Limits, Sources};
use xdhcp6d::stats::WorkerStats;

const SPLIT_A: &str = include_str!("../../../examples/split-a.toml");

/// An engine for split-a.toml with its own table, and one worker's counters.
struct Datapath {
    engine: Arc<Engine>,
    stats: Arc<WorkerStats>,
    events: Vec<LeaseEvent>,
}

impl Datapath {
    fn new(toml: &str) -> Self {
        let config = testing::config(toml);
        let table = Arc::new(LeaseTable::with_capacity(
            1024,
            SaltKey::from_salt(&config.server.salt),
        ));
        let engine = match Engine::new(config, table) {
            Ok(engine) => Arc::new(engine),
            Err(error) => panic!("engine does not start: {error}"),
        };
        Self {
            engine,
            stats: Arc::new(WorkerStats::default()),
            events: Vec::new(),
        }
    }

    /// Handles `msg` on the first link and counts it as a datapath worker does; returns the
    /// reply bytes.
    fn handle(&mut self, msg: &Msg) -> Option<Vec<u8>> {
        self.handle_at(msg, Arrival::Multicast)
    }

    /// Handles `msg` sent to a multicast group or to a unicast address of the server.
    fn handle_at(&mut self, msg: &Msg, arrival: Arrival) -> Option<Vec<u8>> {
        let request = msg.encode();
        let mut reply = vec![0; REPLY_BUF];
        let cx = Context {
            link: Some(xdhcp6_engine::config::LinkId(0)),
            arrival,
            now: T0,
        };
        let outcome = self
            .engine
            .handle(&request, &cx, &mut reply, &mut self.events);
        self.stats.count_received(outcome.received());
        match outcome {
            Outcome::Reply {
                len,
                sent,
                unknown_link,
                ..
            } => {
                reply.truncate(len);
                self.stats.count_sent(sent);
                if unknown_link {
                    self.stats.count_unknown_link_answered();
                }
                Some(reply)
            }
            Outcome::Drop { reason, .. } => {
                self.stats.count_drop(reason);
                None
            }
        }
    }

    fn sources(&self) -> Sources {
        Sources::new(vec![Arc::clone(&self.stats)]).with_engine(Arc::clone(&self.engine))
    }
}

/// The value of the sample `series` (name and labels, as rendered) in `text`.
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_owned)
    })
}

/// Binds one address and one prefix for client `n` (Solicit, then Request for what was offered).
fn bind(datapath: &mut Datapath, n: u64) {
    let client = Client::new(n);
    let server = datapath.engine.config().server.duid.clone();
    let advertise = datapath
        .handle(&client.solicit().ia_na(1, &[]).ia_pd(2, &[]))
        .expect("an Advertise");
    let advertise = ReplyView::parse(&advertise, Destination::Client);
    let addrs: Vec<Ipv6Addr> = advertise.ia_na(1).addrs.iter().map(|a| a.addr).collect();
    let prefixes: Vec<(Ipv6Addr, u8)> = advertise
        .ia_pd(2)
        .prefixes
        .iter()
        .map(|p| (p.prefix, p.len))
        .collect();
    let reply = datapath
        .handle(&client.request(&server).ia_na(1, &addrs).ia_pd(2, &prefixes))
        .expect("a Reply");
    let reply = ReplyView::parse(&reply, Destination::Client);
    assert_eq!(reply.msg_type, MessageType::Reply);
}

#[test]
fn render_after_a_few_exchanges() {
    let mut datapath = Datapath::new(SPLIT_A);
    let empty = metrics::render(&datapath.sources());
    assert_eq!(sample(&empty, "xdhcp6_leases").as_deref(), Some("0"));
    let pd_free = "xdhcp6_pool_free{link=\"access-1\",kind=\"pd\",prefix=\"2001:db8:100::/48\",\
                   range=\"2001:db8:100::/49\"}";
    let free_before: u64 = sample(&empty, pd_free)
        .expect("PD slice free count")
        .parse()
        .unwrap();

    bind(&mut datapath, 1);
    bind(&mut datapath, 2);
    // A Request naming another server is dropped (RFC 9915 §16).
    let stranger = datapath.handle(&Client::new(3).request(&[0, 3, 0, 1, 1, 2, 3, 4, 5, 6]));
    assert!(stranger.is_none());

    let text = metrics::render(&datapath.sources());
    assert!(text.contains("# TYPE xdhcp6_messages_received_total counter\n"));
    assert!(text.contains("# HELP xdhcp6_pool_free "));
    assert_eq!(
        sample(&text, "xdhcp6_messages_received_total{type=\"solicit\"}").as_deref(),
        Some("2")
    );
    assert_eq!(
        sample(&text, "xdhcp6_messages_received_total{type=\"request\"}").as_deref(),
        Some("3")
    );
    assert_eq!(
        sample(&text, "xdhcp6_messages_sent_total{type=\"advertise\"}").as_deref(),
        Some("2")
    );
    assert_eq!(
        sample(&text, "xdhcp6_messages_sent_total{type=\"reply\"}").as_deref(),
        Some("2")
    );
    assert_eq!(
        sample(&text, "xdhcp6_dropped_total{reason=\"wrong_server_id\"}").as_deref(),
        Some("1")
    );
    for reason in DropReason::ALL {
        let series = format!("xdhcp6_dropped_total{{reason=\"{}\"}}", reason.as_str());
        assert!(sample(&text, &series).is_some(), "{series} missing");
    }
    // Two clients, an address and a prefix each.
    assert_eq!(sample(&text, "xdhcp6_leases").as_deref(), Some("4"));

    // The NA slice is a /65: too large for a bitmap, so its size is shown and its free count
    // is not.
    let na = "{link=\"access-1\",kind=\"na\",prefix=\"2001:db8:1::/64\",range=\"2001:db8:1::/65\"}";
    assert_eq!(
        sample(&text, &format!("xdhcp6_pool_size{na}")).as_deref(),
        Some("9223372036854775808")
    );
    assert_eq!(sample(&text, &format!("xdhcp6_pool_free{na}")), None);
    // The PD slice: /56s in a /49, 128 of them, two now delegated.
    let pd = "{link=\"access-1\",kind=\"pd\",prefix=\"2001:db8:100::/48\",\
              range=\"2001:db8:100::/49\"}";
    assert_eq!(
        sample(&text, &format!("xdhcp6_pool_size{pd}")).as_deref(),
        Some("128")
    );
    let free_after: u64 = sample(&text, pd_free).unwrap().parse().unwrap();
    assert_eq!(free_before - free_after, 2);
    // Both clients are bound in each slice.
    assert_eq!(
        sample(&text, &format!("xdhcp6_pool_bound{na}")).as_deref(),
        Some("2")
    );
    assert_eq!(
        sample(&text, &format!("xdhcp6_pool_bound{pd}")).as_deref(),
        Some("2")
    );
}

#[test]
fn rebinds_of_a_peers_clients_are_counted() {
    let mut datapath = Datapath::new(SPLIT_A);
    let series =
        |kind: &str| format!("xdhcp6_rebind_foreign_total{{link=\"access-1\",kind=\"{kind}\"}}");
    let empty = metrics::render(&datapath.sources());
    assert_eq!(sample(&empty, &series("na")).as_deref(), Some("0"));
    assert_eq!(sample(&empty, &series("pd")).as_deref(), Some("0"));

    // A client of server B (the second halves) rebinds here: its address and prefix are
    // counted, and the address goes back with lifetimes 0 (rebind-foreign = "zero").
    let theirs: Ipv6Addr = "2001:db8:1:0:8000::5".parse().unwrap();
    let their_prefix: Ipv6Addr = "2001:db8:100:8000::".parse().unwrap();
    let reply = datapath
        .handle(
            &Client::new(7)
                .rebind()
                .ia_na(1, &[theirs])
                .ia_pd(2, &[(their_prefix, 56)]),
        )
        .expect("a Reply to the Rebind");
    let reply = ReplyView::parse(&reply, Destination::Client);
    assert_eq!(reply.ia_na(1).zeroed_addrs(), vec![theirs]);
    let text = metrics::render(&datapath.sources());
    assert_eq!(sample(&text, &series("na")).as_deref(), Some("1"));
    assert_eq!(sample(&text, &series("pd")).as_deref(), Some("1"));

    // Our own slice, an address outside every pool, and a Renew of B's address: not counted.
    let ours: Ipv6Addr = "2001:db8:1::5".parse().unwrap();
    let elsewhere: Ipv6Addr = "2001:db8:99::5".parse().unwrap();
    datapath.handle(&Client::new(8).rebind().ia_na(1, &[ours, elsewhere]));
    let server = datapath.engine.config().server.duid.clone();
    datapath.handle(&Client::new(9).renew(&server).ia_na(1, &[theirs]));
    let text = metrics::render(&datapath.sources());
    assert_eq!(sample(&text, &series("na")).as_deref(), Some("1"));
    assert_eq!(sample(&text, &series("pd")).as_deref(), Some("1"));
}

#[test]
fn rebinds_of_a_peers_clients_are_counted_when_extended_too() {
    let mut datapath =
        Datapath::new(&SPLIT_A.replace("rebind-foreign = \"zero\"", "rebind-foreign = \"extend\""));
    let theirs: Ipv6Addr = "2001:db8:1:0:8000::5".parse().unwrap();
    let reply = datapath
        .handle(&Client::new(7).rebind().ia_na(1, &[theirs]))
        .expect("a Reply to the Rebind");
    let reply = ReplyView::parse(&reply, Destination::Client);
    assert_eq!(reply.ia_na(1).live_addrs(), vec![theirs]);
    let text = metrics::render(&datapath.sources());
    assert_eq!(
        sample(
            &text,
            "xdhcp6_rebind_foreign_total{link=\"access-1\",kind=\"na\"}"
        )
        .as_deref(),
        Some("1")
    );
}

#[test]
fn optional_sources_show_when_wired() {
    let datapath = Datapath::new(SPLIT_A);
    let lag = Arc::new(AtomicU64::new(0));
    let sources = datapath.sources().with_journal_lag({
        let lag = Arc::clone(&lag);
        Arc::new(move || lag.load(Ordering::Relaxed))
    });
    lag.store(42, Ordering::Relaxed);
    let text = metrics::render(&sources);
    assert_eq!(
        sample(&text, "xdhcp6_journal_lag_events").as_deref(),
        Some("42")
    );
    assert!(!text.contains("xdhcp6_xdp"));
}

/// Sends `request` and reads until the server closes; the response as text.
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8(response).unwrap()
}

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[test]
fn serves_metrics_over_http() {
    let mut datapath = Datapath::new(SPLIT_A);
    bind(&mut datapath, 7);
    let handle = metrics::spawn(localhost(), datapath.sources()).unwrap();
    let addr = handle.local_addr();
    assert_ne!(addr.port(), 0);

    let response = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
    assert!(head.contains("Connection: close"));
    assert_eq!(
        sample(body, "xdhcp6_messages_received_total{type=\"solicit\"}").as_deref(),
        Some("1")
    );
    assert_eq!(sample(body, "xdhcp6_leases").as_deref(), Some("2"));

    let response = exchange(addr, b"GET /other HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
    let response = exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
    let response = exchange(addr, b"garbage\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");

    // Still serving after the bad requests.
    let response = exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
}

#[test]
fn rejects_an_oversized_request() {
    let handle = metrics::spawn(localhost(), Sources::default()).unwrap();
    let mut request = b"GET /metrics HTTP/1.1\r\n".to_vec();
    for n in 0..1000 {
        request.extend_from_slice(format!("X-Filler-{n}: {}\r\n", "a".repeat(40)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    assert!(request.len() > Limits::default().max_request_bytes);
    let response = exchange(handle.local_addr(), &request);
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
}

#[test]
fn closes_a_slow_client() {
    let limits = Limits {
        read_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let handle = metrics::spawn_with_limits(localhost(), Sources::default(), limits).unwrap();
    // Half a request line, then nothing.
    let response = exchange(handle.local_addr(), b"GET /metr");
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    // The endpoint still answers others.
    let response = exchange(handle.local_addr(), b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
}

#[test]
fn bind_errors_surface_and_drop_stops_the_server() {
    let handle = metrics::spawn(localhost(), Sources::default()).unwrap();
    let addr = handle.local_addr();
    assert!(metrics::spawn(addr, Sources::default()).is_err());
    handle.stop();
    // The port is free again once the handle is gone.
    let again = metrics::spawn(addr, Sources::default()).unwrap();
    assert_eq!(again.local_addr(), addr);
}

#[test]
fn connections_beyond_the_limit_wait() {
    let limits = Limits {
        read_timeout: Duration::from_millis(500),
        max_connections: 1,
        ..Limits::default()
    };
    let handle = metrics::spawn_with_limits(localhost(), Sources::default(), limits).unwrap();
    let addr = handle.local_addr();
    // The first connection sends nothing and holds the only slot until its read timeout.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let waiting = std::thread::spawn(move || exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n"));
    let mut timed_out = Vec::new();
    idle.read_to_end(&mut timed_out).unwrap();
    assert!(timed_out.starts_with(b"HTTP/1.1 408 "));
    drop(idle);
    // The second is answered once the first has gone, not refused.
    let response = waiting.join().unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn unicast_drops_and_answers_to_unknown_links_are_counted() {
    let toml = SPLIT_A.replacen(
        "[server]\n",
        "[server]\nunknown-link = \"no-addrs-avail\"\n",
        1,
    );
    let mut datapath = Datapath::new(&toml);
    let before = metrics::render(&datapath.sources());
    assert_eq!(
        sample(&before, "xdhcp6_dropped_total{reason=\"unicast\"}").as_deref(),
        Some("0")
    );
    assert_eq!(
        sample(&before, "xdhcp6_unknown_link_answered_total").as_deref(),
        Some("0")
    );

    // A Solicit sent to the server's unicast address (RFC 9915 §16).
    let solicit = Client::new(1).solicit().ia_na(1, &[]);
    assert!(datapath.handle_at(&solicit, Arrival::Unicast).is_none());
    // A relayed Solicit from a link no [[link]] selects, answered NoAddrsAvail.
    let relayed = Client::new(2)
        .via(Relay::new("2001:db8:eeee::1".parse().unwrap()))
        .solicit()
        .ia_na(1, &[]);
    assert!(datapath.handle_at(&relayed, Arrival::Unicast).is_some());

    let text = metrics::render(&datapath.sources());
    assert_eq!(
        sample(&text, "xdhcp6_dropped_total{reason=\"unicast\"}").as_deref(),
        Some("1")
    );
    assert_eq!(
        sample(&text, "xdhcp6_unknown_link_answered_total").as_deref(),
        Some("1")
    );
    assert!(text.contains("# TYPE xdhcp6_unknown_link_answered_total counter\n"));
}
