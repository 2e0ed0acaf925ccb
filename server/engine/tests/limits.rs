//! Limits on new bindings and Declines, tried as an attacker would: floods of Requests
//! without a Solicit from one relay, one MAC address asking for the whole pool, Declines of
//! prefixes and Decline floods; and a legitimate population that keeps being served meanwhile,
//! on a virtual clock. Test names say the attack; outcomes are counts, never timings.

use std::net::Ipv6Addr;

use xdhcp6_engine::proto::{MessageType, StatusCode};
use xdhcp6_engine::table::{EventKind, IaKind, LeaseState};
use xdhcp6_engine::testing::{Client, Relay, Server, ip};
use xdhcp6_engine::{DropReason, Peer, Refusal};

/// One link for relayed clients (its pool prefix selects it) with room for a million
/// addresses and 4,096 /56 prefixes, and one for direct clients.
const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:0c"
salt = "limits"
decline-probation = 600
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "relayed"

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/44"
delegated-length = 56

[[link]]
name = "direct"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:2::/64"

[[link.pd-pool]]
prefix = "2001:db8:200::/48"
delegated-length = 56
"#;

fn server(limits: &str) -> Server {
    let toml = BASE.replacen("[server]\n", &format!("[server]\n{limits}\n"), 1);
    let mut server = Server::new(&toml);
    server.link = server.engine.link_for_interface("eth1", None);
    server
}

/// A client with a random-looking DUID-UUID, as a flooder makes them up.
fn made_up(n: u64) -> Client {
    let mut duid = vec![0, 4];
    duid.extend_from_slice(&n.to_be_bytes());
    duid.extend_from_slice(&(n ^ 0x5a5a_5a5a_5a5a_5a5a).to_be_bytes());
    Client::with_duid(&duid)
}

fn refused(server: &Server, refusal: Refusal) -> u64 {
    server
        .engine
        .limit_refusals()
        .find(|(r, _)| *r == refusal)
        .map_or(0, |(_, n)| n)
}

fn bound_leases(server: &Server) -> usize {
    server.engine.bound_leases(None) as usize
}

/// A Request without a Solicit, for one new IA_NA.
fn request_out_of_nowhere(server: &mut Server, client: &Client) -> Result<bool, DropReason> {
    let duid = server.duid();
    server
        .handle(&client.request(&duid).ia_na(1, &[]))
        .map(|reply| !reply.ia_na(1).live_addrs().is_empty())
}

#[test]
fn request_flood_without_solicit_from_one_relay_is_rate_limited() {
    let mut server = server("relay-binding-rate = 10\nrelay-binding-burst = 20");
    let flooder = Relay::new(ip("2001:db8:1::f"));
    let honest = Relay::new(ip("2001:db8:1::1"));
    let (mut flood_bound, mut flood_dropped, mut honest_bound) = (0, 0, 0);
    for second in 0..30u64 {
        // The flood: 10 times the relay's rate, every one a new DUID.
        for n in 0..100 {
            let client = made_up(second * 1000 + n).via(flooder.clone());
            match request_out_of_nowhere(&mut server, &client) {
                Ok(true) => flood_bound += 1,
                Ok(false) => {}
                Err(reason) => {
                    assert_eq!(reason, DropReason::RateLimited);
                    flood_dropped += 1;
                }
            }
        }
        // Another relay's clients, well within their rate.
        for n in 0..5 {
            let client = Client::new(second * 10 + n).via(honest.clone());
            if request_out_of_nowhere(&mut server, &client) == Ok(true) {
                honest_bound += 1;
            }
        }
        server.advance(1);
    }
    // Burst plus rate: 20 + 29 * 10.
    assert_eq!(flood_bound, 310, "the flooding relay binds at its rate");
    assert_eq!(flood_dropped, 3000 - 310);
    assert_eq!(
        honest_bound, 150,
        "every client of the other relay is served"
    );
    assert_eq!(bound_leases(&server), 460);
    assert_eq!(refused(&server, Refusal::RelayRate), 3000 - 310);
    assert_eq!(refused(&server, Refusal::LinkRate), 0);
}

#[test]
fn one_mac_cannot_take_the_whole_pool() {
    // Direct clients: one host makes up DUIDs, slowly enough for every rate.
    let mut server = server("");
    server.peer = Peer {
        address: Some(ip("fe80::bad")),
        mac: Some([2, 0, 0, 0, 0xba, 0xd0]),
    };
    let mut delegated = 0;
    for n in 0..256 {
        let advertise = server.send(&made_up(n).solicit().ia_pd(1, &[]));
        if advertise.ia_pd(1).prefixes.is_empty() {
            assert_eq!(advertise.ia_pd(1).status_code(), StatusCode::NoPrefixAvail);
            continue;
        }
        let (prefix, len) = server.bind_prefix(&made_up(n), 1);
        assert_eq!(len, 56);
        assert!(!prefix.is_unspecified());
        delegated += 1;
        server.advance(1);
    }
    // The default cap: 32 bindings per MAC address; the pool (256 /56s) keeps the rest.
    assert_eq!(delegated, 32);
    assert_eq!(refused(&server, Refusal::MacMaxBindings), 256 - 32);
    // Another host still gets one.
    server.peer.mac = Some([2, 0, 0, 0, 0, 1]);
    server.peer.address = Some(ip("fe80::1"));
    let (prefix, _) = server.bind_prefix(&Client::new(1), 1);
    assert!(!prefix.is_unspecified());
    // A Request without a Solicit is capped alike: NoPrefixAvail.
    server.peer.mac = Some([2, 0, 0, 0, 0xba, 0xd0]);
    let duid = server.duid();
    let reply = server.send(&made_up(999).request(&duid).ia_pd(1, &[]));
    assert_eq!(reply.ia_pd(1).status_code(), StatusCode::NoPrefixAvail);
    // Once one of its prefixes is released, the host may have one more.
    let (first, len) = {
        let mut events = server.take_events();
        events.retain(|event| event.kind == EventKind::Bound);
        let lease = events[0].record.lease;
        (lease.ip(), lease.prefix_len)
    };
    let _ = first;
    let owner = server
        .engine
        .table()
        .lease_at(u128::from(first), IaKind::Pd)
        .expect("the first prefix is bound");
    let client = Client::with_duid(owner.duid.as_bytes());
    let released = server.send(&client.release(&duid).ia_pd(1, &[(first, len)]));
    assert_eq!(released.status_code(), StatusCode::Success);
    let (again, _) = server.bind_prefix(&made_up(1000), 1);
    assert!(!again.is_unspecified());
}

#[test]
fn relayed_clients_of_one_mac_are_capped_by_rfc6939_link_layer_address() {
    let mut server = server("mac-max-bindings = 4");
    let relay = Relay::new(ip("2001:db8:1::1")).link_layer(1, &[2, 0, 0, 0, 0, 7]);
    let bound = (0..10)
        .filter(|n| {
            request_out_of_nowhere(&mut server, &made_up(*n).via(relay.clone())) == Ok(true)
        })
        .count();
    assert_eq!(bound, 4);
}

#[test]
fn max_leases_refuses_new_bindings_but_renews_existing() {
    let mut server = server("max-leases = 3");
    let clients: Vec<Client> = (0..4).map(Client::new).collect();
    let addrs: Vec<Ipv6Addr> = clients[..3]
        .iter()
        .map(|client| server.bind_address(client, 1))
        .collect();
    // The fourth is told at once, in the Advertise and in the Reply.
    let advertise = server.send(&clients[3].solicit().ia_na(1, &[]));
    assert_eq!(advertise.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
    let duid = server.duid();
    let reply = server.send(&clients[3].request(&duid).ia_na(1, &[]));
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
    assert_eq!(refused(&server, Refusal::MaxLeases), 2);
    // Those bound keep their addresses: Renew, and a repeated Request.
    server.advance(100);
    let renewed = server.send(&clients[0].renew(&duid).ia_na(1, &[addrs[0]]));
    assert_eq!(renewed.ia_na(1).live_addrs(), vec![addrs[0]]);
    let again = server.send(&clients[1].request(&duid).ia_na(1, &[addrs[1]]));
    assert_eq!(again.ia_na(1).live_addrs(), vec![addrs[1]]);
    assert_eq!(bound_leases(&server), 3);
    // A Release makes room.
    server.send(&clients[2].release(&duid).ia_na(1, &[addrs[2]]));
    assert_eq!(bound_leases(&server), 2);
    assert!(!server.bind_address(&clients[3], 1).is_unspecified());
    // So does expiry.
    server.advance(400);
    server.handle_timeout();
    assert_eq!(bound_leases(&server), 0);
}

#[test]
fn link_max_leases_caps_one_link_only() {
    let toml = BASE.replacen(
        "name = \"direct\"\n",
        "name = \"direct\"\nmax-leases = 2\n",
        1,
    );
    let mut server = Server::new(&toml);
    server.link = server.engine.link_for_interface("eth1", None);
    let bound = (0..5)
        .filter(|n| {
            let reply = server.send(&Client::new(*n).solicit().ia_na(1, &[]));
            !reply.ia_na(1).live_addrs().is_empty() && {
                server.bind_address(&Client::new(*n), 1);
                true
            }
        })
        .count();
    assert_eq!(bound, 2);
    assert_eq!(refused(&server, Refusal::LinkMaxLeases), 3);
    // The other link is not capped.
    let relay = Relay::new(ip("2001:db8:1::1"));
    for n in 10..15 {
        assert_eq!(
            request_out_of_nowhere(&mut server, &Client::new(n).via(relay.clone())),
            Ok(true)
        );
    }
}

#[test]
fn decline_of_a_prefix_does_not_quarantine_it() {
    let mut server = server("");
    let client = Client::new(7);
    let (prefix, len) = server.bind_prefix(&client, 1);
    server.take_events();
    let duid = server.duid();
    let reply = server.send(&client.decline(&duid).ia_pd(1, &[(prefix, len)]));
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert_eq!(reply.ia_pd(1).status_code(), StatusCode::UnspecFail);
    assert!(
        !server.take_event_kinds().contains(&EventKind::Declined),
        "a prefix is never quarantined"
    );
    let lease = server
        .engine
        .table()
        .lease_at(u128::from(prefix), IaKind::Pd)
        .expect("the prefix stays delegated");
    assert_eq!(lease.lease.state, LeaseState::Bound);
    // The client keeps it.
    let renewed = server.send(&client.renew(&duid).ia_pd(1, &[(prefix, len)]));
    assert_eq!(renewed.ia_pd(1).prefix(), (prefix, len));
    // An address in the same Decline is declined as before.
    let addr = server.bind_address(&client, 2);
    let reply = server.send(
        &client
            .decline(&duid)
            .ia_na(2, &[addr])
            .ia_pd(1, &[(prefix, len)]),
    );
    assert_eq!(reply.ia_na(2).status_code(), StatusCode::Success);
    assert_eq!(reply.ia_pd(1).status_code(), StatusCode::UnspecFail);
    assert_eq!(
        server
            .engine
            .table()
            .lease_at(u128::from(addr), IaKind::Na)
            .map(|record| record.lease.state),
        Some(LeaseState::Declined)
    );
}

#[test]
fn decline_flood_from_one_client_is_limited() {
    let mut server = server("");
    let client = Client::new(9);
    let duid = server.duid();
    let mut declined = 0;
    let mut kept = Vec::new();
    for iaid in 0..20 {
        let addr = server.bind_address(&client, iaid);
        match server.handle(&client.decline(&duid).ia_na(iaid, &[addr])) {
            Ok(reply) => {
                assert_eq!(reply.ia_na(iaid).status_code(), StatusCode::Success);
                declined += 1;
            }
            Err(reason) => {
                assert_eq!(reason, DropReason::DeclineLimited);
                kept.push(addr);
            }
        }
    }
    // The default: 4 Declines per decline-probation.
    assert_eq!(declined, 4);
    assert_eq!(refused(&server, Refusal::Declines), 16);
    // Addresses whose Decline was dropped stay the client's, not quarantined.
    for addr in &kept {
        let record = server
            .engine
            .table()
            .lease_at(u128::from(*addr), IaKind::Na)
            .expect("still bound");
        assert_eq!(record.lease.state, LeaseState::Bound);
    }
    // The budget comes back over the probation.
    server.advance(600);
    let addr = server.bind_address(&client, 100);
    assert!(
        server
            .handle(&client.decline(&duid).ia_na(100, &[addr]))
            .is_ok()
    );
}

/// One client of a simulated population, retransmitting as RFC 9915 §15 says: each RT is
/// twice the one before, plus or minus a tenth (here a fixed pseudo-random one per client and
/// try), up to SOL_MAX_RT (3,600 s) for a Solicit; a Request goes again from REQ_TIMEOUT
/// (1 s) up to REQ_MAX_RT (30 s), REQ_MAX_RC (10) times, then the client solicits anew.
struct Booting {
    client: Client,
    n: u64,
    /// The offered address while the client is sending Requests.
    offered: Option<Vec<Ipv6Addr>>,
    requests: u32,
    tries: u64,
    next: f64,
    rt: f64,
    bound: bool,
}

impl Booting {
    /// The next RT after `self.rt`, at most `max`.
    fn back_off(&mut self, max: f64) {
        self.tries += 1;
        let x = (self.n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ self.tries.wrapping_mul(0xff51_afd7_ed55_8ccd))
        .rotate_left(29);
        let rand = (x % 2001) as f64 / 10_000.0 - 0.1;
        self.rt = (2.0 * self.rt + rand * self.rt).min(max);
        self.next += self.rt;
    }
}

/// Runs `clients` (Solicit, then Request) for `seconds`, with the `flood` each second (it
/// returns how many new bindings it got); returns the seconds until the last client was bound
/// and the flood's bindings.
fn boot(
    server: &mut Server,
    clients: &mut [Booting],
    flood: &mut dyn FnMut(&mut Server, u32) -> usize,
    seconds: u32,
) -> (Option<u32>, usize) {
    let duid = server.duid();
    let mut flooded = 0;
    let mut done_at = None;
    for second in 0..seconds {
        flooded += flood(server, second);
        let now = f64::from(second);
        for booting in clients.iter_mut().filter(|b| !b.bound && b.next <= now) {
            match booting.offered.take() {
                None => {
                    let offered = server
                        .handle(&booting.client.solicit().ia_na(1, &[]))
                        .ok()
                        .map(|advertise| advertise.ia_na(1).live_addrs())
                        .filter(|offered| !offered.is_empty());
                    match offered {
                        Some(offered) => {
                            // The Request goes at once, with its own retransmissions.
                            booting.offered = Some(offered);
                            booting.requests = 0;
                            booting.rt = 1.0;
                            booting.next = now;
                        }
                        None => booting.back_off(3600.0),
                    }
                }
                Some(offered) => {
                    let reply = server.handle(&booting.client.request(&duid).ia_na(1, &offered));
                    if reply.is_ok_and(|reply| !reply.ia_na(1).live_addrs().is_empty()) {
                        booting.bound = true;
                        continue;
                    }
                    booting.requests += 1;
                    if booting.requests < 10 {
                        booting.offered = Some(offered);
                        booting.back_off(30.0);
                    } else {
                        booting.rt = 1.0;
                        booting.back_off(3600.0);
                    }
                }
            }
        }
        // A client whose Advertise came in this second sends its Request in the same one.
        for booting in clients
            .iter_mut()
            .filter(|b| !b.bound && b.offered.is_some() && b.next <= now && b.requests == 0)
        {
            let offered = booting.offered.clone().unwrap_or_default();
            let reply = server.handle(&booting.client.request(&duid).ia_na(1, &offered));
            if reply.is_ok_and(|reply| !reply.ia_na(1).live_addrs().is_empty()) {
                booting.bound = true;
            } else {
                booting.requests = 1;
                booting.back_off(30.0);
            }
        }
        if done_at.is_none() && clients.iter().all(|b| b.bound) {
            done_at = Some(second);
        }
        server.advance(1);
    }
    (done_at, flooded)
}

fn population(relay: &Relay, first: u64, count: u64) -> Vec<Booting> {
    (first..first + count)
        .map(|n| Booting {
            client: Client::new(n).via(relay.clone().link_layer(1, &n.to_be_bytes()[2..])),
            n,
            offered: None,
            requests: 0,
            tries: 0,
            next: 0.0,
            rt: 1.0,
            bound: false,
        })
        .collect()
}

#[test]
fn legitimate_population_keeps_99_percent_while_one_relay_floods_at_ten_times_its_rate() {
    // Default limits, scaled down tenfold for the relay so that the test stays small.
    let mut server = server("relay-binding-rate = 100\nrelay-binding-burst = 1000");
    let honest: Vec<Relay> = (1..=10u16)
        .map(|i| Relay::new(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i)))
        .collect();
    let mut clients = Vec::new();
    for (i, relay) in honest.iter().enumerate() {
        clients.extend(population(relay, i as u64 * 1000, 300));
    }
    let flooder = Relay::new(ip("2001:db8:1::bad"));
    let mut n = 1_000_000;
    let mut flood = |server: &mut Server, _second: u32| {
        (0..1000)
            .filter(|_| {
                n += 1;
                request_out_of_nowhere(server, &made_up(n).via(flooder.clone())) == Ok(true)
            })
            .count()
    };
    let (_, flooded) = boot(&mut server, &mut clients, &mut flood, 30);
    let served = clients.iter().filter(|b| b.bound).count();
    assert!(
        served * 100 >= clients.len() * 99,
        "{served} of {} legitimate clients bound",
        clients.len()
    );
    // The flooder got its burst and its rate, nothing more: 1,000 + 29 * 100.
    assert!(flooded <= 3900, "the flood bound {flooded}");
    assert!(refused(&server, Refusal::RelayRate) >= 30_000 - 3900);
}

#[test]
fn one_mac_flooding_at_ten_times_its_rate_leaves_other_clients_served() {
    let mut server = server("");
    let relay = Relay::new(ip("2001:db8:1::1"));
    let mut clients = population(&relay, 0, 500);
    let bad = relay.clone().link_layer(1, &[2, 0, 0, 0, 0xba, 0xd0]);
    let mut n = 1_000_000;
    let mut flood = |server: &mut Server, _second: u32| {
        (0..40)
            .filter(|_| {
                n += 1;
                request_out_of_nowhere(server, &made_up(n).via(bad.clone())) == Ok(true)
            })
            .count()
    };
    let (_, flooded) = boot(&mut server, &mut clients, &mut flood, 30);
    // Every client, unless the process key put one in the flooder's slot (about 1 run in 130):
    // that one shares the flooder's budget.
    let served = clients.iter().filter(|b| b.bound).count();
    assert!(served >= 499, "{served} of 500 bound");
    // Its cap: 32 bindings.
    assert!(flooded <= 32, "the flood bound {flooded}");
}

#[test]
fn cmts_reboot_of_100000_modems_is_slowed_never_stalled() {
    // Default limits: one relay, every modem reported by its MAC (RFC 6939).
    let mut server = server("");
    let cmts = Relay::new(ip("2001:db8:1::1"));
    let mut modems = population(&cmts, 0, 100_000);
    let (done, _) = boot(&mut server, &mut modems, &mut |_, _| 0, 900);
    assert_eq!(modems.iter().filter(|b| b.bound).count(), 100_000);
    // 10,000 at once, then 1,000 a second; the rest is the clients' backoff.
    let seconds = done.unwrap_or(u32::MAX);
    eprintln!("100,000 modems bound within {seconds} s of virtual time");
    assert!(seconds < 900);
    assert!(refused(&server, Refusal::RelayRate) > 0);
}

#[test]
fn limits_are_read_defaulted_and_round_trip() {
    use xdhcp6_engine::config::{Config, LinkLimits, ServerLimits};
    let defaults = Config::from_toml_str(BASE, "limits.toml").expect("valid");
    assert_eq!(defaults.server.limits, ServerLimits::default());
    assert_eq!(defaults.links[0].limits, LinkLimits::default());
    let toml = BASE
        .replacen(
            "[server]\n",
            "[server]\nmax-leases = 100\nrelay-max-bindings = 50\nrelay-binding-rate = 7\n\
             mac-max-bindings = 0\nmac-binding-rate = 2\nmac-binding-burst = 3\n\
             decline-limit = 0\n",
            1,
        )
        .replacen(
            "name = \"direct\"\n",
            "name = \"direct\"\nmax-leases = 10\nbinding-rate = 20000\n",
            1,
        );
    let config = Config::from_toml_str(&toml, "limits.toml").expect("valid");
    let limits = config.server.limits;
    assert_eq!(limits.max_leases, 100);
    assert_eq!(limits.relay.max_bindings, 50);
    assert_eq!(limits.relay.rate.per_second, 7);
    // A burst not given stays the default (10,000), never below one second's worth.
    assert_eq!(limits.relay.rate.burst, 10_000);
    assert_eq!(limits.mac.rate.burst, 3);
    assert_eq!(limits.decline_limit, 0);
    assert_eq!(config.links[1].limits.max_leases, 10);
    assert_eq!(config.links[1].limits.rate.burst, 100_000);
    assert_eq!(config.links[1].limits.rate.per_second, 20_000);
    let text = config.to_toml_string();
    let again = Config::from_toml_str(&text, "again.toml").expect("round trip");
    assert_eq!(again, config);
}

#[test]
fn a_rate_without_a_burst_is_an_error_naming_the_field() {
    use xdhcp6_engine::config::Config;
    let cases = [
        (
            BASE.replacen("[server]\n", "[server]\nrelay-binding-burst = 0\n", 1),
            "server.relay-binding-burst",
        ),
        (
            BASE.replacen("[server]\n", "[server]\nmac-binding-burst = 4000001\n", 1),
            "server.mac-binding-burst",
        ),
        (
            BASE.replacen(
                "name = \"direct\"\n",
                "name = \"direct\"\nbinding-burst = 0\n",
                1,
            ),
            "link[1].binding-burst",
        ),
    ];
    for (toml, field) in cases {
        match Config::from_toml_str(&toml, "limits.toml") {
            Ok(_) => panic!("accepted {field}"),
            Err(error) => assert_eq!(error.field(), field, "{error}"),
        }
    }
    // A burst of 0 is fine where the rate is off.
    let off = BASE.replacen(
        "[server]\n",
        "[server]\nrelay-binding-rate = 0\nrelay-binding-burst = 0\n",
        1,
    );
    assert!(Config::from_toml_str(&off, "limits.toml").is_ok());
}

#[test]
fn max_leases_counts_the_leases_of_a_table_that_outlived_a_reload() {
    let mut first = server("max-leases = 2");
    first.bind_address(&Client::new(1), 1);
    first.bind_address(&Client::new(2), 1);
    let config = std::sync::Arc::new(first.engine.config().clone());
    let mut second = Server::with_table(config, first.engine.table().clone());
    second.link = first.link;
    second.now = first.now;
    assert_eq!(bound_leases(&second), 2);
    let reply = second.send(&Client::new(3).solicit().ia_na(1, &[]));
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
}
