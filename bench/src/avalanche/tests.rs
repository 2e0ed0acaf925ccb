use std::net::Ipv6Addr;

use xdhcp6_proto::{DhcpOption, MessageType, MessageWriter, Packet, StatusCode};

use super::*;
use crate::population::IAID_NA;

const SERVER_A: [u8; 10] = [0, 3, 0, 1, 0xaa, 0, 0, 0, 0, 0xa];
const SERVER_B: [u8; 10] = [0, 3, 0, 1, 0xbb, 0, 0, 0, 0, 0xb];

fn avalanche(clients: u32, seed: u64) -> Avalanche {
    let mut settings =
        AvalancheSettings::new(Population::new(clients, 0, 0xbe, "::/0".parse().unwrap()));
    settings.expect_range = Some("2001:db8:1::/64".parse().unwrap());
    settings.seed = seed;
    Avalanche::new(settings)
}

/// A server's answer to `request` (an Advertise or a Reply with one address, or none).
fn answer_to(
    request: &[u8],
    msg_type: MessageType,
    server: [u8; 10],
    preference: Option<u8>,
    address: Option<&str>,
) -> Vec<u8> {
    let Packet::Client(m) = Packet::parse(request).unwrap() else {
        panic!("relayed")
    };
    let client_id = m
        .options()
        .find_map(|o| match o.unwrap() {
            DhcpOption::ClientId(d) => Some(d.as_bytes().to_vec()),
            _ => None,
        })
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let mut w = MessageWriter::client(&mut buf, msg_type, m.transaction_id()).unwrap();
    w.client_id(&client_id).unwrap();
    w.server_id(&server).unwrap();
    if let Some(p) = preference {
        w.preference(p).unwrap();
    }
    w.ia_na(IAID_NA, 10, 16, |w| match address {
        Some(a) => w.ia_address(a.parse::<Ipv6Addr>().unwrap(), 20, 30),
        None => w.status_code(StatusCode::NoAddrsAvail, ""),
    })
    .unwrap();
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

fn msg_type(datagram: &[u8]) -> MessageType {
    Packet::parse(datagram).unwrap().msg_type()
}

fn xid(datagram: &[u8]) -> u32 {
    Packet::parse(datagram)
        .map(|p| match p {
            Packet::Client(m) => m.transaction_id(),
            Packet::Relay(_) => 0,
        })
        .unwrap()
}

const MS_NS: u64 = 1_000_000;

/// Runs `a` millisecond by millisecond up to `until_ms` with nobody answering, except that
/// `answer` may answer each datagram sent; returns every (ms, datagram) sent.
fn run(
    a: &mut Avalanche,
    until_ms: u64,
    mut answer: impl FnMut(u64, &[u8]) -> Option<Vec<u8>>,
) -> Vec<(u64, Vec<u8>)> {
    let mut out = Outbox::default();
    let mut sent = Vec::new();
    a.start(0);
    for ms in 0..=until_ms {
        a.poll(ms * MS_NS, &mut out);
        let batch: Vec<Vec<u8>> = out.iter().map(<[u8]>::to_vec).collect();
        out.clear();
        for d in batch {
            if let Some(reply) = answer(ms, &d) {
                a.handle_datagram(ms * MS_NS, &reply);
            }
            sent.push((ms, d));
        }
    }
    sent
}

#[test]
fn client_state_is_compact() {
    assert_eq!(std::mem::size_of::<Client>(), 40);
}

#[test]
fn rfc_timers_pinned() {
    assert_eq!(rand_factor(0), -0.1);
    assert_eq!(rand_factor(1000), 0.0);
    assert_eq!(rand_factor(2000), 0.1);
    assert_eq!(rand_factor(2001), -0.1);
    // The first Solicit RT is strictly above SOL_TIMEOUT whatever RAND is.
    assert_eq!(SOLICIT.first(-0.1, true), 1100);
    assert_eq!(SOLICIT.first(0.0, true), 1001);
    assert_eq!(SOLICIT.first(0.05, true), 1050);
    // A Request's may be below REQ_TIMEOUT.
    assert_eq!(REQUEST.first(-0.1, false), 900);
    // Doubling with RAND, then MRT + RAND*MRT.
    assert_eq!(SOLICIT.next(1000, 0.0), 2000);
    assert_eq!(SOLICIT.next(1000, -0.1), 1900);
    assert_eq!(REQUEST.next(16_000, 0.0), 30_000);
    assert_eq!(REQUEST.next(14_000, 0.0), 28_000);
    assert_eq!(REQUEST.next(20_000, 0.1), 33_000);
    assert_eq!(REQUEST.next(20_000, -0.1), 27_000);
    assert_eq!(SOLICIT.next(3_000_000, 0.1), 3_960_000);
    assert_eq!(REQUEST.mrc, 10);
    assert_eq!(SOLICIT.mrc, 0);
}

#[test]
fn first_solicit_rt_strictly_above_irt() {
    for draw in 0..5000u64 {
        let rt = SOLICIT.first(rand_factor(draw), true);
        assert!((1001..=1100).contains(&rt), "{rt}");
    }
}

/// The Solicit schedule of one client nobody answers: a delay of 0 to 1 s, then gaps that
/// start strictly above 1 s and double within ±10 % until SOL_MAX_RT, one transaction id.
#[test]
fn solicit_schedule_without_answers() {
    let mut a = avalanche(1, 7);
    let sent = run(&mut a, 200_000, |_, _| None);
    assert!(
        sent.iter()
            .all(|(_, d)| msg_type(d) == MessageType::Solicit)
    );
    let times: Vec<u64> = sent.iter().map(|(t, _)| *t).collect();
    assert!(times[0] <= 1000, "{times:?}");
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!((1001..=1100).contains(&gaps[0]), "{gaps:?}");
    for w in gaps.windows(2) {
        let ratio = w[1] as f64 / w[0] as f64;
        assert!((1.89..=2.11).contains(&ratio), "{gaps:?}");
    }
    // 1 + 2 + 4 + ... + 64 s = 127 s < 200 s < 255 s: eight transmissions.
    assert_eq!(sent.len(), 8, "{gaps:?}");
    assert!(sent.iter().all(|(_, d)| xid(d) == xid(&sent[0].1)));
    let c = a.counts();
    assert_eq!((c.solicit, c.solicit_retransmissions), (8, 7));
    // The same seed gives the same schedule; another seed another one.
    let mut again = avalanche(1, 7);
    let same: Vec<u64> = run(&mut again, 200_000, |_, _| None)
        .iter()
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(same, times);
    let mut other = avalanche(1, 8);
    let different: Vec<u64> = run(&mut other, 200_000, |_, _| None)
        .iter()
        .map(|(t, _)| *t)
        .collect();
    assert_ne!(different, times);
}

/// Solicit retransmissions level off at SOL_MAX_RT (3,600 s ± 10 %), past the timer wheel's
/// horizon.
#[test]
fn solicit_rt_levels_off_at_sol_max_rt() {
    let mut a = avalanche(1, 3);
    let sent = run(&mut a, 16_000_000, |_, _| None);
    let times: Vec<u64> = sent.iter().map(|(t, _)| *t).collect();
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 14, "{gaps:?}");
    assert!(gaps.iter().all(|&g| g <= 3_960_000), "{gaps:?}");
    assert!(
        gaps[gaps.len() - 3..]
            .iter()
            .all(|g| (3_240_000..=3_960_000).contains(g)),
        "{gaps:?}"
    );
}

/// A Request nobody answers goes out REQ_MAX_RC (10) times, gaps doubling from about 1 s up
/// to REQ_MAX_RT (30 s ± 10 %), then the client Solicits again with a new transaction id.
#[test]
fn request_gives_up_after_ten_and_solicits_again() {
    let mut a = avalanche(1, 11);
    let mut answered = false;
    let sent = run(&mut a, 400_000, |_, d| {
        if msg_type(d) == MessageType::Solicit && !answered {
            answered = true;
            return Some(answer_to(
                d,
                MessageType::Advertise,
                SERVER_A,
                Some(255),
                Some("2001:db8:1::5"),
            ));
        }
        None
    });
    let kinds: Vec<MessageType> = sent.iter().map(|(_, d)| msg_type(d)).collect();
    assert_eq!(kinds[0], MessageType::Solicit);
    assert!(kinds[1..11].iter().all(|&k| k == MessageType::Request));
    assert_eq!(kinds[11], MessageType::Solicit, "{kinds:?}");
    let request_times: Vec<u64> = sent[1..12].iter().map(|(t, _)| *t).collect();
    // Preference 255: the Request leaves at once (the next millisecond's poll).
    assert!(request_times[0] - sent[0].0 <= 1);
    let gaps: Vec<u64> = request_times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!((900..=1100).contains(&gaps[0]), "{gaps:?}");
    assert!(
        gaps[6..].iter().all(|g| (27_000..=33_000).contains(g)),
        "{gaps:?}"
    );
    assert_ne!(xid(&sent[11].1), xid(&sent[0].1));
    assert!(sent[1..11].iter().all(|(_, d)| xid(d) == xid(&sent[1].1)));
    let c = a.counts();
    assert_eq!(
        (c.request, c.request_retransmissions, c.request_gave_up),
        (10, 9, 1)
    );
}

/// Without preference 255 the client waits out the first RT before it takes an Advertise;
/// the Reply binds it.
#[test]
fn waits_out_the_first_rt_then_binds() {
    let mut a = avalanche(1, 5);
    let sent = run(&mut a, 5_000, |_, d| match msg_type(d) {
        MessageType::Solicit => Some(answer_to(
            d,
            MessageType::Advertise,
            SERVER_A,
            Some(1),
            Some("2001:db8:1::a"),
        )),
        MessageType::Request => Some(answer_to(
            d,
            MessageType::Reply,
            SERVER_A,
            None,
            Some("2001:db8:1::a"),
        )),
        _ => None,
    });
    assert_eq!(sent.len(), 2);
    assert_eq!(msg_type(&sent[1].1), MessageType::Request);
    let first_rt = sent[1].0 - sent[0].0;
    assert!((1000..=1100).contains(&first_rt), "{first_rt}");
    assert_eq!(a.bound(), 1);
    assert_eq!(a.bound_at_ms(0), Some(sent[1].0 as u32));
}

#[test]
fn highest_preference_wins_and_reply_binds() {
    let mut a = avalanche(1, 5);
    let mut out = Outbox::default();
    a.start(0);
    let mut t = 0;
    let solicit = loop {
        a.poll(t * MS_NS, &mut out);
        if let Some(d) = out.iter().next() {
            break d.to_vec();
        }
        t += 1;
    };
    out.clear();
    let adv = |server, pref, addr| {
        answer_to(
            &solicit,
            MessageType::Advertise,
            server,
            Some(pref),
            Some(addr),
        )
    };
    a.handle_datagram(t * MS_NS, &adv(SERVER_A, 1, "2001:db8:1::a"));
    a.handle_datagram(t * MS_NS, &adv(SERVER_B, 7, "2001:db8:1::b"));
    a.handle_datagram(t * MS_NS, &adv(SERVER_A, 3, "2001:db8:1::c"));
    // Nothing before the first RT ends.
    for ms in t..t + 1000 {
        a.poll(ms * MS_NS, &mut out);
        assert!(out.is_empty());
    }
    let mut request = None;
    for ms in t + 1000..t + 1200 {
        a.poll(ms * MS_NS, &mut out);
        if let Some(d) = out.iter().next() {
            request = Some((ms, d.to_vec()));
            break;
        }
    }
    let (ms, request) = request.expect("a Request after the first RT");
    assert_eq!(msg_type(&request), MessageType::Request);
    let parsed = Reply::parse(&request).unwrap();
    assert_eq!(parsed.server_id, Some(&SERVER_B[..]));
    let named: Vec<Ipv6Addr> = parsed.na_leases().map(|l| l.lease).collect();
    assert_eq!(named, ["2001:db8:1::b".parse::<Ipv6Addr>().unwrap()]);
    // A Reply without an address sends the client back to Solicit; one with binds it.
    a.handle_datagram(
        ms * MS_NS,
        &answer_to(&request, MessageType::Reply, SERVER_B, None, None),
    );
    assert_eq!(a.counts().refused, 1);
    assert_eq!(a.bound(), 0);
    out.clear();
    a.poll((ms + 1) * MS_NS, &mut out);
    let solicit = out.iter().next().expect("Solicit again").to_vec();
    assert_eq!(msg_type(&solicit), MessageType::Solicit);
    a.handle_datagram(
        (ms + 2) * MS_NS,
        &answer_to(
            &solicit,
            MessageType::Advertise,
            SERVER_A,
            Some(255),
            Some("2001:db8:1::d"),
        ),
    );
    out.clear();
    a.poll((ms + 3) * MS_NS, &mut out);
    let request = out.iter().next().expect("Request").to_vec();
    a.handle_datagram(
        (ms + 4) * MS_NS,
        &answer_to(
            &request,
            MessageType::Reply,
            SERVER_A,
            None,
            Some("2001:db8:1::d"),
        ),
    );
    assert_eq!(a.bound(), 1);
    assert_eq!(a.bound_at_ms(0), Some((ms + 4) as u32));
    assert!(a.is_finished((ms + 4) * MS_NS));
    let summary = a.summary((ms + 4) * MS_NS);
    assert_eq!(summary.all_bound_s, Some((ms + 4) as f64 / 1000.0));
    assert_eq!(summary.bound_p50_s, summary.bound_p100_s);
    assert_eq!(summary.servers, 2);
    assert_eq!(summary.total_failures, 0);
}

/// The generator's cap: 100 messages/s lets about 100 of 1,000 first Solicits out per second.
#[test]
fn send_cap_holds_messages_back() {
    let mut settings =
        AvalancheSettings::new(Population::new(1000, 0, 0xbe, "::/0".parse().unwrap()));
    settings.max_rate = 100.0;
    let mut a = Avalanche::new(settings);
    let sent = run(&mut a, 2_000, |_, _| None);
    // 2 s at 100/s plus a burst of 1.
    assert!((199..=202).contains(&sent.len()), "{}", sent.len());
    let summary = a.summary(2_000 * MS_NS);
    assert!(summary.held_by_send_cap > 0);
    assert!(summary.max_send_cap_lag_ms > 900);
    // Without the cap all 1,000 leave within SOL_MAX_DELAY.
    let mut free = avalanche(1000, 0);
    assert_eq!(run(&mut free, 1_000, |_, _| None).len(), 1000);
}
