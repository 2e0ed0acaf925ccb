//! Asking one server: a LEASEQUERY over UDP with retransmission, or a Bulk Leasequery over
//! TCP (RFC 5460 §5.1: each message after a two-byte length), within one deadline.

use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, UdpSocket};
use tokio::time::{Instant, timeout_at};
use xdhcp6_engine::proto::{MessageType, StatusCode};

use super::wire::{self, Answer};

/// The first UDP retransmission at the latest; it doubles after each (RFC 9915 §15 backoff,
/// without randomisation), within the per-server timeout.
const FIRST_RETRANSMISSION: Duration = Duration::from_secs(1);

/// The most messages one TCP answer is read to: a server streaming without end cannot make
/// the requestor grow without bound (the answer is then marked cut short).
pub const MAX_TCP_MESSAGES: usize = 1_000_000;

/// How one server's exchange ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// The server's messages: one LEASEQUERY-REPLY over UDP; over TCP the REPLY, the
    /// LEASEQUERY-DATA messages and the LEASEQUERY-DONE. `complete` is false when a TCP
    /// stream stopped (deadline, closed connection) before its DONE.
    Answered {
        /// The messages, in order.
        answers: Vec<Answer>,
        /// Whether the answer ended as the protocol ends it.
        complete: bool,
    },
    /// Nothing came back before the deadline.
    Timeout,
    /// The server could not be reached: its port refused (ICMP port unreachable, TCP reset),
    /// no route, or an answer that does not parse.
    Unreachable(String),
}

/// Where the requestor sends from: `source` (an address the servers' `[leasequery]
/// requestors` list) or the address the kernel picks.
fn local(source: Option<Ipv6Addr>, server: SocketAddr) -> SocketAddr {
    match (source, server) {
        (Some(address), _) => SocketAddr::V6(SocketAddrV6::new(address, 0, 0, 0)),
        (None, SocketAddr::V4(_)) => SocketAddr::from(([0, 0, 0, 0], 0)),
        (None, SocketAddr::V6(_)) => {
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0))
        }
    }
}

/// A refused or unreachable peer, in words.
fn unreachable(error: &io::Error) -> Exchange {
    let what = match error.kind() {
        io::ErrorKind::ConnectionRefused => "refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        _ => error.to_string(),
    };
    Exchange::Unreachable(what)
}

/// One LEASEQUERY over UDP: sent at once, again after 1 s (or a quarter of `timeout` when
/// shorter), doubling, until the LEASEQUERY-REPLY with its transaction id comes or
/// `timeout` has passed.
pub async fn udp(
    server: SocketAddr,
    source: Option<Ipv6Addr>,
    query: &[u8],
    xid: u32,
    timeout: Duration,
) -> Exchange {
    let deadline = Instant::now() + timeout;
    let socket = match UdpSocket::bind(local(source, server)).await {
        Ok(socket) => socket,
        Err(error) => return Exchange::Unreachable(format!("cannot bind the source: {error}")),
    };
    // Connected, so that an ICMP port unreachable comes back as ECONNREFUSED.
    if let Err(error) = socket.connect(server).await {
        return unreachable(&error);
    }
    let mut wait = FIRST_RETRANSMISSION
        .min(timeout / 4)
        .max(Duration::from_millis(10));
    let mut buf = vec![0u8; 65_535];
    loop {
        if let Err(error) = socket.send(query).await {
            return unreachable(&error);
        }
        let resend = (Instant::now() + wait).min(deadline);
        loop {
            match timeout_at(resend, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(error)) => return unreachable(&error),
                Ok(Ok(len)) => {
                    // Not ours (a late answer to an earlier query, or garbage): wait on.
                    if let Ok(answer) = wire::parse(&buf[..len])
                        && answer.msg_type == MessageType::LeasequeryReply
                        && answer.xid == xid & 0x00ff_ffff
                    {
                        return Exchange::Answered {
                            answers: vec![answer],
                            complete: true,
                        };
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Exchange::Timeout;
        }
        wait = wait.saturating_mul(2);
    }
}

/// One Bulk Leasequery over TCP (RFC 5460): connect, send the query after its two-byte
/// length, read framed answers until LEASEQUERY-DONE, an answer that ends the query (an error
/// status, a REPLY without Client Data), the connection's end or the deadline.
pub async fn tcp(
    server: SocketAddr,
    source: Option<Ipv6Addr>,
    query: &[u8],
    xid: u32,
    timeout: Duration,
) -> Exchange {
    let deadline = Instant::now() + timeout;
    let socket = match server {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    };
    let socket = match socket.and_then(|socket| {
        socket.bind(local(source, server))?;
        Ok(socket)
    }) {
        Ok(socket) => socket,
        Err(error) => return Exchange::Unreachable(format!("cannot bind the source: {error}")),
    };
    let mut stream = match timeout_at(deadline, socket.connect(server)).await {
        Err(_) => return Exchange::Timeout,
        Ok(Err(error)) => return unreachable(&error),
        Ok(Ok(stream)) => stream,
    };
    let Ok(length) = u16::try_from(query.len()) else {
        return Exchange::Unreachable("the query is longer than 65,535 bytes".to_owned());
    };
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    match timeout_at(deadline, stream.write_all(&framed)).await {
        Err(_) => return Exchange::Timeout,
        Ok(Err(error)) => return unreachable(&error),
        Ok(Ok(())) => {}
    }
    let mut answers = Vec::new();
    let mut buf = vec![0u8; 65_535];
    let complete = loop {
        let read = async {
            let len = usize::from(stream.read_u16().await?);
            stream.read_exact(&mut buf[..len]).await?;
            Ok::<usize, io::Error>(len)
        };
        let len = match timeout_at(deadline, read).await {
            Err(_) if answers.is_empty() => return Exchange::Timeout,
            Err(_) => break false,
            Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => break false,
            Ok(Err(error)) if answers.is_empty() => return unreachable(&error),
            Ok(Err(_)) => break false,
            Ok(Ok(len)) => len,
        };
        let answer = match wire::parse(&buf[..len]) {
            Ok(answer) => answer,
            Err(error) => return Exchange::Unreachable(format!("a malformed answer: {error}")),
        };
        // Several queries may share a connection (RFC 5460 §5.4): ours has one, so another
        // transaction id is not an answer to it.
        if answer.xid != xid & 0x00ff_ffff {
            continue;
        }
        let msg_type = answer.msg_type;
        let ends = match msg_type {
            MessageType::LeasequeryDone => true,
            MessageType::LeasequeryReply => {
                answer.status_code() != StatusCode::Success
                    || (answer.binding.is_none() && answer.client_links.is_empty())
            }
            MessageType::LeasequeryData => false,
            // Anything else on a Leasequery connection is not what RFC 5460 sends.
            other => {
                return Exchange::Unreachable(format!("an unexpected {other:?} message"));
            }
        };
        answers.push(answer);
        if ends {
            break true;
        }
        if answers.len() >= MAX_TCP_MESSAGES {
            break false;
        }
    };
    Exchange::Answered { answers, complete }
}
