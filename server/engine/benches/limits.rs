//! The limits under attack, on a virtual clock: a legitimate population (clients behind ten
//! relays, Solicit then Request, retransmitting as RFC 9915 §15 says) boots while one more
//! relay floods Requests without Solicit at ten times its `relay-binding-rate`, all with the
//! default limits; then a CMTS with 100,000 modems that all reboot at once. Prints the
//! legitimate success %, what the flood got, the refusals by limit and the virtual seconds.
//!
//! `cargo bench -p xdhcp6-engine --bench limits`

use std::net::Ipv6Addr;
use std::time::Instant;

use xdhcp6_engine::config::ServerLimits;
use xdhcp6_engine::testing::{Client, Relay, Server, ip};

const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:0d"
salt = "limits-bench"
expected-leases = 1000000

[[link]]
name = "relayed"

[[link.pool]]
prefix = "2001:db8:1::/64"
"#;

/// One client of the population and where it is in its RFC 9915 §15 retransmissions.
struct Booting {
    client: Client,
    n: u64,
    offered: Option<Vec<Ipv6Addr>>,
    requests: u32,
    tries: u64,
    next: f64,
    rt: f64,
    bound: bool,
}

impl Booting {
    fn new(relay: &Relay, n: u64) -> Self {
        Self {
            client: Client::new(n).via(relay.clone().link_layer(1, &n.to_be_bytes()[2..])),
            n,
            offered: None,
            requests: 0,
            tries: 0,
            next: 0.0,
            rt: 1.0,
            bound: false,
        }
    }

    /// The next RT: twice the last, plus or minus a tenth, at most `max`.
    fn back_off(&mut self, max: f64) {
        self.tries += 1;
        let x = (self.n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ self.tries.wrapping_mul(0xff51_afd7_ed55_8ccd))
        .rotate_left(29);
        let rand = (x % 2001) as f64 / 10_000.0 - 0.1;
        self.rt = (2.0 * self.rt + rand * self.rt).min(max);
        self.next += self.rt;
    }

    /// One due transmission at `now`.
    fn step(&mut self, server: &mut Server, duid: &[u8], now: f64) {
        match self.offered.take() {
            None => {
                let offered = server
                    .handle(&self.client.solicit().ia_na(1, &[]))
                    .ok()
                    .map(|advertise| advertise.ia_na(1).live_addrs())
                    .filter(|offered| !offered.is_empty());
                match offered {
                    Some(offered) => {
                        self.offered = Some(offered);
                        self.requests = 0;
                        self.rt = 1.0;
                        self.next = now;
                        self.step(server, duid, now);
                    }
                    None => self.back_off(3600.0),
                }
            }
            Some(offered) => {
                let reply = server.handle(&self.client.request(duid).ia_na(1, &offered));
                if reply.is_ok_and(|reply| !reply.ia_na(1).live_addrs().is_empty()) {
                    self.bound = true;
                    return;
                }
                self.requests += 1;
                if self.requests < 10 {
                    self.offered = Some(offered);
                    self.back_off(30.0);
                } else {
                    self.rt = 1.0;
                    self.back_off(3600.0);
                }
            }
        }
    }
}

/// Runs the population with `flood` Requests a second from `flooder` for `seconds`; returns
/// the second the last client was bound and the flood's bindings.
fn run(
    server: &mut Server,
    clients: &mut [Booting],
    flooder: &Relay,
    flood: u64,
    seconds: u32,
) -> (Option<u32>, u64) {
    let duid = server.duid();
    let mut done = None;
    let mut flood_bound = 0;
    let mut n: u64 = 1 << 40;
    for second in 0..seconds {
        for _ in 0..flood {
            n += 1;
            let mut made_up = vec![0, 4];
            made_up.extend_from_slice(&n.to_be_bytes());
            made_up.extend_from_slice(&(!n).to_be_bytes());
            let client = Client::with_duid(&made_up).via(flooder.clone());
            if server
                .handle(&client.request(&duid).ia_na(1, &[]))
                .is_ok_and(|reply| !reply.ia_na(1).live_addrs().is_empty())
            {
                flood_bound += 1;
            }
        }
        let now = f64::from(second);
        for booting in clients.iter_mut().filter(|b| !b.bound && b.next <= now) {
            booting.step(server, &duid, now);
        }
        if done.is_none() && clients.iter().all(|b| b.bound) {
            done = Some(second);
        }
        server.advance(1);
    }
    (done, flood_bound)
}

fn refusals(server: &Server) -> String {
    server
        .engine
        .limit_refusals()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{}={n}", r.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let limits = ServerLimits::default();
    println!(
        "limits: the defaults: max-leases {}, per relay {}/s burst {} cap {}, per MAC {}/s burst \
         {} cap {}, per link 20000/s burst 100000",
        limits.max_leases,
        limits.relay.rate.per_second,
        limits.relay.rate.burst,
        limits.relay.max_bindings,
        limits.mac.rate.per_second,
        limits.mac.rate.burst,
        limits.mac.max_bindings,
    );

    let started = Instant::now();
    let mut server = Server::new(CONFIG);
    let relays: Vec<Relay> = (1..=10u16)
        .map(|i| Relay::new(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i)))
        .collect();
    let mut clients: Vec<Booting> = (0..100_000u64)
        .map(|n| Booting::new(&relays[(n % 10) as usize], n))
        .collect();
    let flooder = Relay::new(ip("2001:db8:1::bad"));
    let flood = 10 * u64::from(limits.relay.rate.per_second);
    let seconds = 120;
    let (done, flood_bound) = run(&mut server, &mut clients, &flooder, flood, seconds);
    let served = clients.iter().filter(|b| b.bound).count();
    println!(
        "flood: 100,000 clients behind 10 relays boot while relay 2001:db8:1::bad sends {flood} \
         Requests without Solicit a second for {seconds} s"
    );
    println!(
        "  legitimate success: {:.2} % ({served} of {}), all bound after {} s",
        100.0 * served as f64 / clients.len() as f64,
        clients.len(),
        done.map_or("-".to_owned(), |s| s.to_string())
    );
    println!(
        "  flood: {} of {} bound ({:.2} %); refused: {}",
        flood_bound,
        flood * u64::from(seconds),
        100.0 * flood_bound as f64 / (flood * u64::from(seconds)) as f64,
        refusals(&server)
    );
    println!("  wall time {:.1?}", started.elapsed());

    let started = Instant::now();
    let mut server = Server::new(CONFIG);
    let cmts = Relay::new(ip("2001:db8:1::1"));
    let mut modems: Vec<Booting> = (0..100_000u64).map(|n| Booting::new(&cmts, n)).collect();
    let (done, _) = run(&mut server, &mut modems, &cmts, 0, 900);
    println!("cmts: 100,000 modems behind one relay reboot at once");
    println!(
        "  bound: {} of 100000, all after {} s of virtual time; refused: {}",
        modems.iter().filter(|b| b.bound).count(),
        done.map_or("-".to_owned(), |s| s.to_string()),
        refusals(&server)
    );
    println!("  wall time {:.1?}", started.elapsed());
}
