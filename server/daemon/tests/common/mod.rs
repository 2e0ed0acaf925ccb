//! The lab harness (`xdhcp6-lab`) for this crate's root tests, bound to the daemon under test.

#![allow(dead_code, unused_imports)] // Each test binary uses its own part of the harness.

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xdhcp6_engine::Destination;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::testing::{Client, ReplyView};

pub use xdhcp6_lab::capture::{self, CapturedMessage};
pub use xdhcp6_lab::dhclient::{ScriptEvent, lease_value};
pub use xdhcp6_lab::harness::{
    DaemonOptions, Datapath, Lab, captured_messages, contains, require_tools, run,
};
pub use xdhcp6_lab::http::metric_sum;
pub use xdhcp6_lab::{fixtures, perfdhcp};

/// The daemon under test.
pub const DAEMON: &str = env!("CARGO_BIN_EXE_xdhcp6d");

/// A lab for the daemon under test, named after the test (`tag`), one namespace per role.
pub fn lab(tag: &str, roles: &[&str]) -> Lab {
    Lab::new(DAEMON, tag, roles)
}

/// The rows of `xdhcp6d leases --journal J --json`.
pub fn journal_leases(journal: &Path) -> Vec<serde_json::Value> {
    xdhcp6_lab::harness::journal_leases(Path::new(DAEMON), journal)
}

/// How one client's Solicit and Request went.
#[derive(Debug, PartialEq, Eq)]
pub enum Exchange {
    NoAdvertise,
    NoReply,
    Bound(Ipv6Addr),
}

/// Client `n` solicits and requests an address from the `cli` namespace, on `client_if`.
pub fn exchange(net: &Lab, client_if: &str, n: u64) -> Exchange {
    on_client_socket(net, client_if, |socket, index| {
        let mut client = Client::new(n);
        client.xid = n as u32 & 0x00ff_ffff;
        let ask = |bytes: Vec<u8>, expect: MessageType| {
            ask_on(socket, index, client.xid, &bytes, expect, 1, ONE_WAIT)
        };
        let Some(advertise) = ask(
            client.solicit().ia_na(1, &[]).encode(),
            MessageType::Advertise,
        ) else {
            return Exchange::NoAdvertise;
        };
        let server = advertise.server_id.clone().unwrap();
        let offered = advertise.ia_na[0].live_addrs();
        let Some(reply) = ask(
            client.request(&server).ia_na(1, &offered).encode(),
            MessageType::Reply,
        ) else {
            return Exchange::NoReply;
        };
        match reply.ia_na.first().map(|ia| ia.live_addrs()) {
            Some(addrs) if !addrs.is_empty() => Exchange::Bound(addrs[0]),
            _ => Exchange::NoReply,
        }
    })
}

/// Runs `body` in the `cli` namespace with a client's socket (port 546, a read timeout of
/// one wait) and the index of `client_if`.
fn on_client_socket<T: Send>(
    net: &Lab,
    client_if: &str,
    body: impl FnOnce(&UdpSocket, u32) -> T + Send,
) -> T {
    net.netns("cli")
        .run(|| {
            let index = xdhcp6_datapath::interface_index(client_if).unwrap();
            let socket = UdpSocket::bind("[::]:546").unwrap();
            socket.set_read_timeout(Some(ONE_WAIT)).unwrap();
            body(&socket, index)
        })
        .unwrap()
}

/// How long a client waits for a reply to one transmission.
const ONE_WAIT: Duration = Duration::from_millis(700);

/// Sends `bytes` to All_DHCP_Relay_Agents_and_Servers through `socket` on the interface of
/// `index`, up to `tries` times (the same message again, as a client retransmits), and after
/// each waits up to `wait` for a reply of `expect` with transaction id `xid`. `socket`'s read
/// timeout bounds each receive.
pub fn ask_on(
    socket: &UdpSocket,
    index: u32,
    xid: u32,
    bytes: &[u8],
    expect: MessageType,
    tries: u32,
    wait: Duration,
) -> Option<ReplyView> {
    let servers = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, index);
    for _ in 0..tries {
        socket.send_to(bytes, servers).unwrap();
        let mut buf = [0u8; 1500];
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let Ok((len, _)) = socket.recv_from(&mut buf) else {
                break;
            };
            let reply = ReplyView::parse(&buf[..len], Destination::Client);
            if reply.msg_type == expect && reply.xid == xid {
                return Some(reply);
            }
        }
    }
    None
}

/// Client `n` sends `build`'s message from the `cli` namespace on `client_if` to the servers,
/// with transaction id `xid`, and waits for a reply of `expect` to that id: three tries, 700 ms
/// each.
pub fn ask(
    net: &Lab,
    client_if: &str,
    n: u64,
    xid: u32,
    build: impl FnOnce(&Client) -> Vec<u8> + Send,
    expect: MessageType,
) -> Option<ReplyView> {
    on_client_socket(net, client_if, |socket, index| {
        let mut client = Client::new(n);
        client.xid = xid & 0x00ff_ffff;
        ask_on(
            socket,
            index,
            client.xid,
            &build(&client),
            expect,
            3,
            ONE_WAIT,
        )
    })
}

/// A fresh, empty directory for one test, removed when the test ends.
pub struct Scratch(pub PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `xdhcp6-<suite>-<pid>-<name>` in the temporary directory, emptied.
pub fn scratch_dir(suite: &str, name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("xdhcp6-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}
