//! Heap allocations on the reply path. A relayed client's messages go through the relay
//! chain's parsing, the relay data's canonical encoding and interning, the lease table and a
//! sink that takes every event with its record: none of it may allocate scratch space per
//! message. A Solicit allocates nothing; a Request or Renew allocates the one block of its
//! relay data (`RelayData`, shared from then on). The table is sized for its leases
//! (`expected-leases`; the relay store for a quarter as many subscriber parts, more than the
//! 2,000 clients here have), and a first wave of clients has made the relay interner's first
//! chunks (one per 1,024 entries of a shard) before the counted one comes.
//!
//! The count is per thread (only the thread that asks is counted), so the harness's other
//! threads do not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::table::{EventSink, LeaseEvent};
use xdhcp6_engine::testing::{Client, Relay, Server, ip};
use xdhcp6_engine::{Arrival, BatchItem, Context, Outcome};

/// The system allocator, counting the allocations of threads that asked for it.
struct Counting;

thread_local! {
    /// `Some(n)`: this thread counts, `n` so far.
    static COUNT: Cell<Option<u64>> = const { Cell::new(None) };
}

fn count_one() {
    // `try_with`: the thread-local may be gone while a thread exits.
    let _ = COUNT.try_with(|count| {
        if let Some(n) = count.get() {
            count.set(Some(n + 1));
        }
    });
}

// SAFETY: every call is forwarded to `System` with the caller's arguments; counting touches
// only a thread-local `Cell` and allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: as for `dealloc`, and `new_size` meets `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|count| count.set(Some(0)));
    f();
    COUNT.with(|count| count.replace(None)).unwrap_or(0)
}

/// Takes every event, with its DUID and relay data, as the journal's sink does.
struct Everything(u64);

impl EventSink for Everything {
    fn emit(&mut self, event: LeaseEvent) {
        self.0 += 1;
        std::hint::black_box(event);
    }
}

/// Relayed clients select the link by the relay's link-address; no limit refuses them.
const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0a"
salt = "allocations"
expected-leases = 16384
relay-max-bindings = 0
relay-binding-rate = 0
mac-max-bindings = 0
mac-binding-rate = 0

[[link]]
name = "access"
interfaces = ["eth0"]
binding-rate = 0

[[link.pool]]
prefix = "2001:db8:1::/64"
"#;

const CLIENTS: u64 = 1000;

/// Client `n` behind a relay that adds an Interface-Id, a Remote-ID of the client's own
/// (a subscriber line each, as the load generator sends) and a Client Link-Layer Address.
fn client(n: u64) -> Client {
    let mut remote_id = vec![0, 0, 0x0d, 0xe9];
    remote_id.extend_from_slice(&n.to_be_bytes());
    let relay = Relay::new(ip("2001:db8:1::1"))
        .interface_id(b"bng-1/0/7")
        .option(37, &remote_id)
        .link_layer(1, &[2, 0, 0, 0, (n >> 8) as u8, n as u8]);
    Client::new(n).via(relay)
}

/// The messages of `CLIENTS` clients, each kind as one list.
struct Messages {
    solicits: Vec<Vec<u8>>,
    requests: Vec<Vec<u8>>,
    renews: Vec<Vec<u8>>,
}

/// The messages of clients `first..first + CLIENTS`.
fn messages(server: &Server, first: u64) -> Messages {
    let id = server.duid();
    let clients: Vec<Client> = (first..first + CLIENTS).map(client).collect();
    Messages {
        solicits: clients
            .iter()
            .map(|c| c.solicit().ia_na(1, &[]).encode())
            .collect(),
        requests: clients
            .iter()
            .map(|c| c.request(&id).ia_na(1, &[]).encode())
            .collect(),
        renews: clients
            .iter()
            .map(|c| {
                c.message(MessageType::Renew)
                    .server_id(&id)
                    .ia_na(1, &[])
                    .encode()
            })
            .collect(),
    }
}

fn cx(server: &Server) -> Context {
    Context {
        link: None,
        arrival: Arrival::Multicast,
        now: server.now,
    }
}

/// Answers each message alone; returns the allocations per message.
fn one_at_a_time(server: &Server, list: &[Vec<u8>], sink: &mut Everything) -> f64 {
    let cx = cx(server);
    let mut reply = [0; 1500];
    let mut replies = 0;
    let allocated = allocations(|| {
        for message in list {
            let outcome = server.engine.handle(message, &cx, &mut reply, sink);
            if matches!(outcome, Outcome::Reply { .. }) {
                replies += 1;
            }
        }
    });
    assert_eq!(replies, list.len(), "every message is answered");
    allocated as f64 / list.len() as f64
}

/// Answers the messages in `handle_batch` batches of 64 (the item list is built before the
/// count starts); returns the allocations per message.
fn batched(server: &Server, list: &[Vec<u8>], sink: &mut Everything) -> f64 {
    let cx = cx(server);
    let mut replies = vec![[0u8; 1500]; list.len()];
    let mut items: Vec<BatchItem<'_>> = list
        .iter()
        .zip(replies.iter_mut())
        .map(|(message, reply)| BatchItem::new(message, cx, Default::default(), reply))
        .collect();
    let allocated = allocations(|| {
        for batch in items.chunks_mut(64) {
            server.engine.handle_batch(batch, sink);
        }
    });
    let answered = items
        .iter()
        .filter(|item| matches!(item.outcome, Outcome::Reply { .. }))
        .count();
    assert_eq!(answered, list.len(), "every message is answered");
    allocated as f64 / list.len() as f64
}

/// A server whose table and interner hold a first wave of `CLIENTS` bound clients.
fn warmed() -> Server {
    let server = Server::new(CONFIG);
    let first = messages(&server, 0);
    let mut sink = Everything(0);
    one_at_a_time(&server, &first.solicits, &mut sink);
    one_at_a_time(&server, &first.requests, &mut sink);
    assert_eq!(server.engine.table().len(), CLIENTS as usize);
    server
}

/// A second wave of `CLIENTS` clients, answered by `answer` (one at a time or in batches):
/// nothing allocated per Solicit, one allocation per Request and per Renew.
fn second_wave_allocates_only_relay_data(answer: fn(&Server, &[Vec<u8>], &mut Everything) -> f64) {
    let server = warmed();
    let messages = messages(&server, CLIENTS);
    let mut sink = Everything(0);
    let solicit = answer(&server, &messages.solicits, &mut sink);
    let request = answer(&server, &messages.requests, &mut sink);
    let renew = answer(&server, &messages.renews, &mut sink);
    assert_eq!(server.engine.table().len(), 2 * CLIENTS as usize);
    assert!(
        sink.0 >= 2 * CLIENTS,
        "the sink saw the bindings: {}",
        sink.0
    );
    assert_eq!(solicit, 0.0, "allocations per Solicit");
    assert_eq!(request, 1.0, "allocations per Request");
    assert_eq!(renew, 1.0, "allocations per Renew");
}

#[test]
fn a_relayed_exchange_allocates_only_its_relay_data() {
    second_wave_allocates_only_relay_data(one_at_a_time);
}

#[test]
fn a_relayed_exchange_in_batches_allocates_only_its_relay_data() {
    second_wave_allocates_only_relay_data(batched);
}
