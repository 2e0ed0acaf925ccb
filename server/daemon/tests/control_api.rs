//! The control API of a running server, in a network namespace: leases taken by real
//! exchanges are looked up each way, listed a page at a time and released with `xdhcp6d ctl`
//! and with raw HTTP on the unix socket; the release reaches the journal and the client's
//! Renew; runtime reservations are added, served, kept in their file and removed; reload
//! refuses an invalid file naming it and applies a valid one; the TCP listener serves only the
//! bearer token's holder; bad input gets 400 naming the field.

mod common;

use std::io::{Read, Write};
use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use common::{DAEMON, Datapath, exchange, fixtures, journal_leases};
use serde_json::Value;
use xdhcp6_engine::proto::{MessageType, StatusCode};
use xdhcp6_engine::testing::{Client, ReplyView};

const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";
const TCP: &str = "[::1]:9548";
const TOKEN: &str = "a-long-random-token-0123456789";

/// Address clients 1..=ADDRESS_CLIENTS take; client PD_CLIENT takes a prefix.
const ADDRESS_CLIENTS: u64 = 6;
const PD_CLIENT: u64 = 100;

/// `xdhcp6d ctl --socket SOCKET ARGS...`: its exit status, stdout and stderr.
fn ctl(socket: &Path, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(DAEMON)
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("xdhcp6d ctl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `xdhcp6d ctl --json ARGS...`, which must succeed, as JSON.
fn ctl_json(socket: &Path, args: &[&str]) -> Value {
    let mut line = vec!["--json"];
    line.extend_from_slice(args);
    let (ok, stdout, stderr) = ctl(socket, &line);
    assert!(ok, "ctl {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

/// One HTTP/1.1 request written by hand: the status and the body as JSON.
fn raw(stream: &mut (impl Read + Write), request: &str) -> (u16, Value) {
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no body: {text}"));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    // A chunked body would hold chunk sizes; axum sends JSON with a length.
    let body = serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {text}"));
    (status, body)
}

fn raw_unix(socket: &Path, method: &str, target: &str) -> (u16, Value) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    raw(
        &mut stream,
        &format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
}

/// Client `n` sends `build`'s message to the servers and waits for a reply of `expect`.
fn ask(
    net: &xdhcp6_lab::harness::Lab,
    n: u64,
    build: impl FnOnce(&Client) -> Vec<u8> + Send,
    expect: MessageType,
) -> Option<ReplyView> {
    common::ask(net, CLIENT_IF, n, n as u32 + 0x1000, build, expect)
}

/// Client `n` takes a delegated prefix (Solicit, Request with IA_PD 2).
fn take_prefix(net: &xdhcp6_lab::harness::Lab, n: u64) -> (Ipv6Addr, u8) {
    let advertise = ask(
        net,
        n,
        |client| client.solicit().ia_pd(2, &[]).encode(),
        MessageType::Advertise,
    )
    .expect("an Advertise");
    let server = advertise.server_id.clone().unwrap();
    let offered = advertise.ia_pd(2).prefix();
    let reply = ask(
        net,
        n,
        move |client| client.request(&server).ia_pd(2, &[offered]).encode(),
        MessageType::Reply,
    )
    .expect("a Reply");
    reply.ia_pd(2).prefix()
}

fn unhex(text: &str) -> Vec<u8> {
    text.split(':')
        .map(|pair| u8::from_str_radix(pair, 16).unwrap())
        .collect()
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn ctl_and_raw_http_look_up_list_and_release_leases_over_udp() {
    control_scenario(Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces and the eBPF object; run by cargo xtask test"]
fn ctl_and_raw_http_look_up_list_and_release_leases_over_xdp() {
    control_scenario(Datapath::XdpSkb);
}

fn control_scenario(datapath: Datapath) {
    let mut net = common::lab("ctl-api", &["srv", "cli", "alt"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    // A second namespace with an interface of the same name, for a second server.
    net.veth(("alt", SERVER_IF), ("cli", "xd6d"));
    let config = net.path("server.toml");
    std::fs::write(
        &config,
        fixtures::render(fixtures::ACCESS, &[("SERVER_IF", SERVER_IF)]).unwrap(),
    )
    .unwrap();
    let journal = net.path("leases.journal");
    let socket = net.path("run/control.sock");
    let token = net.path("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let wrong = net.path("wrong-token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let arg = |path: &Path| path.display().to_string();
    let (config_arg, journal_arg, socket_arg, token_arg) =
        (arg(&config), arg(&journal), arg(&socket), arg(&token));
    let mut line = vec![
        DAEMON,
        "run",
        "--config",
        &config_arg,
        "--journal",
        &journal_arg,
    ];
    line.extend_from_slice(datapath.args());
    line.extend_from_slice(&[
        "--metrics",
        "off",
        "--control",
        &socket_arg,
        "--control-tcp",
        TCP,
        "--control-token-file",
        &token_arg,
    ]);
    net.spawn("srv", "daemon", &line);
    net.wait_for_log("daemon", "serving", Duration::from_secs(20));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    // Leases taken by real exchanges.
    let mut addresses = Vec::new();
    for n in 1..=ADDRESS_CLIENTS {
        match exchange(&net, CLIENT_IF, n) {
            common::Exchange::Bound(address) => addresses.push(address),
            other => panic!("client {n}: {other:?}\n{}", net.log("daemon")),
        }
    }
    let (prefix, len) = take_prefix(&net, PD_CLIENT);
    let prefix_text = format!("{prefix}/{len}");

    // By address, in a table and as JSON.
    let address = addresses[1];
    let (ok, table, stderr) = ctl(&socket, &["leases", "--address", &address.to_string()]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("DUID"), "{table}");
    assert!(lines[1].contains(&address.to_string()), "{table}");
    assert!(
        lines[1].contains("access-1") && lines[1].contains("bound"),
        "{table}"
    );
    let found = ctl_json(&socket, &["leases", "--address", &address.to_string()]);
    let lease = &found["leases"][0];
    assert_eq!(lease["lease"], address.to_string());
    assert_eq!(lease["iaid"], 1);
    assert_eq!(lease["valid"], 300);
    let duid = lease["duid"].as_str().unwrap().to_owned();
    assert_eq!(unhex(&duid), Client::new(2).duid);

    // By prefix, by DUID (with and without IAID), by link-layer address.
    let found = ctl_json(&socket, &["leases", "--prefix", &prefix_text]);
    assert_eq!(found["leases"][0]["lease"], prefix_text);
    assert_eq!(found["leases"][0]["kind"], "pd");
    let found = ctl_json(&socket, &["leases", "--duid", &duid]);
    assert_eq!(found["leases"].as_array().unwrap().len(), 1, "{found}");
    let found = ctl_json(&socket, &["leases", "--duid", &duid, "--iaid", "1"]);
    assert_eq!(found["leases"][0]["lease"], address.to_string());
    let (ok, _, stderr) = ctl(&socket, &["leases", "--duid", &duid, "--iaid", "9"]);
    assert!(
        !ok && stderr.contains("no lease of this client"),
        "{stderr}"
    );
    // Client::new(n)'s DUID-LLT carries the MAC 00:00:00:00:00:0n.
    let found = ctl_json(&socket, &["leases", "--hw-address", "00:00:00:00:00:03"]);
    assert_eq!(found["leases"][0]["lease"], addresses[2].to_string());
    assert_eq!(found["leases"].as_array().unwrap().len(), 1);

    // The link a page of 4 at a time: every lease once, in order.
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec!["leases", "--link", "access-1", "--limit", "4"];
        if let Some(after) = &after {
            args.extend(["--after", after.as_str()]);
        }
        let page = ctl_json(&socket, &args);
        for lease in page["leases"].as_array().unwrap() {
            seen.push(lease["lease"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<Ipv6Addr> = addresses.clone();
    expected.sort();
    let mut expected: Vec<String> = expected.iter().map(ToString::to_string).collect();
    expected.push(prefix_text.clone());
    assert_eq!(seen, expected);
    // Pool 1 of the link is its PD slice.
    let page = ctl_json(&socket, &["leases", "--link", "access-1", "--pool", "1"]);
    assert_eq!(page["leases"].as_array().unwrap().len(), 1);
    assert_eq!(page["leases"][0]["lease"], prefix_text);

    // Pools: the bound counts match the leases taken.
    let pools = ctl_json(&socket, &["pools"]);
    let pools = pools["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 2, "{pools:?}");
    assert_eq!(pools[0]["kind"], "na");
    assert_eq!(pools[0]["range"], "2001:db8:1::/65");
    assert_eq!(pools[0]["bound"], ADDRESS_CLIENTS);
    assert_eq!(pools[1]["kind"], "pd");
    assert_eq!(pools[1]["bound"], 1);
    assert_eq!(pools[1]["size"], 128);
    assert_eq!(pools[1]["free"], 127);
    let (ok, table, _) = ctl(&socket, &["pools"]);
    assert!(
        ok && table.starts_with("LINK") && table.contains("2001:db8:1::/65"),
        "{table}"
    );

    // Server info, and the configuration served.
    let server = ctl_json(&socket, &["server"]);
    assert_eq!(server["version"], env!("CARGO_PKG_VERSION"));
    let workers = server["workers"].as_array().unwrap();
    assert_eq!(workers[0]["datapath"], "udp");
    if datapath == Datapath::Udp {
        assert_eq!(server["datapath"], "udp");
        assert_eq!(server["xdp"], serde_json::json!([]));
    } else {
        assert_eq!(server["datapath"], "xdp");
        assert_eq!(
            server["xdp"],
            serde_json::json!([format!("{SERVER_IF} (skb)")])
        );
        assert!(
            workers.iter().any(|worker| worker["datapath"] == "af_xdp"),
            "{server}"
        );
    }
    assert_eq!(server["config_file"], config_arg);
    assert_eq!(server["journal"]["healthy"], true);
    assert_eq!(server["journal"]["path"], journal_arg);
    assert_eq!(server["duid"], "00:01:00:01:2e:00:00:01:02:00:00:00:00:0a");
    let received: u64 = server["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|worker| worker["received"].as_u64().unwrap())
        .sum();
    assert!(received >= 2 * ADDRESS_CLIENTS + 2, "{server}");
    let (ok, text, _) = ctl(&socket, &["config"]);
    assert!(ok && text.contains("name = \"access-1\""), "{text}");

    // Raw HTTP on the socket: the same lookup, and bad input named.
    let (status, body) = raw_unix(&socket, "GET", &format!("/v1/leases?address={address}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["leases"][0]["duid"], duid);
    let (status, body) = raw_unix(&socket, "GET", "/v1/leases?address=2001:db8::zz");
    assert_eq!(status, 400);
    assert_eq!(body["field"], "address");
    assert_eq!(
        body["error"],
        "address: \"2001:db8::zz\" is not an IPv6 address"
    );
    let (status, body) = raw_unix(&socket, "GET", "/v1/leases?link=access-1&limit=100000");
    assert_eq!(status, 400);
    assert_eq!(body["field"], "limit");
    let (ok, _, stderr) = ctl(&socket, &["leases", "--prefix", "2001:db8:100::1/56"]);
    assert!(!ok, "a bad prefix is refused");
    assert!(
        stderr.contains("prefix: ") && stderr.contains("HTTP 400"),
        "{stderr}"
    );

    // A forced release over raw HTTP: journaled as a Release.
    let (status, body) = raw_unix(&socket, "DELETE", &format!("/v1/leases?address={address}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["released"]["lease"], address.to_string());
    let rows = journal_leases(&journal);
    assert!(
        !rows
            .iter()
            .any(|row| row["lease"] == address.to_string() && row["state"] == "bound"),
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .any(|row| row["lease"] == addresses[0].to_string()),
        "{rows:#?}"
    );
    let (ok, _, stderr) = ctl(&socket, &["leases", "--address", &address.to_string()]);
    assert!(!ok && stderr.contains("no lease on"), "{stderr}");
    let pools = ctl_json(&socket, &["pools"]);
    assert_eq!(pools["pools"][0]["bound"], ADDRESS_CLIENTS - 1);
    // And the prefix with `ctl release`.
    let (ok, text, stderr) = ctl(&socket, &["release", &prefix_text]);
    assert!(ok, "{stderr}");
    assert!(
        text.starts_with(&format!("released {prefix_text}")),
        "{text}"
    );
    let (ok, _, stderr) = ctl(&socket, &["release", &prefix_text]);
    assert!(!ok && stderr.contains("HTTP 404"), "{stderr}");

    // The client's Renew finds no binding for what was released: NoBinding, or a new binding.
    let server_duid = unhex(server["duid"].as_str().unwrap());
    let reply = ask(
        &net,
        2,
        move |client| client.renew(&server_duid).ia_na(1, &[address]).encode(),
        MessageType::Reply,
    )
    .expect("a Reply to the Renew");
    let ia = reply.ia_na(1);
    if ia.status_code() != StatusCode::NoBinding {
        // renew-creates-bindings: the binding is new, and the table has it again.
        let live = ia.live_addrs();
        assert_eq!(live.len(), 1, "{reply:?}");
        let found = ctl_json(&socket, &["leases", "--address", &live[0].to_string()]);
        assert_eq!(found["leases"][0]["state"], "bound");
        assert_eq!(found["leases"][0]["duid"], duid);
    }

    // TCP: no token, a wrong one, then the right one.
    let tcp = |request: String| {
        net.netns("srv")
            .run(move || {
                let mut stream = std::net::TcpStream::connect(TCP).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                raw(&mut stream, &request)
            })
            .unwrap()
    };
    let request = |authorization: &str| {
        format!(
            "GET /v1/server HTTP/1.1\r\nHost: {TCP}\r\n{authorization}Connection: close\r\n\r\n"
        )
    };
    let (status, body) = tcp(request(""));
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["field"], "authorization");
    let (status, _) = tcp(request("Authorization: Bearer not-the-token\r\n"));
    assert_eq!(status, 401);
    let (status, body) = tcp(request(&format!("Authorization: Bearer {TOKEN}\r\n")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pid"], server["pid"]);
    let url = format!("http://{TCP}");
    let wrong_arg = arg(&wrong);
    let output = net.exec(
        "srv",
        &[
            DAEMON,
            "ctl",
            "--url",
            &url,
            "--token-file",
            &wrong_arg,
            "server",
        ],
    );
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("HTTP 401"),
        "{output:?}"
    );
    let output = net.exec(
        "srv",
        &[
            DAEMON,
            "ctl",
            "--url",
            &url,
            "--token-file",
            &token_arg,
            "--json",
            "pools",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let pools: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(pools["pools"][1]["bound"], 0);

    // Runtime reservations: added through ctl, kept in reservations.toml beside the journal,
    // served at once (the add reloads), listed, and removed again.
    let reserved_client = 200;
    let reserved: Ipv6Addr = "2001:db8:1::99".parse().unwrap();
    let reserved_duid = xdhcp6d::runtime::hex(&Client::new(reserved_client).duid);
    let added = ctl_json(
        &socket,
        &[
            "reservations",
            "add",
            "--duid",
            &reserved_duid,
            "--address",
            &reserved.to_string(),
            "--link",
            "access-1",
        ],
    );
    assert_eq!(added["added"]["address"], reserved.to_string(), "{added}");
    assert_eq!(added["reloaded"]["generation"], 2, "{added}");
    let file = std::fs::read_to_string(net.path("reservations.toml")).unwrap();
    assert!(file.contains(&reserved_duid), "{file}");
    let listed = ctl_json(&socket, &["reservations", "list"]);
    assert_eq!(listed["reservations"][0]["duid"], reserved_duid, "{listed}");
    match exchange(&net, CLIENT_IF, reserved_client) {
        common::Exchange::Bound(address) => assert_eq!(address, reserved),
        other => panic!("reserved client: {other:?}\n{}", net.log("daemon")),
    }
    // The same client reserved twice is refused, naming the field; nothing changes.
    let (ok, _, stderr) = ctl(
        &socket,
        &[
            "reservations",
            "add",
            "--duid",
            &reserved_duid,
            "--address",
            "2001:db8:1::98",
        ],
    );
    assert!(!ok, "a second reservation for one client is refused");
    assert!(
        stderr.contains("duid") && stderr.contains("HTTP 422"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(net.path("reservations.toml")).unwrap(),
        file,
        "a refused change leaves the file as it was"
    );

    // Reload through the API: an invalid file is refused naming file and field, and the
    // running configuration keeps serving; the valid file is applied.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        good.replace(
            "prefix = \"2001:db8:1::/64\"",
            "prefix = \"2001:db8:1::/129\"",
        ),
    )
    .unwrap();
    let (ok, _, stderr) = ctl(&socket, &["reload"]);
    assert!(!ok, "an invalid configuration is refused");
    assert!(
        stderr.contains(&config_arg)
            && stderr.contains("link[0].pool[0].prefix")
            && stderr.contains("HTTP 422"),
        "{stderr}"
    );
    let (status, body) = raw_unix(&socket, "POST", "/v1/reload");
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "link[0].pool[0].prefix", "{body}");
    assert!(
        matches!(exchange(&net, CLIENT_IF, 300), common::Exchange::Bound(_)),
        "the running configuration still serves"
    );
    std::fs::write(&config, &good).unwrap();
    let reloaded = ctl_json(&socket, &["reload"]);
    assert_eq!(reloaded["reloaded"]["generation"], 3, "{reloaded}");
    let removed = ctl_json(
        &socket,
        &["reservations", "remove", "--duid", &reserved_duid],
    );
    assert_eq!(removed["reloaded"]["runtime_reservations"], 0, "{removed}");
    let listed = ctl_json(&socket, &["reservations", "list"]);
    assert_eq!(
        listed["reservations"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );

    // A second server (its own namespace and journal) on the same socket is refused, naming
    // it; the first keeps serving.
    let other_journal = arg(&net.path("other.journal"));
    net.spawn(
        "alt",
        "second",
        &[
            DAEMON,
            "run",
            "--config",
            &config_arg,
            "--journal",
            &other_journal,
            "--metrics",
            "off",
            "--control",
            &socket_arg,
        ],
    );
    let (status, log) = net.wait("second", Duration::from_secs(20));
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("control socket {socket_arg} is in use")),
        "{log}"
    );
    assert_eq!(ctl_json(&socket, &["server"])["pid"], server["pid"]);

    let (status, log) = net.stop("daemon", "-TERM");
    assert!(status.success(), "{log}");
    assert!(!socket.exists(), "the socket is removed on the way out");
}
