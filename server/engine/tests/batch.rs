//! `Engine::handle_batch` against `Engine::handle_from` one message at a time: two engines with
//! the same configuration get the same messages, one as batches and one in turn, and must give
//! the same outcomes, reply bytes and lease events, whatever the batch sizes (across the
//! lookahead group size) and however often one client appears in a batch.

use proptest::prelude::*;
use xdhcp6_engine::engine::LOOKAHEAD;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::table::LeaseEvent;
use xdhcp6_engine::testing::{self, Client, Msg, Relay};
use xdhcp6_engine::{Arrival, BatchItem, Context, Outcome, Peer};

/// A small range, so that clients compete for addresses and some get none; a relay prefix on
/// each of two links, so that relayed messages are placed too, and a batch mixes messages
/// whose relays select different links.
const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
salt = "batch"
expected-leases = 256
decline-probation = 40
t1 = 10
t2 = 16
preferred-lifetime = 20
valid-lifetime = 30

[[link]]
name = "access-1"
interfaces = ["eth1"]
relay-prefixes = ["2001:db8:ffff:1::/64"]

[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/124"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
range = "2001:db8:100::/60"
delegated-length = 64

[[link]]
name = "access-2"
interfaces = ["eth2"]
relay-prefixes = ["2001:db8:ffff:2::/64"]

[[link.pool]]
prefix = "2001:db8:2::/64"
range = "2001:db8:2::/124"
"#;

const REPLY_BUF: usize = 2048;

/// One message of the script: which client (few, so that they repeat within a batch), what
/// it sends, and how.
#[derive(Clone, Debug)]
struct Step {
    client: u64,
    kind: u8,
    iaid: u32,
    pd: bool,
    /// Through the relay on link 1 or 2, or direct (on link 1).
    relay: Option<u8>,
    /// Listed in the IA: an address of the range (or none).
    listed: Option<u8>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0..6u64,
        0..8u8,
        1..3u32,
        any::<bool>(),
        prop::option::of(1..=2u8),
        prop::option::of(0..16u8),
    )
        .prop_map(|(client, kind, iaid, pd, relay, listed)| Step {
            client,
            kind,
            iaid,
            pd,
            relay,
            listed,
        })
}

fn message(step: &Step, server: &[u8]) -> Vec<u8> {
    let mut client = Client::new(step.client);
    if let Some(link) = step.relay {
        client = client.via(Relay::new(testing::ip(&format!("2001:db8:ffff:{link}::1"))));
    }
    let msg: Msg = match step.kind {
        0 => client.solicit(),
        1 => client.request(server),
        2 => client.renew(server),
        3 => client.rebind(),
        4 => client.release(server),
        5 => client.decline(server),
        6 => client.confirm(),
        _ => client
            .message(MessageType::Request)
            .server_id(b"another server"),
    };
    let addrs: Vec<_> = step
        .listed
        .map(|n| testing::ip(&format!("2001:db8:1::{n:x}")))
        .into_iter()
        .collect();
    let msg = msg.ia_na(step.iaid, &addrs);
    let msg = if step.pd {
        msg.ia_pd(step.iaid, &[])
    } else {
        msg
    };
    msg.encode()
}

/// What one message gave: the outcome and the reply's bytes.
type Answer = (Outcome, Vec<u8>);

fn answer(outcome: Outcome, reply: &[u8]) -> Answer {
    let len = match outcome {
        Outcome::Reply { len, .. } => len,
        Outcome::Drop { .. } => 0,
    };
    (outcome, reply[..len].to_vec())
}

/// Runs `batches` (message bytes, each batch at its time, after the expiry sweep of that
/// time) through two fresh engines: one message at a time, and by `handle_batch`.
fn both(batches: &[(u32, Vec<Vec<u8>>)]) -> [(Vec<Answer>, Vec<LeaseEvent>); 2] {
    let single = testing::Server::new(CONFIG);
    let batched = testing::Server::new(CONFIG);
    let mut one = (Vec::new(), Vec::new());
    let mut many = (Vec::new(), Vec::new());
    for (now, messages) in batches {
        let cx = Context {
            link: single.link,
            arrival: Arrival::Multicast,
            now: *now,
        };
        let peer = Peer {
            address: Some(testing::ip("fe80::1")),
            mac: Some([2, 0, 0, 0, 0, 1]),
        };
        // The expiry sweep runs in each table's own shard order (its index key is random):
        // the same events, in an order of that table's.
        let mut swept = [Vec::new(), Vec::new()];
        single.engine.handle_timeout(*now, &mut swept[0]);
        batched.engine.handle_timeout(*now, &mut swept[1]);
        for (swept, into) in swept.iter_mut().zip([&mut one.1, &mut many.1]) {
            swept.sort_by_key(|event| (event.record.lease.addr, event.record.lease.prefix_len));
            into.append(swept);
        }
        for request in messages {
            let mut reply = vec![0; REPLY_BUF];
            let outcome = single
                .engine
                .handle_from(request, &cx, peer, &mut reply, &mut one.1);
            one.0.push(answer(outcome, &reply));
        }
        let mut replies = vec![vec![0; REPLY_BUF]; messages.len()];
        let mut items: Vec<BatchItem<'_>> = messages
            .iter()
            .zip(replies.iter_mut())
            .map(|(request, reply)| BatchItem::new(request, cx, peer, reply))
            .collect();
        batched.engine.handle_batch(&mut items, &mut many.1);
        many.0
            .extend(items.iter().map(|item| answer(item.outcome, item.reply)));
    }
    [one, many]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_batch_answers_as_its_messages_one_by_one(
        script in prop::collection::vec((1..3 * LOOKAHEAD + 3, 0..20u32), 1..8),
        steps in prop::collection::vec(step(), 3 * LOOKAHEAD * 8),
    ) {
        let server = testing::config(CONFIG).server.duid.clone();
        let mut steps = steps.iter();
        let mut now = testing::T0;
        let batches: Vec<(u32, Vec<Vec<u8>>)> = script
            .iter()
            .map(|&(size, advance)| {
                now += advance;
                let messages = steps.by_ref().take(size).map(|step| message(step, &server)).collect();
                (now, messages)
            })
            .collect();
        let [one, many] = both(&batches);
        prop_assert_eq!(one.0.len(), many.0.len());
        for (at, (a, b)) in one.0.iter().zip(&many.0).enumerate() {
            prop_assert_eq!(a, b, "message {}", at);
        }
        prop_assert_eq!(one.1, many.1);
    }
}

/// The same client several times in one batch: a Solicit, Request, Renew, Release, Request
/// sequence must see each step's effect, as it would one message at a time.
#[test]
fn one_client_repeated_in_a_batch_sees_its_own_changes() {
    let server = testing::config(CONFIG).server.duid.clone();
    let client = Client::new(42);
    let messages: Vec<Vec<u8>> = [
        client.solicit().ia_na(1, &[]),
        client.request(&server).ia_na(1, &[]),
        client.renew(&server).ia_na(1, &[]),
        client.request(&server).ia_na(1, &[]),
    ]
    .iter()
    .map(Msg::encode)
    .collect();
    let [one, many] = both(&[(testing::T0, messages)]);
    assert_eq!(one, many);
    let sent: Vec<MessageType> = many
        .0
        .iter()
        .map(|(outcome, _)| match outcome {
            Outcome::Reply { sent, .. } => *sent,
            Outcome::Drop { reason, .. } => panic!("dropped: {reason:?}"),
        })
        .collect();
    assert_eq!(
        sent,
        [
            MessageType::Advertise,
            MessageType::Reply,
            MessageType::Reply,
            MessageType::Reply
        ]
    );
    let kinds: Vec<_> = many.1.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [
            xdhcp6_engine::table::EventKind::Bound,
            xdhcp6_engine::table::EventKind::Renewed,
            xdhcp6_engine::table::EventKind::Renewed,
        ]
    );
}

/// Cut and corrupted messages (every prefix of a relayed Request, and each with one byte
/// changed) are answered or dropped by a batch as one by one, and reading them ahead does
/// not panic.
#[test]
fn broken_messages_in_a_batch_are_dropped_as_one_by_one() {
    let server = testing::config(CONFIG).server.duid.clone();
    let whole = Client::new(7)
        .via(Relay::new(testing::ip("2001:db8:ffff:1::1")))
        .request(&server)
        .ia_na(1, &[])
        .ia_pd(2, &[])
        .encode();
    let mut messages: Vec<Vec<u8>> = (0..=whole.len()).map(|len| whole[..len].to_vec()).collect();
    for at in 0..whole.len() {
        let mut changed = whole.clone();
        changed[at] ^= 0x5a;
        messages.push(changed);
    }
    let [one, many] = both(&[(testing::T0, messages)]);
    assert_eq!(one, many);
    let answered = many
        .0
        .iter()
        .filter(|(outcome, _)| matches!(outcome, Outcome::Reply { .. }))
        .count();
    let dropped = many.0.len() - answered;
    assert!(
        answered > 0 && dropped > 0,
        "{answered} answered, {dropped} dropped"
    );
}
