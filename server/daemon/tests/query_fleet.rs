//! `xdhcp6d query` across an RFC 6853 set: two and three `xdhcp6d` on one link (each in its
//! own namespace, configured by the files in `examples/` with the lab's interface, longer
//! lifetimes and the requestor's prefix in `[leasequery] requestors`), one client bound to
//! each server by a real Solicit / Advertise / Request / Reply exchange (a Request naming
//! that server), then the first server is SIGKILLed and `xdhcp6d query` runs as a
//! subprocess on the clients' link:
//!
//! - an address a live server holds: found there (exit 0), the dead server named as not
//!   answering;
//! - the address the dead server held: not found (exit 4); split and unique models: the
//!   layout of `--configs` says the dead server would hold it and is the one not answering;
//!   identical model: every server may hold it;
//! - by client DUID, and by delegated prefix: found on the live server that holds it.
//!
//! ```text
//!  server a ─┐
//!  server b ─┼─ switch ─ client and requestor (2001:db8:f::99)
//!  server c ─┘ (bridge)
//! ```
//!
//! Needs root and network namespaces; `cargo xtask test` runs it with `--include-ignored
//! --test-threads=1`. The last test needs neither: the command's exit status against fake
//! servers on loopback.

mod common;

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{DAEMON, DaemonOptions, Datapath, Lab};
use serde_json::Value;
use xdhcp6_engine::Destination;
use xdhcp6_engine::config::Config;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::testing::{Client, ReplyView};

const SERVER_IF: &str = "qf6s";
const CLIENT_IF: &str = "qf6c";
const BRIDGE: &str = "qf6br";
/// The requestor's address, on the clients' link; the servers are `2001:db8:f::a`, `::b`, `::c`.
const REQUESTOR: &str = "2001:db8:f::99";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
    Split,
    Unique,
    Identical,
}

/// One server: its name (`a`, `b`, `c`) and configuration text.
struct Server {
    name: String,
    text: String,
    config: Config,
}

impl Server {
    fn address(&self) -> String {
        format!("2001:db8:f::{}", self.name)
    }

    fn role(&self) -> String {
        format!("s{}", self.name)
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// An example file with the lab's interface, lifetimes long enough for the test, and the
/// requestors' prefix; `edit` changes lines further (a split of three).
fn server(name: &str, file: &str, edit: impl Fn(&str) -> Option<String>) -> Server {
    let path = examples().join(file);
    let original = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let mut text: String = original
        .lines()
        .map(|line| {
            if let Some(edited) = edit(line) {
                return edited;
            }
            let key = line.split(" =").next().unwrap_or("");
            match key {
                "interfaces" => format!("interfaces = [\"{SERVER_IF}\"]"),
                "t1" => "t1 = 300".to_owned(),
                "t2" => "t2 = 480".to_owned(),
                "preferred-lifetime" => "preferred-lifetime = 600".to_owned(),
                "valid-lifetime" => "valid-lifetime = 900".to_owned(),
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    text.push_str(
        "\n\n[leasequery]\nrequestors = [\"2001:db8:f::/64\"]\nbulk-listen = [\"[::]:547\"]\n",
    );
    let config = Config::from_toml_str(&text, file).unwrap_or_else(|error| panic!("{error}"));
    Server {
        name: name.to_owned(),
        text,
        config,
    }
}

/// The servers of a model: the example pair, or three.
fn servers(model: Model, count: usize) -> Vec<Server> {
    let same = |_: &str| None;
    match (model, count) {
        (Model::Split, 2) => vec![
            server("a", "split-a.toml", same),
            server("b", "split-b.toml", same),
        ],
        // Three slices: a keeps its half, b and c share the other (1/2, 3/4, 4/4).
        (Model::Split, 3) => {
            let quarter = |part: &'static str, duid: Option<&'static str>| {
                move |line: &str| {
                    if line.starts_with("split = ") {
                        Some(format!("split = \"{part}\""))
                    } else if line.starts_with("duid = ") {
                        duid.map(|duid| format!("duid = \"{duid}\""))
                    } else {
                        None
                    }
                }
            };
            vec![
                server("a", "split-a.toml", same),
                server("b", "split-b.toml", quarter("3/4", None)),
                server(
                    "c",
                    "split-b.toml",
                    quarter("4/4", Some("00:01:00:01:2e:00:00:01:02:00:00:00:00:0c")),
                ),
            ]
        }
        (Model::Unique, _) => ["a", "b", "c"][..count]
            .iter()
            .map(|name| server(name, &format!("unique-{name}.toml"), same))
            .collect(),
        (Model::Identical, _) => ["a", "b", "c"][..count]
            .iter()
            .map(|name| server(name, &format!("identical-{name}.toml"), same))
            .collect(),
        _ => unreachable!(),
    }
}

struct Fleet {
    lab: Lab,
    servers: Vec<Server>,
}

impl Fleet {
    fn new(tag: &str, servers: Vec<Server>) -> Self {
        let mut roles = vec!["sw".to_owned(), "cli".to_owned()];
        roles.extend(servers.iter().map(Server::role));
        let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
        let mut lab = common::lab(tag, &roles);
        lab.bridge("sw", BRIDGE);
        for server in &servers {
            let port = format!("p{}", server.name);
            lab.veth((&server.role(), SERVER_IF), ("sw", &port));
            lab.attach("sw", &port, BRIDGE);
            lab.address(
                &server.role(),
                SERVER_IF,
                &format!("{}/64", server.address()),
            );
        }
        lab.veth(("cli", CLIENT_IF), ("sw", "pcli"));
        lab.attach("sw", "pcli", BRIDGE);
        lab.address("cli", CLIENT_IF, &format!("{REQUESTOR}/64"));
        for server in &servers {
            let journal = lab.path(&format!("{}.journal", server.name));
            let options = DaemonOptions {
                datapath: Datapath::Udp,
                journal: &journal,
                durability: "always",
                log: &server.name,
            };
            lab.start_server(&server.name, &server.role(), &server.text, &options);
        }
        Self { lab, servers }
    }

    /// Client `n` binds an address and a prefix with the server `name`: it solicits until
    /// that server's Advertise comes, then requests from it alone.
    fn bind(&self, n: u64, name: &str) -> (Ipv6Addr, String) {
        let duid = self.server(name).config.server.duid.clone();
        let logs = self.lab.daemon_logs();
        self.lab
            .netns("cli")
            .run(move || {
                let index = xdhcp6_datapath::interface_index(CLIENT_IF).unwrap();
                let socket = UdpSocket::bind("[::]:546").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let servers = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, index);
                let mut client = Client::new(n);
                client.xid = (n as u32 * 7919) & 0x00ff_ffff;
                let ask = |bytes: Vec<u8>, expect: MessageType| -> ReplyView {
                    let deadline = Instant::now() + Duration::from_secs(5);
                    let mut buf = [0u8; 1500];
                    loop {
                        socket.send_to(&bytes, servers).unwrap();
                        let resend = Instant::now() + Duration::from_millis(1000);
                        while Instant::now() < resend {
                            let Ok((len, _)) = socket.recv_from(&mut buf) else {
                                continue;
                            };
                            let reply = ReplyView::parse(&buf[..len], Destination::Client);
                            if reply.msg_type == expect
                                && reply.xid == client.xid
                                && reply.server_id.as_deref() == Some(&duid[..])
                            {
                                return reply;
                            }
                        }
                        assert!(
                            Instant::now() < deadline,
                            "no {expect:?} from server {duid:02x?} for client {n}:\n{logs}"
                        );
                    }
                };
                let advertise = ask(
                    client.solicit().ia_na(1, &[]).ia_pd(2, &[]).encode(),
                    MessageType::Advertise,
                );
                let address = advertise.ia_na(1).live_addrs();
                let prefixes: Vec<(Ipv6Addr, u8)> = advertise
                    .ia_pd(2)
                    .prefixes
                    .iter()
                    .map(|prefix| (prefix.prefix, prefix.len))
                    .collect();
                let reply = ask(
                    client
                        .request(&duid)
                        .ia_na(1, &address)
                        .ia_pd(2, &prefixes)
                        .encode(),
                    MessageType::Reply,
                );
                let address = reply.ia_na(1).live_addrs()[0];
                let prefix = reply
                    .ia_pd(2)
                    .prefixes
                    .iter()
                    .find(|prefix| prefix.valid > 0)
                    .map(|prefix| format!("{}/{}", prefix.prefix, prefix.len))
                    .expect("a delegated prefix");
                (address, prefix)
            })
            .unwrap()
    }

    fn server(&self, name: &str) -> &Server {
        self.servers
            .iter()
            .find(|server| server.name == name)
            .unwrap()
    }

    /// `xdhcp6d query` from the requestor's address, every server, their configurations.
    fn query(&self, format: &str, target: &[&str]) -> Output {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|server| format!("{}={}", server.name, server.address()))
            .collect();
        let configs: Vec<String> = self
            .servers
            .iter()
            .map(|server| {
                self.lab
                    .path(&format!("{}.toml", server.name))
                    .display()
                    .to_string()
            })
            .collect();
        let (servers, configs) = (servers.join(","), configs.join(","));
        let mut args = vec![
            DAEMON,
            "query",
            "--servers",
            &servers,
            "--configs",
            &configs,
            "--source",
            REQUESTOR,
            "--timeout",
            "1500",
            "--format",
            format,
        ];
        args.extend_from_slice(target);
        self.lab.exec("cli", &args)
    }

    /// The JSON report and the exit status of a query.
    fn ask(&self, target: &[&str]) -> (Value, i32) {
        let output = self.query("json", target);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
            panic!(
                "query {target:?}: {error}: {stdout}\n{}\n{}",
                String::from_utf8_lossy(&output.stderr),
                self.lab.daemon_logs()
            )
        });
        (report, output.status.code().unwrap_or(-1))
    }
}

fn names(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect()
}

fn owners(report: &Value) -> Vec<(&str, bool)> {
    report["layout"]["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|owner| {
            (
                owner["server"].as_str().unwrap(),
                owner["answering"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// One fleet of `count` servers of `model`: bind, query, kill the first, query again.
fn fleet(model: Model, count: usize) {
    let tag = format!(
        "qf{}{count}",
        format!("{model:?}").to_lowercase().chars().next().unwrap()
    );
    let started = Instant::now();
    let mut net = Fleet::new(&tag, servers(model, count));
    let names_all: Vec<String> = net.servers.iter().map(|s| s.name.clone()).collect();
    // Client n+1 bound with server n.
    let bound: Vec<(Ipv6Addr, String)> = names_all
        .iter()
        .enumerate()
        .map(|(index, name)| net.bind(index as u64 + 1, name))
        .collect();
    macro_rules! context {
        ($report:expr) => {
            format!("{:#}\nbound: {bound:?}\n{}", $report, net.lab.daemon_logs())
        };
    }

    // All up: b holds its client's address, and the layout agrees.
    let (b_address, b_prefix) = &bound[1];
    let (report, status) = net.ask(&["--address", &b_address.to_string()]);
    assert_eq!(status, 0, "{}", context!(&report));
    assert_eq!(names(&report["holders"]), ["b"], "{}", context!(&report));
    assert!(
        names(&report["not_answering"]).is_empty(),
        "{}",
        context!(&report)
    );
    let binding = &report["servers"][1]["bindings"][0];
    assert_eq!(
        binding["addresses"][0]["address"],
        b_address.to_string(),
        "{}",
        context!(&report)
    );
    assert!(binding["addresses"][0]["valid"].as_u64().unwrap() > 0);
    assert!(binding["clt_time"].is_u64(), "{}", context!(&report));
    match model {
        Model::Split | Model::Unique => {
            assert_eq!(report["layout"]["model"], "owner", "{}", context!(&report));
            assert_eq!(owners(&report), [("b", true)], "{}", context!(&report));
        }
        Model::Identical => {
            assert_eq!(report["layout"]["model"], "shared", "{}", context!(&report));
            assert_eq!(owners(&report).len(), count, "{}", context!(&report));
        }
    }

    net.lab.kill_server("a");

    // A live server's binding: found, and a named as not answering.
    let (report, status) = net.ask(&["--address", &b_address.to_string()]);
    assert_eq!(status, 0, "{}", context!(&report));
    assert_eq!(names(&report["holders"]), ["b"], "{}", context!(&report));
    assert_eq!(
        names(&report["not_answering"]),
        ["a"],
        "{}",
        context!(&report)
    );
    let reason = report["servers"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("unreachable") || reason.contains("timeout"),
        "{reason}: {}",
        context!(&report)
    );

    // The same over TCP (Bulk Leasequery): b streams the binding, a refuses the connection.
    let (report, status) = net.ask(&["--transport", "tcp", "--address", &b_address.to_string()]);
    assert_eq!(status, 0, "{}", context!(&report));
    assert_eq!(names(&report["holders"]), ["b"], "{}", context!(&report));
    assert_eq!(
        names(&report["not_answering"]),
        ["a"],
        "{}",
        context!(&report)
    );
    let tcp = &report["servers"][1];
    assert_eq!(tcp["complete"], true, "{}", context!(&report));
    assert_eq!(
        tcp["bindings"][0]["addresses"][0]["address"],
        b_address.to_string(),
        "{}",
        context!(&report)
    );
    // By client over TCP: b's client holds its address and its prefix there.
    let b_duid = xdhcp6d::runtime::hex(&Client::new(2).duid);
    let (report, status) = net.ask(&["--transport", "tcp", "--duid", &b_duid]);
    assert_eq!(status, 0, "{}", context!(&report));
    assert_eq!(names(&report["holders"]), ["b"], "{}", context!(&report));
    let binding = &report["servers"][1]["bindings"][0];
    assert_eq!(
        binding["client_id"],
        b_duid.as_str(),
        "{}",
        context!(&report)
    );
    assert_eq!(
        binding["addresses"][0]["address"],
        b_address.to_string(),
        "{}",
        context!(&report)
    );
    assert_eq!(
        binding["prefixes"][0]["prefix"],
        b_prefix.as_str(),
        "{}",
        context!(&report)
    );

    let output = net.query("text", &["--address", &b_address.to_string()]);
    eprintln!(
        "{model:?}, {count} servers, a killed, b's client's address:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // The dead server's binding: nobody answers with it, and the layout points at a.
    let (a_address, a_prefix) = &bound[0];
    let (report, status) = net.ask(&["--address", &a_address.to_string()]);
    assert_eq!(status, 4, "{}", context!(&report));
    assert!(
        names(&report["holders"]).is_empty(),
        "{}",
        context!(&report)
    );
    assert_eq!(
        names(&report["not_answering"]),
        ["a"],
        "{}",
        context!(&report)
    );
    match model {
        Model::Split | Model::Unique => {
            assert_eq!(owners(&report), [("a", false)], "{}", context!(&report));
            let output = net.query("text", &["--address", &a_address.to_string()]);
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(
                text.contains("would be held by a (")
                    && text.contains("NOT ANSWERING")
                    && text.contains("the server that would hold it (a) is the one not answering"),
                "{text}"
            );
        }
        Model::Identical => {
            let owners = owners(&report);
            assert_eq!(owners.len(), count, "{}", context!(&report));
            assert!(owners.contains(&("a", false)), "{}", context!(&report));
        }
    }
    let output = net.query("text", &["--address", &a_address.to_string()]);
    eprintln!(
        "{model:?}, {count} servers, a killed, a's client's address:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // Its delegated prefix likewise.
    let (report, status) = net.ask(&["--prefix", a_prefix]);
    assert_eq!(status, 4, "{}", context!(&report));
    if model != Model::Identical {
        assert_eq!(owners(&report), [("a", false)], "{}", context!(&report));
    }

    // The last server's client by DUID and by prefix: found there.
    let last = names_all.last().unwrap();
    let duid = xdhcp6d::runtime::hex(&Client::new(count as u64).duid);
    let (report, status) = net.ask(&["--duid", &duid]);
    assert_eq!(status, 0, "{}", context!(&report));
    assert_eq!(
        names(&report["holders"]),
        [last.as_str()],
        "{}",
        context!(&report)
    );
    let (last_address, last_prefix) = &bound[count - 1];
    let holder = &report["servers"][count - 1]["bindings"][0];
    assert_eq!(holder["client_id"], duid, "{}", context!(&report));
    assert_eq!(
        holder["addresses"][0]["address"],
        last_address.to_string(),
        "{}",
        context!(&report)
    );
    assert_eq!(
        holder["prefixes"][0]["prefix"],
        *last_prefix,
        "{}",
        context!(&report)
    );
    // The layout's first choice for the client's IAs is what its server handed it (nothing
    // else was bound there around it); in the identical model every server agrees.
    let choices = |iaid: &str, kind: &str| -> Vec<(String, String)> {
        let (report, _) = net.ask(&["--duid", &duid, "--iaid", iaid]);
        report["first_choices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|choice| choice["kind"] == kind)
            .map(|choice| {
                (
                    choice["server"].as_str().unwrap().to_owned(),
                    choice["unit"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let na = choices("1", "na");
    let pd = choices("2", "pd");
    assert_eq!(na.len(), count, "{na:?}");
    let own = |list: &[(String, String)]| {
        list.iter()
            .find(|(server, _)| server == last)
            .map(|(_, unit)| unit.clone())
            .unwrap()
    };
    assert_eq!(own(&na), format!("{last_address}/128"), "{na:?}");
    assert_eq!(own(&pd), *last_prefix, "{pd:?}");
    if model == Model::Identical {
        assert!(na.iter().all(|(_, unit)| *unit == na[0].1), "{na:?}");
    }
    let (report, status) = net.ask(&["--prefix", b_prefix]);
    assert_eq!(status, 0, "{}", context!(&report));
    assert_eq!(names(&report["holders"]), ["b"], "{}", context!(&report));
    eprintln!(
        "{model:?} with {count} servers: bound {bound:?}; test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn query_split_fleet_of_two_and_three_with_one_killed() {
    fleet(Model::Split, 2);
    fleet(Model::Split, 3);
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn query_unique_fleet_of_two_and_three_with_one_killed() {
    fleet(Model::Unique, 2);
    fleet(Model::Unique, 3);
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn query_identical_fleet_of_two_and_three_with_one_killed() {
    fleet(Model::Identical, 2);
    fleet(Model::Identical, 3);
}

/// A fake server on [::1]: answers every LEASEQUERY with `binding` (an address of client 1)
/// or with no Client Data.
fn fake_server(binding: Option<Ipv6Addr>) -> String {
    use xdhcp6_engine::proto::{MessageWriter, OptionCode, Packet};
    let socket = UdpSocket::bind("[::1]:0").unwrap();
    let address = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((len, peer)) = socket.recv_from(&mut buf) {
            let Ok(Packet::Client(query)) = Packet::parse(&buf[..len]) else {
                continue;
            };
            let mut reply = [0u8; 1500];
            let mut w = MessageWriter::client(
                &mut reply,
                MessageType::LeasequeryReply,
                query.transaction_id(),
            )
            .unwrap();
            w.server_id(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 0x0a]).unwrap();
            w.client_id(&[0, 3, 0, 1, 2, 0, 0, 0, 0x4c, 0x51]).unwrap();
            if let Some(address) = binding {
                let data = w.begin_option(OptionCode::ClientData).unwrap();
                w.client_id(&Client::new(1).duid).unwrap();
                w.ia_address(address, 60, 120).unwrap();
                w.end_option(data).unwrap();
            }
            let len = w.finish().unwrap();
            let _ = socket.send_to(&reply[..len], peer);
        }
    });
    address.to_string()
}

#[test]
fn query_exit_status_says_found_not_found_or_incomplete() {
    let held: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    let holder = fake_server(Some(held));
    let empty = fake_server(None);
    // A port that refuses: its socket is connected elsewhere, so the kernel delivers it
    // nothing else and answers port unreachable; held, nobody else can take the port.
    let dead = UdpSocket::bind("[::1]:0").unwrap();
    dead.connect("[::1]:9").unwrap();
    let dead_address = dead.local_addr().unwrap().to_string();
    let run = |servers: &str, extra: &[&str]| {
        let mut args = vec!["query", "--servers", servers, "--timeout", "400"];
        args.extend_from_slice(extra);
        let output = std::process::Command::new(DAEMON)
            .args(&args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let both = format!("a={holder},b={empty}");
    let (status, out, _) = run(&both, &["--address", "2001:db8:1::10"]);
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("result: held by a"), "{out}");
    let (status, out, _) = run(&format!("b={empty}"), &["--address", "2001:db8:1::10"]);
    assert_eq!(status, Some(3), "{out}");
    let (status, out, _) = run(
        &format!("b={empty},d={dead_address}"),
        &["--address", "2001:db8:1::10", "--format", "json"],
    );
    assert_eq!(status, Some(4), "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["not_answering"], serde_json::json!(["d"]));
    // Command-line mistakes (clap) and errors.
    assert_eq!(run(&both, &[]).0, Some(2));
    let (status, _, err) = run(&both, &["--relay-id", "00:01", "--transport", "udp"]);
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("--transport tcp"), "{err}");
}
