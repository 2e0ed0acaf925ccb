//! Engine benchmarks on one core, against a table already holding 1,000,000 leases:
//! a new client's four-message exchange (Solicit → Advertise, Request → Reply), and a Renew
//! of an existing lease. Request bytes are built outside the timed region; every iteration
//! is a distinct client (DUID from a counter) or a distinct lease.
//!
//! The `batch` variants answer the same messages through `Engine::handle_batch`, `BATCH` at a
//! time as a datapath's receive batch would bring them (all the Solicits of `BATCH` new
//! clients, then their Requests); their throughput counts messages' exchanges or Renews, not
//! batches. `new_client_exchange_relayed` and its `_batch` twin send the same exchange through
//! a relay (an Interface-Id and a Remote-ID per client) to a sink that takes records, as the
//! AF_XDP worker answers what relays send; `renew_relayed` and its `_batch` twin renew
//! 100,000 leases bound through such relays, through the same relays.
//!
//! After the criterion functions, the bench alternates one-message and batch slices of the
//! same work (50,000 Renews, 5,000 new clients) fifteen times and prints the ratio of their
//! rates, median and range: on a shared machine whose load changes from one minute to the
//! next, pairs taken a fraction of a second apart compare better than functions run minutes
//! apart. Last, it binds 2,000,000 relayed clients, each behind a Remote-ID of its own, into
//! a table expecting 4,000,000 leases (as `cargo xtask bench` configures xdhcp6d), past the
//! relay data's subscriber store for a quarter as many, and prints the exchanges' median,
//! 99.9th percentile and worst time and how many took over 100 µs.
//!
//! Limits: the link's, the MAC addresses' and the relays' new-binding rates are off
//! (`binding-rate = 0`, `mac-binding-rate = 0`, `relay-binding-rate = 0`) and `max-leases` is
//! above what the runs bind, so that the clock, which stands still, does not turn the exchange
//! into rate-limited drops (the relayed exchanges all come from one relay, whose default
//! burst of 10,000 they would use up at once); the per-MAC cap is off too (`mac-max-bindings =
//! 0`): the clients are direct, one MAC address each from their DUID-LLT, and millions of MACs
//! share the limits' 65,535 hashed slots, so the default cap of 32 would answer a growing
//! share of them NoAddrsAvail. The run fails if any limit refused anything, so that no figure
//! measures refusals.

use std::hint::black_box;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::{Config, LinkId};
use xdhcp6_engine::proto::{MessageType, MessageWriter, OptionCode};
use xdhcp6_engine::table::{Discard, EventKind, EventSink, IaKind, LeaseEvent, LeaseTable};
use xdhcp6_engine::{Arrival, BatchItem, Context, Engine, Outcome, Peer};

/// Messages per `handle_batch` call in the batch variants (an AF_XDP receive batch).
const BATCH: usize = 64;

/// Answers `messages` (each `len` bytes) through `handle_batch`, events to `sink`; returns the
/// replies' total length, so that nothing is optimised away.
fn batch(
    engine: &Engine,
    messages: &[u8],
    len: usize,
    cx: &Context,
    replies: &mut [[u8; 1024]],
    sink: &mut impl EventSink,
) -> usize {
    let mut items: Vec<BatchItem<'_>> = messages
        .chunks_exact(len)
        .zip(replies.iter_mut())
        .map(|(request, reply)| BatchItem::new(request, *cx, Peer::default(), reply))
        .collect();
    engine.handle_batch(&mut items, sink);
    items
        .iter()
        .map(|item| match item.outcome {
            Outcome::Reply { len, .. } => len,
            Outcome::Drop { .. } => 0,
        })
        .sum()
}

/// Messages taken `step` bytes at a time from a run of them, from the start again when fewer
/// than `step` are left: each iteration renews other leases.
struct Cycle<'a> {
    messages: &'a [u8],
    step: usize,
    at: usize,
}

impl<'a> Cycle<'a> {
    fn new(messages: &'a [u8], step: usize) -> Self {
        assert!(step > 0 && step <= messages.len());
        Self {
            messages,
            step,
            at: 0,
        }
    }

    fn next(&mut self) -> &'a [u8] {
        if self.at + self.step > self.messages.len() {
            self.at = 0;
        }
        let taken = &self.messages[self.at..self.at + self.step];
        self.at += self.step;
        taken
    }
}

/// Leases in the table before anything is timed.
const FILLED: u64 = 1_000_000;

/// The engine clock at the start.
const T0: u32 = 1_750_000_000;

/// A /64 pool, so that it never runs out however many iterations criterion runs.
const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
preference = 255
salt = "bench"
expected-leases = 8000000
max-leases = 100000000
mac-max-bindings = 0
mac-binding-rate = 0
relay-binding-rate = 0
t1 = "30m"
t2 = "48m"
preferred-lifetime = "1h"
valid-lifetime = "2h"

[options]
dns-servers = ["2001:db8:53::1", "2001:db8:53::2"]

[[link]]
name = "access-1"
interfaces = ["eth1"]
binding-rate = 0

[[link.pool]]
prefix = "2001:db8:1::/64"
"#;

/// A distinct 14-byte DUID-LLT per client number.
fn duid(client: u64) -> [u8; 14] {
    let mut duid = [0, 1, 0, 1, 0x2e, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    duid[8..].copy_from_slice(&client.to_be_bytes()[2..]);
    duid
}

/// A client message as a real client sends it: Client Identifier, Server Identifier where
/// the type needs one, Elapsed Time, one IA_NA (with `addr` when it has one) and an ORO
/// asking for DNS servers.
fn client_message(
    buf: &mut [u8],
    msg_type: MessageType,
    client: u64,
    server: Option<&[u8]>,
    addr: Option<Ipv6Addr>,
) -> usize {
    let mut w = MessageWriter::client(buf, msg_type, client as u32).expect("buffer fits");
    w.client_id(&duid(client)).expect("buffer fits");
    if let Some(server) = server {
        w.server_id(server).expect("buffer fits");
    }
    w.elapsed_time(0).expect("buffer fits");
    let mark = w.begin_ia_na(1, 0, 0).expect("buffer fits");
    if let Some(addr) = addr {
        w.ia_address(addr, 0, 0).expect("buffer fits");
    }
    w.end_option(mark).expect("buffer fits");
    w.oro(&[OptionCode::DnsServers]).expect("buffer fits");
    w.finish().expect("balanced")
}

/// A new client's Solicit and Request, built before the timed region.
struct Exchange {
    solicit: [u8; 128],
    solicit_len: usize,
    request: [u8; 128],
    request_len: usize,
}

impl Exchange {
    fn new(client: u64, server: &[u8]) -> Self {
        let mut solicit = [0; 128];
        let mut request = [0; 128];
        let solicit_len = client_message(&mut solicit, MessageType::Solicit, client, None, None);
        // The engine binds the offered address whatever the IA lists, so the Request can be
        // built before the Advertise is seen.
        let request_len = client_message(
            &mut request,
            MessageType::Request,
            client,
            Some(server),
            None,
        );
        Self {
            solicit,
            solicit_len,
            request,
            request_len,
        }
    }
}

/// The Solicits and the Requests of `count` new clients, numbered on from `*next` (which
/// ends at the last one), each run end to end, and their lengths (every message of a kind has
/// one length: the client numbers take the same bytes); wrapped in a Relay-forward
/// ([`relayed`]) when `through_relay`.
fn new_clients(
    next: &mut u64,
    count: usize,
    server: &[u8],
    through_relay: bool,
) -> (Vec<u8>, Vec<u8>, (usize, usize)) {
    let (mut solicits, mut requests, mut len) = (Vec::new(), Vec::new(), (0, 0));
    let mut wrapped = [0; 256];
    for _ in 0..count {
        *next += 1;
        let exchange = Exchange::new(*next, server);
        let mut add = |run: &mut Vec<u8>, message: &[u8]| {
            let message = if through_relay {
                let len = relayed(message, *next, &mut wrapped);
                &wrapped[..len]
            } else {
                message
            };
            run.extend_from_slice(message);
            message.len()
        };
        len = (
            add(&mut solicits, &exchange.solicit[..exchange.solicit_len]),
            add(&mut requests, &exchange.request[..exchange.request_len]),
        );
    }
    (solicits, requests, len)
}

/// Answers the Solicits of [`new_clients`] in one batch, then their Requests, events to
/// `sink`; returns the replies' total lengths.
fn exchanges(
    engine: &Engine,
    (solicits, requests, (solicit_len, request_len)): &(Vec<u8>, Vec<u8>, (usize, usize)),
    cx: &Context,
    replies: &mut [[u8; 1024]],
    sink: &mut impl EventSink,
) -> (usize, usize) {
    (
        batch(engine, solicits, *solicit_len, cx, replies, sink),
        batch(engine, requests, *request_len, cx, replies, sink),
    )
}

/// `inner` (a client message of `len` bytes) wrapped in a Relay-forward as an access
/// router sends it: link-address on the pool's link, the client's link-local address as
/// peer, an Interface-Id of the port and a Remote-ID of the client's own line (as the load
/// generator's relays send them). Returns the length.
fn relayed(inner: &[u8], client: u64, out: &mut [u8]) -> usize {
    let mut w = MessageWriter::relay(
        out,
        MessageType::RelayForw,
        0,
        "2001:db8:1::1".parse().expect("an address"),
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, (client >> 16) as u16, client as u16),
    )
    .expect("buffer fits");
    w.interface_id(b"bench0001").expect("buffer fits");
    let mut line = *b"line\0\0\0\0";
    line[4..].copy_from_slice(&(client as u32).to_be_bytes());
    w.remote_id(3561, &line).expect("buffer fits");
    w.relay_msg(inner).expect("buffer fits");
    w.finish().expect("balanced")
}

/// A new client's Solicit and Request ([`Exchange`]), each wrapped in a Relay-forward
/// ([`relayed`]), with their lengths.
fn relayed_exchange(client: u64, server: &[u8]) -> ([u8; 256], usize, [u8; 256], usize) {
    let exchange = Exchange::new(client, server);
    let (mut solicit, mut request) = ([0; 256], [0; 256]);
    let solicit_len = relayed(
        &exchange.solicit[..exchange.solicit_len],
        client,
        &mut solicit,
    );
    let request_len = relayed(
        &exchange.request[..exchange.request_len],
        client,
        &mut request,
    );
    (solicit, solicit_len, request, request_len)
}

/// Takes events with their DUID and relay data and turns offers down, as the daemon's
/// journal does.
struct Records;

impl EventSink for Records {
    fn emit(&mut self, event: LeaseEvent) {
        black_box(event);
    }

    fn wants(&self, kind: EventKind) -> bool {
        kind != EventKind::Offered
    }
}

/// An engine with `FILLED` bound leases, and a Renew for each of them.
struct Filled {
    engine: Engine,
    server: Vec<u8>,
    renews: Vec<u8>,
    renew_len: usize,
}

/// An engine of the configuration `text` (the bench's [`CONFIG`], or one changed from it),
/// its table made for the configuration's `expected-leases`; its server DUID; the context of
/// a message on its link at [`T0`].
fn engine_of(text: &str) -> (Engine, Vec<u8>, Context) {
    let config = Arc::new(Config::from_toml_str(text, "bench.toml").expect("valid config"));
    let table = Arc::new(LeaseTable::with_capacity(
        config.server.expected_leases as usize,
        SaltKey::from_salt(&config.server.salt),
    ));
    let server = config.server.duid.clone();
    let engine = Engine::new(config, table).expect("engine starts");
    let cx = Context {
        link: Some(LinkId(0)),
        arrival: Arrival::Multicast,
        now: T0,
    };
    (engine, server, cx)
}

fn filled() -> Filled {
    let (engine, server, cx) = engine_of(CONFIG);
    let started = Instant::now();
    let mut request = [0; 128];
    let mut reply = [0; 1024];
    let mut renews = Vec::new();
    let mut renew_len = 0;
    for client in 0..FILLED {
        let len = client_message(
            &mut request,
            MessageType::Request,
            client,
            Some(&server),
            None,
        );
        let outcome = engine.handle(&request[..len], &cx, &mut reply, &mut Discard);
        assert!(matches!(outcome, Outcome::Reply { .. }), "{outcome:?}");
        let id = duid(client);
        let key = engine.table().ia_key(&id, 1, IaKind::Na, LinkId(0));
        let lease = engine.table().find_client(&key).expect("bound");
        let mut renew = [0; 128];
        renew_len = client_message(
            &mut renew,
            MessageType::Renew,
            client,
            Some(&server),
            Some(lease.ip()),
        );
        renews.extend_from_slice(&renew[..renew_len]);
    }
    assert_eq!(engine.table().len(), FILLED as usize);
    eprintln!(
        "filled {FILLED} leases through Request in {:.2?}",
        started.elapsed()
    );
    eprintln!(
        "limits: link binding-rate 0 (off), max-leases 100000000, MAC cap and rate off, relay \
         rate off; refused so far: {}",
        engine.limit_refusals().map(|(_, n)| n).sum::<u64>()
    );
    Filled {
        engine,
        server,
        renews,
        renew_len,
    }
}

fn engine_benches(c: &mut Criterion) {
    let Filled {
        engine,
        server,
        renews,
        renew_len,
    } = filled();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));

    // One new client per iteration: Solicit → Advertise, Request → Reply.
    let cx = Context {
        link: Some(LinkId(0)),
        arrival: Arrival::Multicast,
        now: T0 + 1,
    };
    let mut reply = [0; 1024];
    let mut next_client = FILLED;
    {
        // Check once, outside the measurement, that the exchange does what is timed.
        let exchange = Exchange::new(u64::MAX >> 16, &server);
        let advertise = engine.handle(
            &exchange.solicit[..exchange.solicit_len],
            &cx,
            &mut reply,
            &mut Discard,
        );
        assert!(matches!(advertise, Outcome::Reply { .. }));
        assert_eq!(reply[0], u8::from(MessageType::Advertise));
        let bound = engine.handle(
            &exchange.request[..exchange.request_len],
            &cx,
            &mut reply,
            &mut Discard,
        );
        assert!(matches!(bound, Outcome::Reply { .. }));
        assert_eq!(reply[0], u8::from(MessageType::Reply));
    }
    group.bench_function("new_client_exchange/1M_leases", |b| {
        b.iter_batched_ref(
            || {
                next_client += 1;
                Exchange::new(next_client, &server)
            },
            |exchange| {
                let advertise = engine.handle(
                    &exchange.solicit[..exchange.solicit_len],
                    &cx,
                    &mut reply,
                    &mut Discard,
                );
                let bound = engine.handle(
                    &exchange.request[..exchange.request_len],
                    &cx,
                    &mut reply,
                    &mut Discard,
                );
                black_box((advertise, bound))
            },
            BatchSize::SmallInput,
        );
    });

    // The same through a relay (Interface-Id and a Remote-ID per client), with a sink that
    // takes the records as the journal does: the relay data's capture, interning and event.
    {
        // Check once that the relayed exchange is answered through the relay and binds.
        let client = u64::MAX >> 17;
        let exchange = Exchange::new(client, &server);
        let mut message = [0; 256];
        for inner in [
            &exchange.solicit[..exchange.solicit_len],
            &exchange.request[..exchange.request_len],
        ] {
            let len = relayed(inner, client, &mut message);
            let outcome = engine.handle(&message[..len], &cx, &mut reply, &mut Records);
            assert!(matches!(outcome, Outcome::Reply { .. }), "{outcome:?}");
            assert_eq!(reply[0], u8::from(MessageType::RelayRepl));
        }
        let id = duid(client);
        let key = engine.table().ia_key(&id, 1, IaKind::Na, LinkId(0));
        let lease = engine.table().find_client(&key).expect("bound");
        assert_eq!(lease.state, xdhcp6_engine::table::LeaseState::Bound);
    }
    group.bench_function("new_client_exchange_relayed/1M_leases", |b| {
        b.iter_batched_ref(
            || {
                next_client += 1;
                relayed_exchange(next_client, &server)
            },
            |(solicit, solicit_len, request, request_len)| {
                let advertise =
                    engine.handle(&solicit[..*solicit_len], &cx, &mut reply, &mut Records);
                let bound = engine.handle(&request[..*request_len], &cx, &mut reply, &mut Records);
                black_box((advertise, bound))
            },
            BatchSize::SmallInput,
        );
    });

    // The same, `BATCH` new clients at a time: their Solicits in one batch, then their
    // Requests (every message of one length: the client numbers take the same bytes).
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut replies = vec![[0; 1024]; BATCH];
    next_client += 1 << 32;
    group.bench_function("new_client_exchange_batch/1M_leases", |b| {
        b.iter_batched_ref(
            || new_clients(&mut next_client, BATCH, &server, false),
            |clients| black_box(exchanges(&engine, clients, &cx, &mut replies, &mut Discard)),
            BatchSize::SmallInput,
        );
    });

    // The relayed exchange, `BATCH` new clients at a time, as the AF_XDP worker answers what
    // its relays send.
    group.bench_function("new_client_exchange_relayed_batch/1M_leases", |b| {
        b.iter_batched_ref(
            || new_clients(&mut next_client, BATCH, &server, true),
            |clients| black_box(exchanges(&engine, clients, &cx, &mut replies, &mut Records)),
            BatchSize::SmallInput,
        );
    });
    group.throughput(Throughput::Elements(1));

    // Leases bound through one relay for the relayed Renews below, before the clock moves on
    // to the Renews' time.
    let (relayed_renews, relayed_len) =
        relayed_leases(&engine, &server, next_client + (1 << 36), T0 + 1);

    // Renew of an existing lease, cycling through all of them.
    let cx = Context {
        link: Some(LinkId(0)),
        arrival: Arrival::Multicast,
        now: T0 + 1800,
    };
    {
        let outcome = engine.handle(&renews[..renew_len], &cx, &mut reply, &mut Discard);
        assert!(matches!(outcome, Outcome::Reply { .. }));
    }
    let mut next = Cycle::new(&renews, renew_len);
    group.bench_function("renew/1M_leases", |b| {
        b.iter(|| black_box(engine.handle(next.next(), &cx, &mut reply, &mut Discard)));
    });

    // The same Renews, `BATCH` at a time.
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut next = Cycle::new(&renews, BATCH * renew_len);
    group.bench_function("renew_batch/1M_leases", |b| {
        b.iter(|| {
            black_box(batch(
                &engine,
                next.next(),
                renew_len,
                &cx,
                &mut replies,
                &mut Discard,
            ))
        });
    });
    group.throughput(Throughput::Elements(1));

    // The same Renew over the first 1,000 leases only: table and messages stay in cache, so
    // this is the CPU cost of a Renew without the memory misses of the 1M-lease run.
    let hot = &renews[..1000 * renew_len];
    let mut next = Cycle::new(hot, renew_len);
    group.bench_function("renew/1k_hot_leases", |b| {
        b.iter(|| black_box(engine.handle(next.next(), &cx, &mut reply, &mut Discard)));
    });

    // Renews through relays, of leases bound through the same relays (each Renew carries the
    // relay data its lease holds: the common case), to a sink that takes records.
    let mut next = Cycle::new(&relayed_renews, relayed_len);
    group.bench_function("renew_relayed/1M_leases", |b| {
        b.iter(|| black_box(engine.handle(next.next(), &cx, &mut reply, &mut Records)));
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut next = Cycle::new(&relayed_renews, BATCH * relayed_len);
    group.bench_function("renew_relayed_batch/1M_leases", |b| {
        b.iter(|| {
            let renews = next.next();
            black_box(batch(
                &engine,
                renews,
                relayed_len,
                &cx,
                &mut replies,
                &mut Records,
            ))
        });
    });
    group.throughput(Throughput::Elements(1));
    group.finish();
    interleaved(
        &engine,
        &server,
        &renews,
        renew_len,
        next_client + (1 << 40),
    );
    eprintln!(
        "table holds {} leases after the benchmarks",
        engine.table().len()
    );
    subscriber_growth();
    let refused: Vec<_> = engine.limit_refusals().filter(|&(_, n)| n > 0).collect();
    assert!(
        refused.is_empty(),
        "the limits refused messages, so some figures above measure refusals: {refused:?}"
    );
}

/// Leases bound through relays ([`relayed`]) for `RELAYED_LEASES` new clients from client
/// number `first` on, and a relayed Renew of each, built the same way; returns the Renews
/// and their length, binding at `now`.
fn relayed_leases(engine: &Engine, server: &[u8], first: u64, now: u32) -> (Vec<u8>, usize) {
    const RELAYED_LEASES: u64 = 100_000;
    let cx = Context {
        link: Some(LinkId(0)),
        arrival: Arrival::Multicast,
        now,
    };
    let mut message = [0; 128];
    let mut relayed_message = [0; 256];
    let mut reply = [0; 1024];
    let mut renews = Vec::new();
    let mut renew_len = 0;
    for client in first..first + RELAYED_LEASES {
        let len = client_message(
            &mut message,
            MessageType::Request,
            client,
            Some(server),
            None,
        );
        let len = relayed(&message[..len], client, &mut relayed_message);
        let outcome = engine.handle(&relayed_message[..len], &cx, &mut reply, &mut Records);
        assert!(matches!(outcome, Outcome::Reply { .. }), "{outcome:?}");
        let id = duid(client);
        let key = engine.table().ia_key(&id, 1, IaKind::Na, LinkId(0));
        let lease = engine.table().find_client(&key).expect("bound");
        let len = client_message(
            &mut message,
            MessageType::Renew,
            client,
            Some(server),
            Some(lease.ip()),
        );
        renew_len = relayed(&message[..len], client, &mut relayed_message);
        renews.extend_from_slice(&relayed_message[..renew_len]);
    }
    // A relayed Renew is answered through the relay and keeps the lease.
    let outcome = engine.handle(&renews[..renew_len], &cx, &mut reply, &mut Records);
    assert!(matches!(outcome, Outcome::Reply { .. }), "{outcome:?}");
    assert_eq!(reply[0], u8::from(MessageType::RelayRepl));
    (renews, renew_len)
}

/// One message at a time and `handle_batch`, in alternating slices of a fraction of a
/// second, so that both see the same load of a shared machine: prints each slice pair's rate
/// ratio (batch over one at a time), its median and range.
fn interleaved(engine: &Engine, server: &[u8], renews: &[u8], renew_len: usize, first: u64) {
    const PAIRS: usize = 15;
    const RENEWS: usize = 50_000;
    const CLIENTS: usize = 5_000;
    let cx = Context {
        link: Some(LinkId(0)),
        arrival: Arrival::Multicast,
        now: T0 + 3600,
    };
    let mut reply = [0; 1024];
    let mut replies = vec![[0; 1024]; BATCH];
    let report = |what: &str, mut pairs: Vec<(f64, f64)>| {
        let mut ratios: Vec<f64> = pairs.iter().map(|(one, many)| many / one).collect();
        ratios.sort_by(f64::total_cmp);
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let one = pairs[PAIRS / 2].0;
        pairs.sort_by(|a, b| a.1.total_cmp(&b.1));
        let many = pairs[PAIRS / 2].1;
        eprintln!(
            "interleaved {what}: one at a time median {:.0}/s, handle_batch median {:.0}/s; \
             ratio median {:.2} (range {:.2}-{:.2}, {PAIRS} pairs)",
            one,
            many,
            ratios[PAIRS / 2],
            ratios[0],
            ratios[PAIRS - 1]
        );
    };
    // Renews: as many for both, in turn.
    let mut pairs = Vec::new();
    let slice = RENEWS * renew_len;
    for pair in 0..PAIRS {
        // Each side renews leases of its own, which neither renewed recently.
        let at = |n: usize| (n * slice) % (renews.len() - slice);
        let (one, many) = (at(2 * pair), at(2 * pair + 1));
        let (messages, others) = (&renews[one..one + slice], &renews[many..many + slice]);
        let started = Instant::now();
        for renew in messages.chunks_exact(renew_len) {
            black_box(engine.handle(renew, &cx, &mut reply, &mut Discard));
        }
        let one = RENEWS as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        for group in others.chunks(BATCH * renew_len) {
            black_box(batch(
                engine,
                group,
                renew_len,
                &cx,
                &mut replies,
                &mut Discard,
            ));
        }
        let many = RENEWS as f64 / started.elapsed().as_secs_f64();
        pairs.push((one, many));
    }
    report("Renew, 1M leases", pairs);
    // New clients' exchanges, distinct clients for each slice.
    let mut pairs = Vec::new();
    let mut client = first;
    let mut slice = || new_clients(&mut client, CLIENTS, server, false);
    for _ in 0..PAIRS {
        let (solicits, requests, (solicit_len, request_len)) = slice();
        let started = Instant::now();
        for (solicit, request) in solicits
            .chunks_exact(solicit_len)
            .zip(requests.chunks_exact(request_len))
        {
            black_box(engine.handle(solicit, &cx, &mut reply, &mut Discard));
            black_box(engine.handle(request, &cx, &mut reply, &mut Discard));
        }
        let one = CLIENTS as f64 / started.elapsed().as_secs_f64();
        let (solicits, requests, (solicit_len, request_len)) = slice();
        let started = Instant::now();
        for (solicit, request) in solicits
            .chunks(BATCH * solicit_len)
            .zip(requests.chunks(BATCH * request_len))
        {
            black_box(batch(
                engine,
                solicit,
                solicit_len,
                &cx,
                &mut replies,
                &mut Discard,
            ));
            black_box(batch(
                engine,
                request,
                request_len,
                &cx,
                &mut replies,
                &mut Discard,
            ));
        }
        let many = CLIENTS as f64 / started.elapsed().as_secs_f64();
        pairs.push((one, many));
    }
    report("new-client exchange, 1M leases", pairs);
}

/// Subscribers past what `expected-leases` sized the relay data's store for, as in `cargo xtask
/// bench`: an engine expecting `EXPECTED` leases (a store for a quarter as many subscriber
/// parts) binds `CLIENTS` new relayed clients, each with a Remote-ID of its own, one exchange
/// at a time; prints the exchanges' times (median, 99.9th percentile, worst) and those over
/// 100 µs. Each of the store's 64 index shards grows once on the way.
fn subscriber_growth() {
    const EXPECTED: usize = 4_000_000;
    const CLIENTS: u64 = 2_000_000;
    let text = CONFIG.replace(
        "expected-leases = 8000000",
        &format!("expected-leases = {EXPECTED}"),
    );
    assert_ne!(
        text, CONFIG,
        "the bench's configuration sets expected-leases"
    );
    let (engine, server, cx) = engine_of(&text);
    let mut reply = [0; 1024];
    let mut times = Vec::with_capacity(CLIENTS as usize);
    for client in 1..=CLIENTS {
        let (solicit, solicit_len, request, request_len) = relayed_exchange(client, &server);
        let started = Instant::now();
        black_box(engine.handle(&solicit[..solicit_len], &cx, &mut reply, &mut Records));
        let bound = engine.handle(&request[..request_len], &cx, &mut reply, &mut Records);
        times.push(started.elapsed());
        assert!(matches!(bound, Outcome::Reply { .. }), "{bound:?}");
    }
    let subscribers = engine.table().relay_stats().subscribers;
    assert_eq!(
        subscribers as u64, CLIENTS,
        "one subscriber part per client"
    );
    let slow: Vec<Duration> = times
        .iter()
        .copied()
        .filter(|&time| time > Duration::from_micros(100))
        .collect();
    times.sort_unstable();
    let at = |fraction: f64| times[((times.len() - 1) as f64 * fraction) as usize];
    eprintln!(
        "subscriber growth: {CLIENTS} relayed new clients, {subscribers} subscriber parts in a \
         store sized for {}: exchange median {:?}, p99.9 {:?}, worst {:?}; {} over 100 µs, \
         {:?} in all",
        EXPECTED / 4,
        at(0.5),
        at(0.999),
        at(1.0),
        slow.len(),
        slow.iter().sum::<Duration>()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = engine_benches
}
criterion_main!(benches);
