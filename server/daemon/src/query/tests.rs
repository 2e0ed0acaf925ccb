//! The requestor against fake servers on loopback (UDP and TCP, answering with the proto
//! crate's writer), and the merging of answers.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, UdpSocket};
use std::thread;

use xdhcp6_engine::proto::{
    DhcpOption, MessageType, MessageWriter, OptionCode, Packet, StatusCode,
};

use super::*;

const REQUESTOR: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0x4c, 0x51];
const CLIENT: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1];

fn duid_of(server: u8) -> Vec<u8> {
    vec![0, 3, 0, 1, 2, 0, 0, 0, 0, server]
}

/// An answer as a server writes it: `binding` is (client DUID, address).
fn answer(
    msg_type: MessageType,
    xid: u32,
    server: u8,
    status: Option<StatusCode>,
    binding: Option<(&[u8], Ipv6Addr)>,
) -> Vec<u8> {
    let mut buf = vec![0; 1500];
    let mut w = MessageWriter::client(&mut buf, msg_type, xid).unwrap();
    w.server_id(&duid_of(server)).unwrap();
    w.client_id(REQUESTOR).unwrap();
    if let Some(code) = status {
        w.status_code(code, "").unwrap();
    }
    if let Some((duid, address)) = binding {
        let data = w.begin_option(OptionCode::ClientData).unwrap();
        w.client_id(duid).unwrap();
        w.ia_address(address, 100, 200).unwrap();
        w.option(OptionCode::CltTime, &7u32.to_be_bytes()).unwrap();
        w.end_option(data).unwrap();
    }
    let len = w.finish().unwrap();
    buf.truncate(len);
    buf
}

/// The transaction id and query type of a LEASEQUERY.
fn query_of(bytes: &[u8]) -> (u32, u8) {
    let Ok(Packet::Client(message)) = Packet::parse(bytes) else {
        panic!("not a client message");
    };
    assert_eq!(message.msg_type(), MessageType::Leasequery);
    let query_type = message
        .options()
        .find_map(|option| match option.unwrap() {
            DhcpOption::LqQuery(query) => Some(query.query_type()),
            _ => None,
        })
        .expect("an LQ_QUERY");
    (message.transaction_id(), query_type.into())
}

/// A UDP server on [::1] that ignores the first `drop` queries, then answers each with
/// `respond(xid)`; runs until the test ends.
fn udp_server(drop: usize, respond: impl Fn(u32) -> Vec<u8> + Send + 'static) -> SocketAddr {
    let socket = UdpSocket::bind("[::1]:0").unwrap();
    let address = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut seen = 0;
        let mut buf = [0u8; 1500];
        while let Ok((len, peer)) = socket.recv_from(&mut buf) {
            seen += 1;
            if seen <= drop {
                continue;
            }
            let (xid, _) = query_of(&buf[..len]);
            let _ = socket.send_to(&respond(xid), peer);
        }
    });
    address
}

/// A port of [::1] that refuses UDP and TCP for as long as the guard lives: a TCP socket bound
/// without listening (a connection is reset) and a UDP socket connected elsewhere (the kernel
/// delivers it nothing else, so a datagram gets a port unreachable). Held, the port cannot be
/// taken by a fake server of a test running alongside.
fn closed_port() -> (SocketAddr, (tokio::net::TcpSocket, UdpSocket)) {
    loop {
        let tcp = tokio::net::TcpSocket::new_v6().unwrap();
        tcp.bind("[::1]:0".parse().unwrap()).unwrap();
        let address = tcp.local_addr().unwrap();
        let Ok(udp) = UdpSocket::bind(address) else {
            continue;
        };
        udp.connect("[::1]:9").unwrap();
        return (address, (tcp, udp));
    }
}

/// A TCP server on [::1] that takes one framed query, checks its type, and writes `messages`
/// framed, then closes.
fn tcp_server(
    expect_type: u8,
    messages: impl Fn(u32) -> Vec<Vec<u8>> + Send + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).unwrap();
        let mut query = vec![0; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut query).unwrap();
        let (xid, query_type) = query_of(&query);
        assert_eq!(query_type, expect_type);
        for message in messages(xid) {
            stream
                .write_all(&(message.len() as u16).to_be_bytes())
                .unwrap();
            stream.write_all(&message).unwrap();
        }
    });
    address
}

fn server(name: &str, address: SocketAddr) -> Server {
    Server {
        name: name.to_owned(),
        address,
    }
}

fn query(target: Target, transport: Transport) -> Query {
    Query {
        target,
        link: Ipv6Addr::UNSPECIFIED,
        transport,
        timeout: Duration::from_millis(1500),
        requestor: REQUESTOR.to_vec(),
        source: None,
        xid: 0x1234,
    }
}

fn ip(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

fn split_layout() -> Layout {
    let config = |duid: &str, part: &str| {
        Config::from_toml_str(
            &format!(
                "[server]\nduid = \"{duid}\"\n[[link]]\nname = \"access\"\ninterfaces = [\"eth1\"]\n\
                 [[link.pool]]\nprefix = \"2001:db8:1::/64\"\nsplit = \"{part}\"\n"
            ),
            "test.toml",
        )
        .unwrap()
    };
    Layout::new(vec![
        config("00:03:00:01:02:00:00:00:00:0a", "1/2"),
        config("00:03:00:01:02:00:00:00:00:0b", "2/2"),
    ])
}

#[test]
fn udp_answers_merge_into_holder_silent_and_refused() {
    let held = ip("2001:db8:1::10");
    // The holder loses the first query: the requestor retransmits.
    let holder = udp_server(1, move |xid| {
        answer(
            MessageType::LeasequeryReply,
            xid,
            1,
            None,
            Some((CLIENT, held)),
        )
    });
    let empty = udp_server(0, |xid| {
        answer(MessageType::LeasequeryReply, xid, 2, None, None)
    });
    let refusing = udp_server(0, |xid| {
        answer(
            MessageType::LeasequeryReply,
            xid,
            3,
            Some(StatusCode::NotAllowed),
            None,
        )
    });
    let silent = udp_server(usize::MAX, |_| Vec::new());
    let closed = closed_port();
    let servers = [
        server("a", holder),
        server("b", empty),
        server("c", refusing),
        server("d", silent),
        server("e", closed.0),
    ];
    let report = run(
        &servers,
        &query(Target::Address(held), Transport::Udp),
        &Layout::new(Vec::new()),
    )
    .unwrap();
    let verdicts: Vec<&Verdict> = report
        .servers
        .iter()
        .map(|server| &server.verdict)
        .collect();
    match verdicts[0] {
        Verdict::Holds {
            bindings,
            server_id,
            complete,
        } => {
            assert_eq!(bindings.len(), 1);
            assert_eq!(bindings[0].client_id, CLIENT);
            assert_eq!(bindings[0].addresses, [(held, 100, 200)]);
            assert_eq!(bindings[0].clt_time, Some(7));
            assert_eq!(server_id.as_deref(), Some(&duid_of(1)[..]));
            assert!(complete);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        verdicts[1],
        Verdict::NoBinding {
            not_configured: false,
            ..
        }
    ));
    assert!(matches!(
        verdicts[2],
        Verdict::Refused {
            code: StatusCode::NotAllowed,
            ..
        }
    ));
    assert_eq!(verdicts[3], &Verdict::Timeout);
    assert_eq!(verdicts[4], &Verdict::Unreachable("refused".to_owned()));
    assert_eq!(report.exit_code(), EXIT_FOUND);
    let silent: Vec<&str> = report.silent().map(|server| server.name.as_str()).collect();
    assert_eq!(silent, ["c", "d", "e"]);
    let text = report.text();
    assert!(
        text.contains("result: held by a; not answering: c, d, e"),
        "{text}"
    );
    assert!(text.contains("NotAllowed"), "{text}");
    let json = report.json();
    assert_eq!(json["holders"], serde_json::json!(["a"]));
    assert_eq!(
        json["servers"][0]["bindings"][0]["addresses"][0]["address"],
        "2001:db8:1::10"
    );
    assert_eq!(json["servers"][4]["reason"], "unreachable: refused");
    assert!(
        text.contains("NOT ANSWERING: unreachable: refused"),
        "{text}"
    );
}

#[test]
fn not_found_with_the_owner_down_names_the_owner() {
    let empty = udp_server(0, |xid| {
        answer(MessageType::LeasequeryReply, xid, 2, None, None)
    });
    let closed = closed_port();
    let servers = [server("a", closed.0), server("b", empty)];
    let layout = split_layout();
    // In a's half: a would own it, and a does not answer.
    let report = run(
        &servers,
        &query(Target::Address(ip("2001:db8:1::10")), Transport::Udp),
        &layout,
    )
    .unwrap();
    assert_eq!(report.exit_code(), EXIT_INCOMPLETE);
    assert!(matches!(&report.ownership, Ownership::Owner(claim) if claim.server == 0));
    let text = report.text();
    assert!(
        text.contains("2001:db8:1::10 would be held by a (its slice 2001:db8:1::/65 of pool 2001:db8:1::/64, link access), which is NOT ANSWERING"),
        "{text}"
    );
    assert!(
        text.contains("the server that would hold it (a) is the one not answering"),
        "{text}"
    );
    assert_eq!(report.json()["layout"]["owners"][0]["answering"], false);
    // In b's half, every server of the slice answered: not found, and nobody to blame.
    let report = run(
        &servers,
        &query(Target::Address(ip("2001:db8:1:0:8000::10")), Transport::Udp),
        &layout,
    )
    .unwrap();
    assert!(matches!(&report.ownership, Ownership::Owner(claim) if claim.server == 1));
    assert!(
        !report.text().contains("which is NOT ANSWERING"),
        "{}",
        report.text()
    );
    // a did not answer, so the binding could still be there (a client keeps an address of
    // a's slice only with a, but a Rebind may have moved it): incomplete.
    assert_eq!(report.exit_code(), EXIT_INCOMPLETE);
}

#[test]
fn every_server_answering_without_a_binding_is_not_found() {
    let a = udp_server(0, |xid| {
        answer(MessageType::LeasequeryReply, xid, 1, None, None)
    });
    let b = udp_server(0, |xid| {
        answer(
            MessageType::LeasequeryReply,
            xid,
            2,
            Some(StatusCode::NotConfigured),
            None,
        )
    });
    let report = run(
        &[server("a", a), server("b", b)],
        &query(Target::Address(ip("2001:db8:1::10")), Transport::Udp),
        &Layout::new(Vec::new()),
    )
    .unwrap();
    assert_eq!(report.exit_code(), EXIT_NOT_FOUND);
    assert!(matches!(
        report.servers[1].verdict,
        Verdict::NoBinding {
            not_configured: true,
            ..
        }
    ));
}

#[test]
fn tcp_bulk_answer_is_read_to_its_done() {
    let first = ip("2001:db8:1::10");
    let second = ip("2001:db8:1::11");
    let bulk = tcp_server(5, move |xid| {
        vec![
            answer(
                MessageType::LeasequeryReply,
                xid,
                1,
                None,
                Some((CLIENT, first)),
            ),
            // Another transaction on the same connection is not ours.
            answer(
                MessageType::LeasequeryData,
                xid ^ 1,
                1,
                None,
                Some((CLIENT, ip("2001:db8::99"))),
            ),
            answer(
                MessageType::LeasequeryData,
                xid,
                1,
                None,
                Some((&duid_of(9), second)),
            ),
            answer(MessageType::LeasequeryDone, xid, 1, None, None),
        ]
    });
    let refusing = tcp_server(5, |xid| {
        vec![answer(
            MessageType::LeasequeryReply,
            xid,
            2,
            Some(StatusCode::NotAllowed),
            None,
        )]
    });
    let empty = tcp_server(5, |xid| {
        vec![
            answer(MessageType::LeasequeryReply, xid, 3, None, None),
            answer(MessageType::LeasequeryDone, xid, 3, None, None),
        ]
    });
    let target = Target::RemoteId {
        enterprise: 4491,
        id: vec![1, 2, 3],
    };
    let closed = closed_port();
    let servers = [
        server("a", bulk),
        server("b", refusing),
        server("c", empty),
        server("d", closed.0),
    ];
    let report = run(
        &servers,
        &query(target, Transport::Tcp),
        &Layout::new(Vec::new()),
    )
    .unwrap();
    match &report.servers[0].verdict {
        Verdict::Holds {
            bindings, complete, ..
        } => {
            assert!(complete);
            let addresses: Vec<Ipv6Addr> = bindings.iter().map(|b| b.addresses[0].0).collect();
            assert_eq!(addresses, [first, second]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        report.servers[1].verdict,
        Verdict::Refused {
            code: StatusCode::NotAllowed,
            ..
        }
    ));
    assert!(matches!(
        report.servers[2].verdict,
        Verdict::NoBinding { .. }
    ));
    assert_eq!(
        report.servers[3].verdict,
        Verdict::Unreachable("refused".to_owned())
    );
    assert_eq!(report.exit_code(), EXIT_FOUND);
    assert_eq!(
        report.json()["servers"][0]["bindings"][1]["client_id"],
        "00:03:00:01:02:00:00:00:00:09"
    );
}

#[test]
fn tcp_stream_closed_before_done_is_kept_and_marked() {
    let held = ip("2001:db8:1::10");
    let cut = tcp_server(1, move |xid| {
        vec![answer(
            MessageType::LeasequeryReply,
            xid,
            1,
            None,
            Some((CLIENT, held)),
        )]
    });
    let report = run(
        &[server("a", cut)],
        &query(Target::Address(held), Transport::Tcp),
        &Layout::new(Vec::new()),
    )
    .unwrap();
    assert!(
        matches!(&report.servers[0].verdict, Verdict::Holds { complete: false, bindings, .. } if bindings.len() == 1)
    );
    assert!(
        report.text().contains("answer cut short"),
        "{}",
        report.text()
    );
}

#[test]
fn verdicts_of_exchanges() {
    let reply = |status, binding| {
        wire::parse(&answer(MessageType::LeasequeryReply, 1, 1, status, binding)).unwrap()
    };
    let held = Some((CLIENT, ip("2001:db8::1")));
    assert!(matches!(
        Verdict::of(Exchange::Answered {
            answers: vec![reply(None, held)],
            complete: true
        }),
        Verdict::Holds { complete: true, .. }
    ));
    assert!(matches!(
        Verdict::of(Exchange::Answered {
            answers: vec![reply(Some(StatusCode::UnknownQueryType), None)],
            complete: true
        }),
        Verdict::Refused {
            code: StatusCode::UnknownQueryType,
            ..
        }
    ));
    // A DONE that says the server ended the query early makes the answer incomplete.
    let done = wire::parse(&answer(
        MessageType::LeasequeryDone,
        1,
        1,
        Some(StatusCode::QueryTerminated),
        None,
    ))
    .unwrap();
    assert!(matches!(
        Verdict::of(Exchange::Answered {
            answers: vec![reply(None, held), done],
            complete: true
        }),
        Verdict::Holds {
            complete: false,
            ..
        }
    ));
    assert_eq!(Verdict::of(Exchange::Timeout), Verdict::Timeout);
}

#[test]
fn command_line_values() {
    assert_eq!(
        parse_server("a=2001:db8::a").unwrap(),
        server("a", "[2001:db8::a]:547".parse().unwrap())
    );
    assert_eq!(
        parse_server("[2001:db8::b]:5547").unwrap(),
        server("[2001:db8::b]:5547", "[2001:db8::b]:5547".parse().unwrap())
    );
    assert!(parse_server("=2001:db8::a").is_err());
    assert!(parse_server("nowhere").is_err());
    assert_eq!(parse_remote_id("4491:0a0b").unwrap(), (4491, vec![10, 11]));
    assert_eq!(parse_remote_id("9:0a:0b").unwrap(), (9, vec![10, 11]));
    assert!(parse_remote_id("x:0a").is_err());
    assert_eq!(parse_duid("00-03-00-01").unwrap(), Duid(vec![0, 3, 0, 1]));
    assert!(parse_duid("0").is_err());
    assert!(parse_duid("").is_err());
}

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: QueryArgs,
}

fn parse_args(args: &[&str]) -> Result<QueryArgs, clap::Error> {
    use clap::Parser as _;
    Cli::try_parse_from(std::iter::once("query").chain(args.iter().copied())).map(|cli| cli.args)
}

#[test]
fn every_flag_parses() {
    use clap::CommandFactory as _;
    Cli::command().debug_assert();
    let args = parse_args(&[
        "--servers",
        "a=2001:db8::a,2001:db8::b",
        "--duid",
        "00:03:00:01:02:00:00:00:00:01",
        "--iaid",
        "7",
        "--link",
        "2001:db8:1::1",
        "--transport",
        "tcp",
        "--timeout",
        "500",
        "--configs",
        "a.toml,b.toml",
        "--source",
        "2001:db8::99",
        "--client-id",
        "000300010200",
        "--format",
        "json",
    ])
    .unwrap();
    assert_eq!(args.servers.len(), 2);
    assert_eq!(args.duid, Some(Duid(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1])));
    assert_eq!(args.iaid, Some(7));
    assert_eq!(args.configs.len(), 2);
    let args = parse_args(&[
        "--servers",
        "::1",
        "--relay-id",
        "00:01",
        "--remote-id",
        "9:ff",
    ]);
    assert!(args.is_err(), "two targets");
    let args = parse_args(&["--servers", "::1", "--remote-id", "9:ff"]).unwrap();
    assert_eq!(args.remote_id, Some((9, vec![0xff])));
    assert!(parse_args(&["--servers", "::1"]).is_err(), "no target");
    assert!(parse_args(&["--address", "::1"]).is_err(), "no servers");
}

#[test]
fn relay_and_remote_id_go_over_tcp_and_refuse_udp() {
    let args = parse_args(&[
        "--servers",
        "::1",
        "--relay-id",
        "00:01",
        "--transport",
        "udp",
    ])
    .unwrap();
    let error = main(&args).unwrap_err().to_string();
    assert!(error.contains("--transport tcp"), "{error}");
    let args = parse_args(&[
        "--servers",
        "::1,::2",
        "--address",
        "::5",
        "--configs",
        "a.toml",
    ])
    .unwrap();
    let error = main(&args).unwrap_err().to_string();
    assert!(
        error.contains("--configs names 1 files for 2 servers"),
        "{error}"
    );
}
