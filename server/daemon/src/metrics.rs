//! The Prometheus metrics endpoint: worker counters, pool slices, journal lag and XDP counters
//! in the text exposition format (version 0.0.4).
//!
//! [`render`] is pure: it reads the [`Sources`] the runtime wired and formats one scrape.
//! [`spawn`] serves it over a minimal HTTP/1.1 server on a thread of its own (a current-thread
//! tokio runtime), off the hot path: workers only bump their own relaxed atomics, and the sums
//! are taken here when Prometheus asks. Every connection answers one request and is closed;
//! requests are bounded in size and must arrive within a read timeout, and only a few
//! connections are served at once, so a slow or hostile client cannot hold the endpoint.

use std::fmt::{self, Display, Write as _};
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use xdhcp6_common::{Counters, PassReason};
use xdhcp6_engine::engine::PoolUsage;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::table::IaKind;
use xdhcp6_engine::{DropReason, Engine};

use crate::frame::FrameError;
use crate::reload::ReloadCounts;
use crate::stats::{MESSAGE_TYPES, WorkerStats, XSK_COUNTER_NAMES};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The path the endpoint answers; every other path is 404.
pub const PATH: &str = "/metrics";

/// How long a connection is kept open after its response, reading what the client still sends.
const LINGER: Duration = Duration::from_secs(1);

/// The most bytes read and discarded while lingering.
const LINGER_BYTES: usize = 64 * 1024;

/// Label values of the per-type counters, indexed like [`WorkerStats::received`] (RFC 9915
/// §7.3 codes; 0 collects unknown types).
const MESSAGE_TYPE_NAMES: [&str; MESSAGE_TYPES] = [
    "unknown",
    "solicit",
    "advertise",
    "request",
    "confirm",
    "renew",
    "rebind",
    "reply",
    "release",
    "decline",
    "reconfigure",
    "information_request",
    "relay_forw",
    "relay_repl",
    "leasequery",
    "leasequery_reply",
    "leasequery_done",
    "leasequery_data",
];

/// A value read each time the endpoint is scraped.
pub type Probe<T> = Arc<dyn Fn() -> T + Send + Sync>;

/// What the endpoint reports; the runtime wires the parts it has, the rest is left out.
#[derive(Clone, Default)]
pub struct Sources {
    /// The counters of every datapath worker (summed per scrape).
    pub workers: Vec<Arc<WorkerStats>>,
    /// The engine currently serving (a probe, so that a configuration reload shows at once):
    /// lease table size and pool slices.
    pub engine: Option<Probe<Arc<Engine>>>,
    /// Lease events accepted by the journal but not yet on disk.
    pub journal_lag: Option<Probe<u64>>,
    /// Whether the journal writes, and what its replay at start skipped.
    pub journal_health: Option<Probe<JournalHealth>>,
    /// The XDP program's counters summed over CPUs; `None` while no program is attached.
    pub xdp: Option<Probe<Option<Counters>>>,
    /// Configuration reloads and the generation served.
    pub reloads: Option<Probe<ReloadCounts>>,
    /// The Bulk Leasequery listener's counters.
    pub bulk_leasequery: Option<Arc<crate::bulk_leasequery::BulkStats>>,
    /// The DNS updater's counters (a link has `[link.ddns]`).
    pub ddns: Option<Probe<crate::ddns::DdnsCounts>>,
}

/// The lease journal's state, for the `xdhcp6_journal_*` families.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalHealth {
    /// Whether writes and syncs succeed (while they fail, no binding is made or extended).
    pub healthy: bool,
    /// Times the writes started failing since start.
    pub write_failures: u64,
    /// Damaged records skipped by the replay at start.
    pub damaged_records: u64,
    /// Bytes of those records.
    pub skipped_bytes: u64,
}

impl Sources {
    /// Sources reporting the counters of `workers` only.
    pub fn new(workers: Vec<Arc<WorkerStats>>) -> Self {
        Self {
            workers,
            ..Self::default()
        }
    }

    /// The same sources, reporting a fixed `engine`.
    pub fn with_engine(self, engine: Arc<Engine>) -> Self {
        self.with_engine_probe(Arc::new(move || Arc::clone(&engine)))
    }

    /// The same sources, reporting whichever engine `current` returns at scrape time.
    pub fn with_engine_probe(mut self, current: Probe<Arc<Engine>>) -> Self {
        self.engine = Some(current);
        self
    }

    /// The same sources, reporting the journal lag that `lag` returns.
    pub fn with_journal_lag(mut self, lag: Probe<u64>) -> Self {
        self.journal_lag = Some(lag);
        self
    }

    /// The same sources, reporting the DNS updater's counters when there is an updater.
    pub fn with_ddns(mut self, ddns: Option<Probe<crate::ddns::DdnsCounts>>) -> Self {
        self.ddns = ddns;
        self
    }

    /// The same sources, reporting the journal state that `health` returns.
    pub fn with_journal_health(mut self, health: Probe<JournalHealth>) -> Self {
        self.journal_health = Some(health);
        self
    }

    /// The same sources, reporting the XDP counters that `counters` returns.
    pub fn with_xdp(mut self, counters: Probe<Option<Counters>>) -> Self {
        self.xdp = Some(counters);
        self
    }

    /// The same sources, reporting the reload counts that `counts` returns.
    pub fn with_reloads(mut self, counts: Probe<ReloadCounts>) -> Self {
        self.reloads = Some(counts);
        self
    }

    /// The same sources, reporting the Bulk Leasequery counters `stats`.
    pub fn with_bulk_leasequery(mut self, stats: Arc<crate::bulk_leasequery::BulkStats>) -> Self {
        self.bulk_leasequery = Some(stats);
        self
    }
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("workers", &self.workers.len())
            .field("engine", &self.engine.is_some())
            .field("journal_lag", &self.journal_lag.is_some())
            .field("journal_health", &self.journal_health.is_some())
            .field("xdp", &self.xdp.is_some())
            .field("reloads", &self.reloads.is_some())
            .field("bulk_leasequery", &self.bulk_leasequery.is_some())
            .finish()
    }
}

/// Formats one scrape of `sources` in the Prometheus text format.
///
/// Worker counters are always present, at 0 included (client message types received, server
/// types sent, every drop reason), so that rates work from the first scrape; the engine,
/// journal and XDP families appear when their source is wired.
pub fn render(sources: &Sources) -> String {
    let mut out = Exposition::default();
    out.family(
        "xdhcp6_build_info",
        "gauge",
        "Always 1; the version of the running xdhcp6d.",
    );
    out.sample(
        "xdhcp6_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    render_workers(&mut out, &sources.workers);
    if let Some(engine) = &sources.engine {
        render_engine(&mut out, &engine());
    }
    if let Some(lag) = &sources.journal_lag {
        out.family(
            "xdhcp6_journal_lag_events",
            "gauge",
            "Lease events handed to the journal writer and not yet on disk.",
        );
        out.value("xdhcp6_journal_lag_events", lag());
    }
    if let Some(health) = &sources.journal_health {
        render_journal(&mut out, health());
    }
    if let Some(xdp) = &sources.xdp {
        render_xdp(&mut out, xdp());
    }
    if let Some(ddns) = &sources.ddns {
        render_ddns(&mut out, ddns());
    }
    if let Some(reloads) = &sources.reloads {
        render_reloads(&mut out, reloads());
    }
    if let Some(stats) = &sources.bulk_leasequery {
        render_bulk_leasequery(&mut out, stats);
    }
    out.text
}

fn render_bulk_leasequery(out: &mut Exposition, stats: &crate::bulk_leasequery::BulkStats) {
    out.family(
        "xdhcp6_bulk_leasequery_connections",
        "gauge",
        "Bulk Leasequery (RFC 5460) TCP connections open now.",
    );
    out.value(
        "xdhcp6_bulk_leasequery_connections",
        stats.open_connections(),
    );
    out.family(
        "xdhcp6_bulk_leasequery_connections_total",
        "counter",
        "Bulk Leasequery TCP connections accepted.",
    );
    out.value("xdhcp6_bulk_leasequery_connections_total", stats.accepted());
    out.family(
        "xdhcp6_bulk_leasequery_queries_total",
        "counter",
        "Bulk Leasequery queries answered, by result: found (bindings streamed), no_binding, \
         the refusals not_allowed, not_configured, unknown_query_type, malformed_query, and \
         terminated (QueryTerminated: a stalled reader, the per-connection query limit, a \
         stop).",
    );
    for (result, count) in stats.queries() {
        out.sample(
            "xdhcp6_bulk_leasequery_queries_total",
            &[("result", result.as_str())],
            count,
        );
    }
    out.family(
        "xdhcp6_bulk_leasequery_dropped_total",
        "counter",
        "Bulk Leasequery messages that got no answer (not a LEASEQUERY, no Client Identifier, \
         another server's Server Identifier); their connection was closed.",
    );
    out.value("xdhcp6_bulk_leasequery_dropped_total", stats.dropped());
    out.family(
        "xdhcp6_bulk_leasequery_leases_streamed_total",
        "counter",
        "Bindings sent by Bulk Leasequery, one per Client Data.",
    );
    out.value(
        "xdhcp6_bulk_leasequery_leases_streamed_total",
        stats.leases_streamed(),
    );
}

fn render_reloads(out: &mut Exposition, counts: ReloadCounts) {
    out.family(
        "xdhcp6_config_reloads_total",
        "counter",
        "Configuration reloads (SIGHUP, the control API, runtime reservation changes), by \
         result; a failed one left the running configuration serving.",
    );
    out.sample(
        "xdhcp6_config_reloads_total",
        &[("result", "ok")],
        counts.ok,
    );
    out.sample(
        "xdhcp6_config_reloads_total",
        &[("result", "failed")],
        counts.failed,
    );
    out.family(
        "xdhcp6_config_generation",
        "gauge",
        "The configuration generation served: 1 at start, one more per successful reload.",
    );
    out.value("xdhcp6_config_generation", counts.generation);
}

fn render_ddns(out: &mut Exposition, counts: crate::ddns::DdnsCounts) {
    let families: [(&str, &str, &str, u64); 6] = [
        (
            "xdhcp6_ddns_updates_sent_total",
            "counter",
            "DNS UPDATE messages sent to the DNS servers (every try of every update).",
            counts.updates_sent,
        ),
        (
            "xdhcp6_ddns_succeeded_total",
            "counter",
            "DNS updates (a client's AAAA, DHCID and PTR records written or removed) that \
             succeeded.",
            counts.succeeded,
        ),
        (
            "xdhcp6_ddns_failed_total",
            "counter",
            "DNS updates given up after every try (no answer, refused, a bad signature).",
            counts.failed,
        ),
        (
            "xdhcp6_ddns_conflicts_total",
            "counter",
            "DNS updates refused by the RFC 4703 rules: the name holds another client's DHCID \
             and was left alone.",
            counts.conflicts,
        ),
        (
            "xdhcp6_ddns_queue_depth",
            "gauge",
            "DNS updates queued for the DNS servers and not done.",
            counts.queue_depth,
        ),
        (
            "xdhcp6_ddns_dropped_total",
            "counter",
            "DNS updates dropped because the updater's queue was full (DHCP replies never wait \
             for DNS).",
            counts.dropped,
        ),
    ];
    for (name, kind, help, value) in families {
        out.family(name, kind, help);
        out.value(name, value);
    }
}

fn render_journal(out: &mut Exposition, health: JournalHealth) {
    out.family(
        "xdhcp6_journal_healthy",
        "gauge",
        "1 while the lease journal writes; 0 while its writes fail (a full disk, an I/O \
         error): the writer retries, and Solicit, Request, Renew and Rebind are dropped \
         (xdhcp6_dropped_total reason journal_unavailable) until it writes again.",
    );
    out.value("xdhcp6_journal_healthy", u64::from(health.healthy));
    out.family(
        "xdhcp6_journal_write_failures_total",
        "counter",
        "Times the lease journal's writes started failing.",
    );
    out.value("xdhcp6_journal_write_failures_total", health.write_failures);
    out.family(
        "xdhcp6_journal_damaged_records",
        "gauge",
        "Damaged stretches of records the replay at start skipped (the file is kept as \
         <journal>.corrupt).",
    );
    out.value("xdhcp6_journal_damaged_records", health.damaged_records);
    out.family(
        "xdhcp6_journal_skipped_bytes",
        "gauge",
        "Bytes of the damaged records the replay at start skipped.",
    );
    out.value("xdhcp6_journal_skipped_bytes", health.skipped_bytes);
}

fn render_workers(out: &mut Exposition, workers: &[Arc<WorkerStats>]) {
    let sum = |counter: fn(&WorkerStats) -> &AtomicU64| crate::stats::total(workers, counter);
    let sum_at = |array: fn(&WorkerStats) -> &[AtomicU64], index: usize| -> u64 {
        workers
            .iter()
            .filter_map(|stats| array(stats).get(index))
            .map(|counter| counter.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    };

    out.family(
        "xdhcp6_messages_received_total",
        "counter",
        "DHCPv6 messages received, by the type of the client message (inside relay chains).",
    );
    for (index, name) in MESSAGE_TYPE_NAMES.iter().enumerate() {
        let count = sum_at(|stats| &stats.received, index);
        // Client types always (rates work from the first scrape), server types when seen.
        if count > 0 || !message_type(index).is_server_to_client() {
            out.sample("xdhcp6_messages_received_total", &[("type", name)], count);
        }
    }
    out.family(
        "xdhcp6_messages_sent_total",
        "counter",
        "DHCPv6 replies sent, by message type.",
    );
    for (index, name) in MESSAGE_TYPE_NAMES.iter().enumerate() {
        let count = sum_at(|stats| &stats.sent, index);
        // Server types always, anything else only if a datapath ever counted it.
        if count > 0 || message_type(index).is_server_to_client() {
            out.sample("xdhcp6_messages_sent_total", &[("type", name)], count);
        }
    }
    out.family(
        "xdhcp6_dropped_total",
        "counter",
        "DHCPv6 messages answered with nothing, by reason.",
    );
    for (index, reason) in DropReason::ALL.iter().enumerate() {
        out.sample(
            "xdhcp6_dropped_total",
            &[("reason", reason.as_str())],
            sum_at(|stats| &stats.dropped, index),
        );
    }
    out.family(
        "xdhcp6_unknown_link_answered_total",
        "counter",
        "Relayed Solicit and Request messages from a link no [[link]] selects, answered with \
         NoAddrsAvail or NoPrefixAvail (server.unknown-link); dropped ones count as \
         xdhcp6_dropped_total with reason unknown_link.",
    );
    out.value(
        "xdhcp6_unknown_link_answered_total",
        sum(|stats| &stats.unknown_link_answered),
    );
    out.family(
        "xdhcp6_bad_frames_total",
        "counter",
        "Frames the datapath could not use (not IPv6/UDP, bad checksum, too large).",
    );
    out.value("xdhcp6_bad_frames_total", sum(|stats| &stats.bad_frames));
    out.family(
        "xdhcp6_frames_dropped_total",
        "counter",
        "Frames the AF_XDP datapath could not use, by reason (not_ours: addressed to another \
         host; bad_source: a multicast, unspecified or loopback source).",
    );
    for (index, name) in FrameError::NAMES.iter().enumerate() {
        out.sample(
            "xdhcp6_frames_dropped_total",
            &[("reason", name)],
            sum_at(|stats| &stats.frame_errors, index),
        );
    }
    out.family(
        "xdhcp6_partial_checksum_frames_total",
        "counter",
        "Frames accepted with the UDP checksum left to offload (CHECKSUM_PARTIAL, from a veth \
         peer on this host), unverified as the kernel takes them.",
    );
    out.value(
        "xdhcp6_partial_checksum_frames_total",
        sum(|stats| &stats.partial_checksums),
    );
    out.family(
        "xdhcp6_replies_through_kernel_total",
        "counter",
        "AF_XDP replies larger than the interface MTU, sent through the kernel UDP socket \
         (which fragments them) instead of the transmit ring.",
    );
    out.value(
        "xdhcp6_replies_through_kernel_total",
        sum(|stats| &stats.replies_through_kernel),
    );
    out.family(
        "xdhcp6_xsk_kernel_total",
        "counter",
        "The AF_XDP sockets' own kernel counters (XDP_STATISTICS), summed over sockets, read \
         once a second: rx_dropped, rx_ring_full, rx_fill_ring_empty_descs, \
         rx_invalid_descs, tx_invalid_descs, tx_ring_empty_descs.",
    );
    for (index, name) in XSK_COUNTER_NAMES.iter().enumerate() {
        out.sample(
            "xdhcp6_xsk_kernel_total",
            &[("counter", name)],
            sum_at(|stats| &stats.xsk, index),
        );
    }
    out.family(
        "xdhcp6_send_failures_total",
        "counter",
        "Replies that could not be sent (socket or ring full).",
    );
    out.value(
        "xdhcp6_send_failures_total",
        sum(|stats| &stats.send_failures),
    );
    out.family(
        "xdhcp6_advertise_delayed_total",
        "counter",
        "Advertise messages held for advertise-delay-ms (a link whose Preference is below \
         255) before they were sent.",
    );
    out.value(
        "xdhcp6_advertise_delayed_total",
        sum(|stats| &stats.advertise_delayed),
    );
    out.family(
        "xdhcp6_advertise_delay_overflow_total",
        "counter",
        "Advertise messages to be delayed that the worker's bounded delayed-reply queue had no \
         room for, dropped (the client retransmits).",
    );
    out.value(
        "xdhcp6_advertise_delay_overflow_total",
        sum(|stats| &stats.advertise_delay_overflow),
    );
    out.family(
        "xdhcp6_handoff_total",
        "counter",
        "AF_XDP requests handed from the worker that received them to the worker that owns \
         their client (--spread auto), by direction: out (handed by the receiver), in (taken \
         by the owner).",
    );
    out.sample(
        "xdhcp6_handoff_total",
        &[("direction", "out")],
        sum(|stats| &stats.handoff_out),
    );
    out.sample(
        "xdhcp6_handoff_total",
        &[("direction", "in")],
        sum(|stats| &stats.handoff_in),
    );
    out.family(
        "xdhcp6_handoff_dropped_total",
        "counter",
        "AF_XDP requests to hand to another worker that found its bounded inbox full, or \
         that the worker stopped before taking, and were dropped (the client retransmits).",
    );
    out.value(
        "xdhcp6_handoff_dropped_total",
        sum(|stats| &stats.handoff_full) + sum(|stats| &stats.handoff_stopped),
    );
    out.family(
        "xdhcp6_worker_busy_turns_total",
        "counter",
        "Turns of the datapath workers' loops that found requests to handle (AF_XDP: a look at \
         the receive ring; UDP: a recvmmsg). The rate of xdhcp6_messages_received_total over \
         this is the mean batch a turn handled: near 1 the workers wait for requests, near the \
         batch size (64) they are saturated.",
    );
    out.value(
        "xdhcp6_worker_busy_turns_total",
        sum(|stats| &stats.busy_turns),
    );
    out.family(
        "xdhcp6_worker_sleeps_total",
        "counter",
        "Times an AF_XDP worker slept in poll(2) because a turn found nothing to do (never \
         while --busy-poll keeps it polling).",
    );
    out.value("xdhcp6_worker_sleeps_total", sum(|stats| &stats.sleeps));
}

/// The message type counted at `index` of the per-type arrays.
fn message_type(index: usize) -> MessageType {
    MessageType::from(u8::try_from(index).unwrap_or(0))
}

fn render_engine(out: &mut Exposition, engine: &Engine) {
    out.family(
        "xdhcp6_leases",
        "gauge",
        "Leases in the lease table, bound and declined (an Advertise reserves nothing).",
    );
    out.value("xdhcp6_leases", engine.table().len());

    // One short lock per interner shard: the cost of a scrape does not grow with the leases.
    let relay = engine.table().relay_stats();
    out.family(
        "xdhcp6_relay_data_entries",
        "gauge",
        "Interned relay data kept with relayed leases (Leasequery's LQ Relay Data, Bulk \
         Leasequery's selections), by part: path (the relay hops up to the client's relay, \
         about one per relay port) and subscriber (the client's relay options, about one per \
         modem or subscriber line).",
    );
    out.sample(
        "xdhcp6_relay_data_entries",
        &[("part", "path")],
        relay.paths,
    );
    out.sample(
        "xdhcp6_relay_data_entries",
        &[("part", "subscriber")],
        relay.subscribers,
    );
    out.family(
        "xdhcp6_relay_data_heap_bytes",
        "gauge",
        "Bytes of interned relay data too long to live inside their entry.",
    );
    out.value("xdhcp6_relay_data_heap_bytes", relay.heap_bytes);
    out.family(
        "xdhcp6_relay_data_options_cut_total",
        "counter",
        "Relay options left out of a lease's relay data because it would have grown past \
         512 bytes.",
    );
    out.value("xdhcp6_relay_data_options_cut_total", relay.options_cut);
    out.family(
        "xdhcp6_relay_data_not_stored_total",
        "counter",
        "Relayed leases whose relay data could not be stored (an interner full).",
    );
    out.value("xdhcp6_relay_data_not_stored_total", relay.not_stored);

    let pools = engine.pool_usage();
    out.family(
        "xdhcp6_pool_size",
        "gauge",
        "Addresses or delegated prefixes in the slice (range) of a pool this server owns.",
    );
    for pool in &pools {
        if let Some(size) = pool_size(engine, pool) {
            out.sample("xdhcp6_pool_size", &pool_labels(pool), size);
        }
    }
    out.family(
        "xdhcp6_pool_free",
        "gauge",
        "Free addresses or prefixes in a slice, where it keeps a bitmap; size - free is in use \
         (leases, declined and reserved ones).",
    );
    for pool in &pools {
        if let Some(free) = pool.free {
            out.sample("xdhcp6_pool_free", &pool_labels(pool), free);
        }
    }
    out.family(
        "xdhcp6_pool_bound",
        "gauge",
        "Bindings in a slice this server owns. In a split or unique deployment a peer's failure \
         shows here: its clients rebind to this server and this slice grows, while the peer's \
         own series stops.",
    );
    for pool in &pools {
        out.sample("xdhcp6_pool_bound", &pool_labels(pool), pool.bound);
    }
    out.family(
        "xdhcp6_bound_leases",
        "gauge",
        "Bound leases, as the limits count them (`max-leases`).",
    );
    out.value("xdhcp6_bound_leases", engine.bound_leases(None));
    out.family(
        "xdhcp6_limit_refusals_total",
        "counter",
        "New bindings (and Declines) refused, by the limit that refused them: caps answer \
         NoAddrsAvail or NoPrefixAvail, rates drop the message (counted in \
         xdhcp6_dropped_total too).",
    );
    for (refusal, count) in engine.limit_refusals() {
        out.sample(
            "xdhcp6_limit_refusals_total",
            &[("limit", refusal.as_str())],
            count,
        );
    }
    out.family(
        "xdhcp6_leasequery_replies_total",
        "counter",
        "Leasequery replies sent (RFC 5007), by result: found (Client Data), client_link (the \
         client is on several links), no_binding, and the refusals not_allowed (a requestor \
         outside [leasequery] requestors), not_configured, unknown_query_type, \
         malformed_query.",
    );
    for (result, count) in engine.leasequery_results() {
        out.sample(
            "xdhcp6_leasequery_replies_total",
            &[("result", result.as_str())],
            count,
        );
    }
    out.family(
        "xdhcp6_reconfigure_sent_total",
        "counter",
        "Reconfigure messages asked for through the control API (RFC 9915 §18.3.11), by \
         result: sent (each transmission, retransmissions included), send_failed (the socket \
         refused it), and the refusals no_binding, not_accepted (the client did not send \
         Reconfigure Accept), no_address (a direct client without an address), \
         relay_source_unknown (relay data from an older journal).",
    );
    for (result, count) in engine.reconfigure_results() {
        out.sample(
            "xdhcp6_reconfigure_sent_total",
            &[("result", result.as_str())],
            count,
        );
    }
    out.family(
        "xdhcp6_rebind_foreign_total",
        "counter",
        "Addresses and prefixes of another server's slice (in a pool prefix of the link, \
         outside this server's ranges) listed in Rebind messages: the clients of an RFC 6853 \
         peer that stopped answering. rebind-foreign = \"zero\" answers them with lifetimes 0 \
         (and a binding from this slice), \"extend\" extends them. Split model only: the \
         unique model's peers have prefixes this server does not know.",
    );
    for (link, kind, count) in engine.foreign_rebinds() {
        out.sample(
            "xdhcp6_rebind_foreign_total",
            &[("link", link), ("kind", kind_label(kind))],
            count,
        );
    }
}

/// The labels that name one pool slice.
fn pool_labels(pool: &PoolUsage) -> [(&'static str, String); 4] {
    [
        ("link", pool.link.clone()),
        ("kind", kind_label(pool.kind).to_owned()),
        ("prefix", pool.prefix.to_string()),
        ("range", pool.range.to_string()),
    ]
}

/// The `kind` label of addresses (`na`) and delegated prefixes (`pd`).
fn kind_label(kind: IaKind) -> &'static str {
    match kind {
        IaKind::Na => "na",
        IaKind::Pd => "pd",
    }
}

/// The number of units in a slice: addresses of an NA range, delegated prefixes of a PD range
/// (their length comes from the configuration, as the usage report does not carry it).
fn pool_size(engine: &Engine, pool: &PoolUsage) -> Option<UnitCount> {
    let range_len = u32::from(pool.range.len());
    let unit_len = match pool.kind {
        IaKind::Na => 128,
        IaKind::Pd => {
            let link = engine
                .config()
                .links
                .iter()
                .find(|link| link.name == pool.link)?;
            let configured = link.pd_pools.iter().find(|configured| {
                configured.prefix == pool.prefix && configured.range == pool.range
            })?;
            u32::from(configured.delegated_len)
        }
    };
    unit_len.checked_sub(range_len).map(UnitCount)
}

/// 2^bits, written exactly while it fits a `u128` (a /0 range does not).
#[derive(Clone, Copy, Debug)]
struct UnitCount(u32);

impl Display for UnitCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match 1u128.checked_shl(self.0) {
            Some(count) => write!(f, "{count}"),
            None => write!(f, "{:e}", 2f64.powi(self.0 as i32)),
        }
    }
}

fn render_xdp(out: &mut Exposition, counters: Option<Counters>) {
    out.family(
        "xdhcp6_xdp_attached",
        "gauge",
        "1 while the XDP steering program is attached and its counters can be read.",
    );
    out.value("xdhcp6_xdp_attached", u8::from(counters.is_some()));
    let Some(counters) = counters else {
        return;
    };
    out.family(
        "xdhcp6_xdp_frames_total",
        "counter",
        "Frames seen by the XDP program: steered to AF_XDP, matched without a socket \
         (no_socket, passed to the kernel), or passed to the kernel.",
    );
    for (verdict, value) in [
        ("steered", counters.steered),
        ("no_socket", counters.no_socket),
        ("passed", counters.passed),
    ] {
        out.sample("xdhcp6_xdp_frames_total", &[("verdict", verdict)], value);
    }
    out.family(
        "xdhcp6_xdp_passed_total",
        "counter",
        "Frames the XDP program passed to the kernel, by reason.",
    );
    for reason in PassReason::ALL {
        out.sample(
            "xdhcp6_xdp_passed_total",
            &[("reason", reason.name())],
            counters.passed_for(reason),
        );
    }
}

/// A text exposition being written.
#[derive(Debug, Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// The HELP and TYPE lines of a metric family.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        self.text.push_str("# HELP ");
        self.text.push_str(name);
        self.text.push(' ');
        escape_into(&mut self.text, help, false);
        self.text.push_str("\n# TYPE ");
        self.text.push_str(name);
        self.text.push(' ');
        self.text.push_str(kind);
        self.text.push('\n');
    }

    /// One sample line without labels.
    fn value(&mut self, name: &str, value: impl Display) {
        self.sample::<&str>(name, &[], value);
    }

    /// One sample line.
    fn sample<V: AsRef<str>>(&mut self, name: &str, labels: &[(&str, V)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (position, (label, label_value)) in labels.iter().enumerate() {
                if position > 0 {
                    self.text.push(',');
                }
                self.text.push_str(label);
                self.text.push_str("=\"");
                escape_into(&mut self.text, label_value.as_ref(), true);
                self.text.push('"');
            }
            self.text.push('}');
        }
        // Writing into a String cannot fail.
        let _ = writeln!(self.text, " {value}");
    }
}

/// Appends `text` escaped for the exposition format: backslash and newline always, the double
/// quote inside label values.
fn escape_into(out: &mut String, text: &str, label_value: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label_value => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Bounds on what one client may cost the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest request head (request line and headers) read; longer ones get 431.
    pub max_request_bytes: usize,
    /// Time for the whole request head to arrive; a slower client gets 408.
    pub read_timeout: Duration,
    /// Time for the response to be taken by the client before the connection is dropped.
    pub write_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 8 * 1024,
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_connections: 16,
        }
    }
}

/// The running endpoint; dropping it stops the server and joins its thread.
#[derive(Debug)]
pub struct MetricsHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsHandle {
    /// The address the endpoint listens on (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the server and waits for its thread; the same as dropping the handle.
    pub fn stop(self) {}
}

impl Drop for MetricsHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may have ended already; then there is nobody to tell.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the metrics thread panicked");
        }
    }
}

/// Serves `render(sources)` at `http://addr/metrics` with the default [`Limits`].
///
/// Binds before returning, so that a taken port or a bad address is an error at start.
pub fn spawn(addr: SocketAddr, sources: Sources) -> io::Result<MetricsHandle> {
    spawn_with_limits(addr, sources, Limits::default())
}

/// Serves `render(sources)` at `http://addr/metrics` within `limits`.
pub fn spawn_with_limits(
    addr: SocketAddr,
    sources: Sources,
    limits: Limits,
) -> io::Result<MetricsHandle> {
    let listener = StdTcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let listener = {
        let _context = runtime.enter();
        TcpListener::from_std(listener)?
    };
    let (stop, stopped) = oneshot::channel();
    let sources = Arc::new(sources);
    let thread = thread::Builder::new()
        .name("xdhcp6-metrics".to_owned())
        .spawn(move || {
            runtime.block_on(serve(listener, sources, limits, stopped));
            // Dropping the runtime here cancels the connections still open.
        })?;
    tracing::info!(addr = %local_addr, "metrics endpoint listening");
    Ok(MetricsHandle {
        local_addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Accepts connections until told to stop (or the handle is gone).
async fn serve(
    listener: TcpListener,
    sources: Arc<Sources>,
    limits: Limits,
    mut stopped: oneshot::Receiver<()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        // Accept only with a free slot: beyond the limit, connections wait in the kernel's
        // backlog (a scrape is delayed, not refused, while slow clients hold the slots).
        let permit = tokio::select! {
            _ = &mut stopped => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_closed) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, usually: wait instead of spinning on the error.
                    tracing::warn!(%error, "metrics endpoint cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let sources = Arc::clone(&sources);
        tokio::spawn(async move {
            if let Err(error) = connection(stream, &sources, &limits).await {
                tracing::debug!(%peer, %error, "metrics connection failed");
            }
            drop(permit);
        });
    }
}

/// What arrived on a connection.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// A complete request head (up to the blank line).
    Complete(Vec<u8>),
    /// More than the size limit without the end of the head.
    TooLarge,
    /// The client closed before the end of the head.
    Closed,
}

/// Answers one request and closes the connection.
async fn connection(mut stream: TcpStream, sources: &Sources, limits: &Limits) -> io::Result<()> {
    let head = tokio::time::timeout(
        limits.read_timeout,
        read_head(&mut stream, limits.max_request_bytes),
    )
    .await;
    let response = match head {
        Err(_elapsed) => status_response(408, "Request Timeout", &[]),
        Ok(Err(error)) => return Err(error),
        Ok(Ok(Head::Closed)) => return Ok(()),
        Ok(Ok(Head::TooLarge)) => status_response(431, "Request Header Fields Too Large", &[]),
        Ok(Ok(Head::Complete(head))) => respond(&head, sources),
    };
    let sent = tokio::time::timeout(limits.write_timeout, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await;
    match sent {
        Ok(result) => result?,
        Err(_elapsed) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client too slow to take the response",
            ));
        }
    }
    // Read what the client still sends before closing, for a moment: closing a socket with
    // unread data resets the connection, and the client could lose the response (a 431 above
    // all). Whatever is left after that is the client's problem.
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
    Ok(())
}

/// Reads up to the blank line that ends the request head, at most `limit` bytes.
async fn read_head(stream: &mut TcpStream, limit: usize) -> io::Result<Head> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        // Look for the end again from a little before the new bytes: it may straddle reads.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&head[from..]) {
            head.truncate(from + end);
            return Ok(Head::Complete(head));
        }
        if head.len() >= limit {
            return Ok(Head::TooLarge);
        }
    }
}

/// The length up to and including the blank line (CRLF CRLF, or bare LF LF as RFC 9112 §2.2
/// lets a server accept).
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).enumerate().find_map(|(at, pair)| {
        if pair == b"\n\n" {
            Some(at + 2)
        } else if pair == b"\n\r" && bytes.get(at + 2) == Some(&b'\n') {
            Some(at + 3)
        } else {
            None
        }
    })
}

/// The response to a complete request head.
fn respond(head: &[u8], sources: &Sources) -> Vec<u8> {
    let line = head.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&byte| byte == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return status_response(400, "Bad Request", &[]);
    };
    if !version.starts_with(b"HTTP/1.") {
        return status_response(400, "Bad Request", &[]);
    }
    let path = target
        .split(|&byte| byte == b'?')
        .next()
        .unwrap_or_default();
    if path != PATH.as_bytes() {
        return status_response(404, "Not Found", &[]);
    }
    match method {
        b"GET" | b"HEAD" => {
            let body = render(sources);
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            if method == b"GET" {
                response.extend_from_slice(body.as_bytes());
            }
            response
        }
        _ => status_response(405, "Method Not Allowed", &[("Allow", "GET, HEAD")]),
    }
}

/// A response with a one-line text body naming the status.
fn status_response(code: u16, reason: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let body = format!("{code} {reason}\n");
    let mut response = format!("HTTP/1.1 {code} {reason}\r\n");
    for (name, value) in headers {
        let _ = write!(response, "{name}: {value}\r\n");
    }
    let _ = write!(
        response,
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\
         \r\n{body}",
        body.len()
    );
    response.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources_with(workers: usize) -> (Sources, Vec<Arc<WorkerStats>>) {
        let workers: Vec<Arc<WorkerStats>> = (0..workers)
            .map(|_| Arc::new(WorkerStats::default()))
            .collect();
        (Sources::new(workers.clone()), workers)
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let (sources, _) = sources_with(1);
        let sources = sources
            .with_journal_lag(Arc::new(|| 7))
            .with_journal_health(Arc::new(|| JournalHealth {
                healthy: false,
                write_failures: 2,
                damaged_records: 1,
                skipped_bytes: 73,
            }))
            .with_xdp(Arc::new(|| Some(Counters::default())));
        let text = render(&sources);
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split(' ');
                let name = words.next().unwrap();
                assert!(matches!(words.next(), Some("counter" | "gauge")), "{line}");
                declared.push(name.to_owned());
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(declared.last().map(String::as_str), Some(name), "{line}");
            }
        }
        assert!(text.ends_with('\n'));
        assert!(text.contains("xdhcp6_journal_lag_events 7\n"));
        assert!(text.contains("xdhcp6_journal_healthy 0\n"));
        assert!(text.contains("xdhcp6_journal_write_failures_total 2\n"));
        assert!(text.contains("xdhcp6_journal_damaged_records 1\n"));
        assert!(text.contains("xdhcp6_journal_skipped_bytes 73\n"));
        assert!(text.contains("xdhcp6_dropped_total{reason=\"journal_unavailable\"} 0\n"));
    }

    #[test]
    fn sums_workers_and_lists_every_reason_at_zero() {
        let (sources, workers) = sources_with(2);
        workers[0].count_received(MessageType::Solicit);
        workers[1].count_received(MessageType::Solicit);
        workers[1].count_sent(MessageType::Advertise);
        workers[0].count_drop(DropReason::WrongServerId);
        workers[1].count_bad_frame();
        workers[0].count_send_failure();
        workers[0].count_busy_turn();
        workers[1].count_busy_turn();
        workers[1].count_busy_turn();
        workers[1].count_sleep();
        let text = render(&sources);
        assert!(text.contains("xdhcp6_messages_received_total{type=\"solicit\"} 2\n"));
        assert!(text.contains("xdhcp6_worker_busy_turns_total 3\n"));
        assert!(text.contains("xdhcp6_worker_sleeps_total 1\n"));
        assert!(text.contains("xdhcp6_messages_sent_total{type=\"advertise\"} 1\n"));
        assert!(text.contains("xdhcp6_dropped_total{reason=\"wrong_server_id\"} 1\n"));
        for reason in DropReason::ALL {
            assert!(
                text.contains(&format!(
                    "xdhcp6_dropped_total{{reason=\"{}\"}} ",
                    reason.as_str()
                )),
                "{reason:?} missing"
            );
        }
        assert!(text.contains("xdhcp6_dropped_total{reason=\"malformed\"} 0\n"));
        assert!(text.contains("xdhcp6_messages_received_total{type=\"rebind\"} 0\n"));
        assert!(text.contains("xdhcp6_messages_sent_total{type=\"reply\"} 0\n"));
        assert!(!text.contains("xdhcp6_messages_sent_total{type=\"solicit\"}"));
        assert!(!text.contains("xdhcp6_messages_received_total{type=\"advertise\"}"));
        assert!(text.contains("xdhcp6_bad_frames_total 1\n"));
        assert!(text.contains("xdhcp6_send_failures_total 1\n"));
        // Families whose source is not wired are left out.
        assert!(!text.contains("xdhcp6_leases"));
        assert!(!text.contains("xdhcp6_journal_lag_events"));
        assert!(!text.contains("xdhcp6_xdp"));
    }

    #[test]
    fn frame_drops_offloaded_checksums_and_socket_counters_are_exposed() {
        let (sources, workers) = sources_with(2);
        workers[0].count_frame_error(FrameError::NotOurs);
        workers[1].count_frame_error(FrameError::NotOurs);
        workers[1].count_frame_error(FrameError::BadSource);
        workers[0].count_partial_checksum();
        workers[0].store_xsk([1, 0, 0, 5, 2, 0]);
        workers[1].store_xsk([1, 0, 3, 0, 0, 0]);
        let text = render(&sources);
        assert!(text.contains("xdhcp6_bad_frames_total 3\n"));
        assert!(text.contains("xdhcp6_frames_dropped_total{reason=\"not_ours\"} 2\n"));
        assert!(text.contains("xdhcp6_frames_dropped_total{reason=\"bad_source\"} 1\n"));
        assert!(text.contains("xdhcp6_frames_dropped_total{reason=\"bad_checksum\"} 0\n"));
        assert!(text.contains("xdhcp6_partial_checksum_frames_total 1\n"));
        assert!(text.contains("xdhcp6_xsk_kernel_total{counter=\"rx_dropped\"} 2\n"));
        assert!(text.contains("xdhcp6_xsk_kernel_total{counter=\"rx_ring_full\"} 5\n"));
        assert!(text.contains("xdhcp6_xsk_kernel_total{counter=\"tx_invalid_descs\"} 3\n"));
        assert!(text.contains("xdhcp6_xsk_kernel_total{counter=\"rx_fill_ring_empty_descs\"} 2\n"));
    }

    #[test]
    fn handoff_drops_count_full_inboxes_and_stopped_workers() {
        let (sources, workers) = sources_with(2);
        workers[0].count_handoff_full();
        workers[1].count_handoff_stopped();
        workers[1].count_handoff_stopped();
        let text = render(&sources);
        assert!(text.contains("xdhcp6_handoff_dropped_total 3\n"), "{text}");
    }

    #[test]
    fn xdp_counters_by_verdict_and_reason() {
        let mut counters = Counters {
            steered: 5,
            no_socket: 1,
            ..Counters::default()
        };
        counters.record_pass(PassReason::OtherPort);
        counters.record_pass(PassReason::NotIpv6);
        counters.record_pass(PassReason::NotIpv6);
        let sources = Sources::default().with_xdp(Arc::new(move || Some(counters)));
        let text = render(&sources);
        assert!(text.contains("xdhcp6_xdp_attached 1\n"));
        assert!(text.contains("xdhcp6_xdp_frames_total{verdict=\"steered\"} 5\n"));
        assert!(text.contains("xdhcp6_xdp_frames_total{verdict=\"no_socket\"} 1\n"));
        assert!(text.contains("xdhcp6_xdp_frames_total{verdict=\"passed\"} 3\n"));
        assert!(text.contains("xdhcp6_xdp_passed_total{reason=\"not_ipv6\"} 2\n"));
        assert!(text.contains("xdhcp6_xdp_passed_total{reason=\"other_port\"} 1\n"));
        assert!(text.contains("xdhcp6_xdp_passed_total{reason=\"vlan_stack\"} 0\n"));

        let detached = Sources::default().with_xdp(Arc::new(|| None));
        let text = render(&detached);
        assert!(text.contains("xdhcp6_xdp_attached 0\n"));
        assert!(!text.contains("xdhcp6_xdp_frames_total{"));
    }

    #[test]
    fn escapes_label_values_and_help() {
        let mut out = Exposition::default();
        out.family("m", "gauge", "a \\ b\nc \"d\"");
        out.sample("m", &[("link", "a\"b\\c\nd")], 1);
        assert_eq!(
            out.text,
            "# HELP m a \\\\ b\\nc \"d\"\n# TYPE m gauge\nm{link=\"a\\\"b\\\\c\\nd\"} 1\n"
        );
    }

    #[test]
    fn unit_counts_beyond_u64() {
        assert_eq!(UnitCount(7).to_string(), "128");
        assert_eq!(UnitCount(64).to_string(), "18446744073709551616");
        assert_eq!(UnitCount(128).to_string(), "3.402823669209385e38");
    }

    #[test]
    fn finds_the_end_of_the_head() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn routes_requests() {
        let sources = Sources::default();
        let status = |head: &[u8]| {
            let response = respond(head, &sources);
            String::from_utf8(response[..12].to_vec()).unwrap()
        };
        assert_eq!(status(b"GET /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 200");
        assert_eq!(status(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), "HTTP/1.1 200");
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404");
        assert_eq!(status(b"POST /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 405");
        assert_eq!(status(b"GET /metrics\r\n\r\n"), "HTTP/1.1 400");
        assert_eq!(status(b"\r\n\r\n"), "HTTP/1.1 400");
        let head = respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", &sources);
        assert!(head.ends_with(b"\r\n\r\n"));
    }
}
