//! Bulk Leasequery over TCP (RFC 5460): the listener of `[leasequery] bulk-listen`.
//!
//! One thread, `xdhcp6-bulk-lq`, runs a current-thread tokio runtime with every listener and
//! connection; the datapath never waits for it. A connection reads one query at a time (a
//! two-octet length, then the LEASEQUERY), answers it with the engine's
//! [`BulkAnswer`](xdhcp6_engine::engine::BulkAnswer) a chunk at a time (about 64 KiB, written
//! and awaited before the next chunk is encoded, so a slow reader only slows its own answer
//! and a connection holds at most one chunk and one table shard's selected records), then
//! reads the next query: queries sent back to back are answered one after the other, never
//! interleaved. The table is walked one shard lock at a time, never across an await.
//!
//! Limits (`[leasequery]`, read from the engine serving when a connection or query starts):
//! `bulk-max-connections` served at once (more wait in the kernel's backlog),
//! `bulk-idle-timeout` for a query to arrive or a chunk to be taken, `bulk-max-queries` per
//! connection (the next gets QueryTerminated). A requestor outside `requestors` gets
//! NotAllowed and the connection is closed.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use xdhcp6_engine::Engine;
use xdhcp6_engine::engine::BulkResult;

/// The bytes encoded before they are written and awaited.
const CHUNK: usize = 64 * 1024;

/// The engine serving now (a reload replaces it; the lease table stays).
pub type EngineProbe = Arc<dyn Fn() -> Arc<Engine> + Send + Sync>;

/// Counters of the Bulk Leasequery listener, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct BulkStats {
    open: AtomicU64,
    accepted: AtomicU64,
    queries: [AtomicU64; BulkResult::ALL.len()],
    dropped: AtomicU64,
    streamed: AtomicU64,
}

impl BulkStats {
    /// Connections open now.
    pub fn open_connections(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections accepted since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Queries answered, by result.
    pub fn queries(&self) -> impl Iterator<Item = (BulkResult, u64)> + '_ {
        BulkResult::ALL
            .iter()
            .zip(&self.queries)
            .map(|(result, count)| (*result, count.load(Ordering::Relaxed)))
    }

    /// Messages that got no answer (not a LEASEQUERY, no Client Identifier, another
    /// server's); their connection was closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Bindings sent (one per Client Data).
    pub fn leases_streamed(&self) -> u64 {
        self.streamed.load(Ordering::Relaxed)
    }

    fn count(&self, result: BulkResult) {
        if let Some(index) = BulkResult::ALL.iter().position(|own| *own == result) {
            self.queries[index].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The running listener; dropping it stops the thread and closes every connection.
#[derive(Debug)]
pub struct BulkHandle {
    local_addrs: Vec<SocketAddr>,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl BulkHandle {
    /// The addresses listened on (the ports the kernel chose for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Restricts the listener's thread to `cores` (none: left where it is; see
    /// [`crate::placement::place`]). Returns whether it was pinned.
    pub fn place(&self, cores: &[usize]) -> io::Result<bool> {
        match &self.thread {
            Some(thread) => crate::placement::place(thread, cores),
            None => Ok(false),
        }
    }
}

impl Drop for BulkHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the Bulk Leasequery thread panicked");
        }
    }
}

/// What every connection shares.
struct Shared {
    engine: EngineProbe,
    stats: Arc<BulkStats>,
    clock: fn() -> u32,
}

/// Binds `listen` (at once, so that a taken port fails the start) and serves Bulk Leasequery
/// there with `max_connections` at once, on its own thread; `clock` gives the engine's time
/// (Unix seconds).
pub fn spawn(
    listen: &[SocketAddr],
    max_connections: usize,
    engine: EngineProbe,
    stats: Arc<BulkStats>,
    clock: fn() -> u32,
) -> io::Result<BulkHandle> {
    let mut std_listeners = Vec::new();
    let mut local_addrs = Vec::new();
    for address in listen {
        let listener = StdTcpListener::bind(address)
            .map_err(|error| io::Error::new(error.kind(), format!("{address}: {error}")))?;
        listener.set_nonblocking(true)?;
        local_addrs.push(listener.local_addr()?);
        std_listeners.push(listener);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let listeners = {
        let _context = runtime.enter();
        std_listeners
            .into_iter()
            .map(TcpListener::from_std)
            .collect::<io::Result<Vec<_>>>()?
    };
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(Shared {
        engine,
        stats,
        clock,
    });
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    let thread = thread::Builder::new()
        .name("xdhcp6-bulk-lq".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                for listener in listeners {
                    tokio::spawn(accept(
                        listener,
                        Arc::clone(&shared),
                        Arc::clone(&permits),
                        stopped.clone(),
                    ));
                }
                let mut stopped = stopped;
                while !*stopped.borrow() {
                    if stopped.changed().await.is_err() {
                        break;
                    }
                }
            });
            // Dropping the runtime here closes the connections still open.
        })?;
    tracing::info!(addresses = ?local_addrs, max_connections, "Bulk Leasequery listening");
    Ok(BulkHandle {
        local_addrs,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Accepts connections on one listener while a slot is free.
async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    stopped: watch::Receiver<bool>,
) {
    loop {
        // RFC 5460 §5.6 (BULK_LQ_MAX_CONNS), in substance: a server limits the connections
        // it serves at once. Beyond the limit, connections wait in the kernel's backlog.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, usually: wait instead of spinning on the error.
                tracing::warn!(%error, "Bulk Leasequery cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        let stopped = stopped.clone();
        tokio::spawn(async move {
            shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
            shared.stats.open.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = serve(stream, peer, &shared, stopped).await {
                tracing::debug!(%peer, %error, "Bulk Leasequery connection ended");
            }
            shared.stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// The requestor's address as `[leasequery] requestors` knows it (an IPv4 peer as
/// IPv4-mapped, which no IPv6 prefix list names unless it says so).
fn requestor_of(peer: SocketAddr) -> Ipv6Addr {
    match peer.ip() {
        IpAddr::V6(address) => address,
        IpAddr::V4(address) => address.to_ipv6_mapped(),
    }
}

/// Answers the queries of one connection until the requestor closes it, stays idle, is
/// refused or the server stops.
async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    stopped: watch::Receiver<bool>,
) -> io::Result<()> {
    let requestor = requestor_of(peer);
    let _ = stream.set_nodelay(true);
    let stats = &shared.stats;
    let mut request = Vec::new();
    let mut out = Vec::with_capacity(CHUNK + xdhcp6_engine::engine::MAX_BULK_MESSAGE + 2);
    let mut queries: u32 = 0;
    loop {
        let engine = (shared.engine)();
        let limits = engine.config().leasequery.bulk.clone();
        let idle = Duration::from_secs(u64::from(limits.idle_timeout));
        // RFC 5460 §5.1, in substance: every message on the connection is preceded by its
        // length in two octets.
        let mut length = [0u8; 2];
        match tokio::time::timeout(idle, stream.read_exact(&mut length)).await {
            Ok(Ok(_)) => {}
            // The requestor closed the connection between queries.
            Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(error)) => return Err(error),
            // RFC 5460 §5.6 (BULK_LQ_DATA_TIMEOUT), in substance: a server may close a
            // connection on which nothing arrives for that long.
            Err(_) => {
                tracing::debug!(%peer, "Bulk Leasequery connection idle: closed");
                return Ok(());
            }
        }
        // At most 65,535 bytes: the length's own bound.
        request.resize(usize::from(u16::from_be_bytes(length)), 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut request)).await {
            Ok(result) => {
                result?;
            }
            Err(_) => return Ok(()),
        }
        queries = queries.saturating_add(1);
        let now = (shared.clock)();
        let mut answer = match engine.bulk_leasequery(&request, requestor, now) {
            Ok(answer) => answer,
            Err(reason) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, ?reason, "Bulk Leasequery message dropped: closed");
                return Ok(());
            }
        };
        out.clear();
        let mut last = false;
        if queries > limits.max_queries {
            answer.terminate(&engine, "too many queries on one connection", &mut out);
            last = true;
        }
        let mut counted = 0;
        loop {
            let finished = last || answer.write_more(&engine, now, &mut out, CHUNK);
            let streamed = answer.streamed();
            stats
                .streamed
                .fetch_add(streamed - counted, Ordering::Relaxed);
            counted = streamed;
            // The chunk is written and awaited before the next is encoded: a reader that
            // takes nothing for `bulk-idle-timeout` loses its connection.
            match tokio::time::timeout(idle, stream.write_all(&out)).await {
                Ok(result) => result?,
                Err(_) => {
                    stats.count(BulkResult::Terminated);
                    tracing::debug!(%peer, "Bulk Leasequery reader stalled: closed");
                    return Ok(());
                }
            }
            out.clear();
            if finished {
                break;
            }
            if *stopped.borrow() {
                // RFC 5460 §5.5, in substance: QueryTerminated tells the requestor that the
                // server ended the query before its end.
                answer.terminate(&engine, "server stopping", &mut out);
                last = true;
            }
        }
        stats.count(answer.result());
        // A refused requestor is told once, then the connection closes; so is one past
        // its query limit.
        if last || answer.result() == BulkResult::NotAllowed {
            stream.shutdown().await?;
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use xdhcp6_engine::proto::{MessageType, StatusCode};
    use xdhcp6_engine::testing::bulk_leasequery::{BulkReplies, by_relay_id};
    use xdhcp6_engine::testing::{Client, Relay, Server, T0, ip};

    use super::*;

    const RELAY_ID: &[u8] = &[0, 3, 0, 1, 0xc0, 0, 0, 0, 0, 1];

    /// A server with three clients bound through one relay, whose configuration has
    /// `extra` under `[leasequery]`.
    fn server(extra: &str) -> Server {
        let mut server = Server::new(&format!(
            r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:07"
salt = "bulk-listener"

[leasequery]
requestors = ["::1/128"]
{extra}

[[link]]
name = "cable"
relay-prefixes = ["2001:db8:ffff:1::/64"]

[[link.pool]]
prefix = "2001:db8:1::/64"
"#
        ));
        for n in 1..=3 {
            let client =
                Client::new(n).via(Relay::new(ip("2001:db8:ffff:1::1")).option(53, RELAY_ID));
            server.bind_address(&client, 1);
        }
        server
    }

    fn now() -> u32 {
        T0 + 1
    }

    fn listen(server: &Server, max_connections: usize) -> (BulkHandle, Arc<BulkStats>) {
        let engine = Arc::clone(&server.engine);
        let stats = Arc::new(BulkStats::default());
        let handle = spawn(
            &["[::1]:0".parse().unwrap()],
            max_connections,
            Arc::new(move || Arc::clone(&engine)),
            Arc::clone(&stats),
            now,
        )
        .unwrap();
        (handle, stats)
    }

    fn connect(handle: &BulkHandle) -> TcpStream {
        let stream = TcpStream::connect(handle.local_addrs()[0]).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
    }

    fn send(stream: &mut TcpStream, message: &[u8]) {
        let mut frame = (message.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(message);
        stream.write_all(&frame).unwrap();
    }

    fn query(xid: u32) -> Vec<u8> {
        let mut requestor = Client::new(9000);
        requestor.xid = xid;
        by_relay_id(&requestor, RELAY_ID, Ipv6Addr::UNSPECIFIED).encode()
    }

    /// Reads frames up to a DONE or a REPLY with a status.
    fn answer(stream: &mut TcpStream) -> BulkReplies {
        let mut bytes = Vec::new();
        loop {
            let mut length = [0u8; 2];
            stream.read_exact(&mut length).unwrap();
            let mut message = vec![0; usize::from(u16::from_be_bytes(length))];
            stream.read_exact(&mut message).unwrap();
            bytes.extend_from_slice(&length);
            bytes.extend_from_slice(&message);
            let replies = BulkReplies::parse(&bytes);
            let last = replies.messages.last().unwrap();
            if last.msg_type == MessageType::LeasequeryDone
                || last.status_code() != StatusCode::Success
            {
                return replies;
            }
        }
    }

    fn closed(stream: &mut TcpStream) -> bool {
        let mut rest = Vec::new();
        matches!(stream.read_to_end(&mut rest), Ok(0))
    }

    #[test]
    fn queries_on_one_connection_are_answered_in_order_up_to_the_limit() {
        let server = server("bulk-max-queries = 2");
        let (handle, stats) = listen(&server, 4);
        let mut stream = connect(&handle);
        // Both queries written before either answer is read.
        send(&mut stream, &query(1));
        send(&mut stream, &query(2));
        for xid in [1, 2] {
            let replies = answer(&mut stream);
            assert_eq!(replies.client_data().len(), 3);
            assert!(replies.messages.iter().all(|m| m.xid == xid));
        }
        // The third is past bulk-max-queries: QueryTerminated, and the connection closes.
        send(&mut stream, &query(3));
        let replies = answer(&mut stream);
        assert_eq!(replies.types(), vec![MessageType::LeasequeryReply]);
        assert_eq!(replies.reply().status_code(), StatusCode::QueryTerminated);
        assert!(closed(&mut stream));
        assert_eq!(stats.leases_streamed(), 6);
        let count = |wanted: BulkResult| {
            stats
                .queries()
                .find(|(result, _)| *result == wanted)
                .map_or(0, |(_, count)| count)
        };
        assert_eq!(count(BulkResult::Found), 2);
        assert_eq!(count(BulkResult::Terminated), 1);
        assert_eq!(stats.accepted(), 1);
    }

    #[test]
    fn a_message_that_gets_no_answer_closes_the_connection() {
        let server = server("");
        let (handle, stats) = listen(&server, 4);
        let mut stream = connect(&handle);
        send(&mut stream, &Client::new(5).solicit().encode());
        assert!(closed(&mut stream));
        assert_eq!(stats.dropped(), 1);
    }

    #[test]
    fn connections_past_the_limit_wait_for_a_free_slot() {
        let server = server("");
        let (handle, _stats) = listen(&server, 1);
        let mut first = connect(&handle);
        send(&mut first, &query(1));
        assert_eq!(answer(&mut first).client_data().len(), 3);
        // The second waits in the backlog while the first holds the only slot.
        let mut second = connect(&handle);
        send(&mut second, &query(2));
        second
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert!(second.read(&mut byte).is_err(), "answered past the limit");
        drop(first);
        second
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        assert_eq!(answer(&mut second).client_data().len(), 3);
    }

    #[test]
    fn a_reader_that_stops_reading_loses_its_connection() {
        // About 13 MB of answer: more than the socket buffers hold (a receive buffer grows
        // only as its reader takes data; this one takes none).
        let engine = xdhcp6_engine::testing::bulk_leasequery::one_relay_engine_with(
            200_000,
            "bulk-idle-timeout = 1",
        );
        let stats = Arc::new(BulkStats::default());
        let probe = Arc::clone(&engine);
        let handle = spawn(
            &["[::1]:0".parse().unwrap()],
            4,
            Arc::new(move || Arc::clone(&probe)),
            Arc::clone(&stats),
            now,
        )
        .unwrap();
        let mut stream = connect(&handle);
        send(
            &mut stream,
            &xdhcp6_engine::testing::bulk_leasequery::bench_query(7),
        );
        // Nothing is read until the server has given up (1 s without progress), then the
        // rest of what it wrote arrives, and the end of the stream.
        std::thread::sleep(Duration::from_secs(3));
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received);
        assert!(received.len() < 200_000 * 64, "{} bytes", received.len());
        let terminated = stats
            .queries()
            .find(|(result, _)| *result == BulkResult::Terminated)
            .map_or(0, |(_, count)| count);
        assert_eq!(terminated, 1);
        assert!(stats.leases_streamed() < 200_000);
    }

    #[test]
    fn an_idle_connection_is_closed() {
        let server = server("bulk-idle-timeout = 1");
        let (handle, _stats) = listen(&server, 4);
        let mut stream = connect(&handle);
        assert!(closed(&mut stream));
    }

    #[test]
    fn ipv4_peers_are_mapped() {
        let peer: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        assert_eq!(
            requestor_of(peer),
            "::ffff:192.0.2.1".parse::<Ipv6Addr>().unwrap()
        );
        let peer: SocketAddr = "[2001:db8::5]:40000".parse().unwrap();
        assert_eq!(
            requestor_of(peer),
            "2001:db8::5".parse::<Ipv6Addr>().unwrap()
        );
    }
}
