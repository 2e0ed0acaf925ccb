//! The JSON documents of the control API, shared by the server and `xdhcp6d ctl`.

use serde::{Deserialize, Serialize};
use xdhcp6_engine::config::Config;
use xdhcp6_engine::table::{INFINITE, IaKind, LeaseRecord, LeaseState};

pub use super::relay::RelayView;

/// Every error: what is wrong, and the request field it is about (`null` for none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The message, starting with the field's name when there is one.
    pub error: String,
    /// The query parameter, JSON key or header the error is about.
    pub field: Option<String>,
}

/// One lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseView {
    /// The client's DUID, colon-separated hex.
    pub duid: String,
    /// The IAID of the client's IA_NA or IA_PD.
    pub iaid: u32,
    /// `na` (an address) or `pd` (a delegated prefix).
    pub kind: String,
    /// The address, or the prefix with its length.
    pub lease: String,
    /// The link's name.
    pub link: String,
    /// `offered`, `bound` or `declined`.
    pub state: String,
    /// Preferred lifetime in seconds; `null` for infinite.
    pub preferred: Option<u32>,
    /// Valid lifetime in seconds; `null` for infinite.
    pub valid: Option<u32>,
    /// When the lease (or a declined address's probation) ends, Unix seconds; `null` for never.
    pub expires: Option<u32>,
    /// The same instant as `YYYY-MM-DDTHH:MM:SSZ`, or `never`.
    pub expires_at: String,
    /// The relay data of the client's last Request, Renew or Rebind through relay agents;
    /// `null` for a client that talks to the server directly.
    #[serde(default)]
    pub relay: Option<RelayView>,
    /// Whether the client accepts Reconfigure messages (it sent Reconfigure Accept and got
    /// its reconfigure key).
    #[serde(default)]
    pub reconfigure: bool,
}

impl LeaseView {
    /// The view of `record`, its link named from `config`.
    pub fn new(record: &LeaseRecord, config: &Config) -> Self {
        let lease = &record.lease;
        let finite = |seconds: u32| (seconds != INFINITE).then_some(seconds);
        Self {
            duid: hex(record.duid.as_bytes()),
            iaid: lease.iaid,
            kind: kind_name(lease.kind).to_owned(),
            lease: match lease.kind {
                IaKind::Na => lease.ip().to_string(),
                IaKind::Pd => format!("{}/{}", lease.ip(), lease.prefix_len),
            },
            link: config
                .links
                .get(lease.link.index())
                .map_or_else(|| format!("#{}", lease.link.0), |link| link.name.clone()),
            state: match lease.state {
                LeaseState::Offered => "offered",
                LeaseState::Bound => "bound",
                LeaseState::Declined => "declined",
            }
            .to_owned(),
            preferred: finite(lease.lifetimes.preferred),
            valid: finite(lease.lifetimes.valid),
            expires: finite(lease.expires),
            expires_at: finite(lease.expires).map_or_else(|| "never".to_owned(), utc),
            relay: record.relay.as_ref().map(RelayView::of),
            reconfigure: record.reconfigure,
        }
    }
}

/// The answer of `GET /v1/leases`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    /// The leases found, in address order (addresses before prefixes at the same bits).
    pub leases: Vec<LeaseView>,
    /// For a listing: the `after` cursor of the next page, `null` on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The answer of `DELETE /v1/leases`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    /// The lease as it was before the release; its Released record is in the journal (on
    /// disk with `--durability always`) when the answer leaves.
    pub released: LeaseView,
}

/// One pool slice (the range of a pool this server owns).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolView {
    /// The link's name.
    pub link: String,
    /// The pool's number on its link, as `GET /v1/leases?link=L&pool=N` takes it: address
    /// pools first, then prefix pools, in configuration order.
    pub pool: usize,
    /// `na` or `pd`.
    pub kind: String,
    /// The pool prefix, shared by the servers of an RFC 6853 set.
    pub prefix: String,
    /// The slice of it this server owns.
    pub range: String,
    /// Delegated prefix length (`pd`) or 128.
    pub unit_length: u8,
    /// Addresses or prefixes in the slice; `null` when it is 2^128.
    pub size: Option<u128>,
    /// Bound leases in the slice (the counter the metrics export).
    pub bound: u64,
    /// Offered leases held in the slice (the server's Advertise reserves nothing: normally 0).
    pub offered: u64,
    /// Declined addresses in probation in the slice.
    pub declined: u64,
    /// Free units, where the slice keeps a bitmap (`null` for slices too large for one).
    pub free: Option<u64>,
}

/// The answer of `GET /v1/pools`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pools {
    /// Every slice, by link in configuration order.
    pub pools: Vec<PoolView>,
}

/// One datapath worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    /// `udp` or `af_xdp`.
    pub datapath: String,
    /// The worker's number within its datapath.
    pub index: usize,
    /// Messages received (every type).
    pub received: u64,
    /// Replies sent.
    pub sent: u64,
    /// Messages dropped (every reason).
    pub dropped: u64,
    /// Frames the datapath could not use.
    pub bad_frames: u64,
    /// Replies that could not be sent.
    pub send_failures: u64,
    /// AF_XDP requests this worker received and handed to the worker that owns their client.
    #[serde(default)]
    pub handed_out: u64,
    /// AF_XDP requests other workers handed to this one.
    #[serde(default)]
    pub handed_in: u64,
    /// AF_XDP requests this worker could not hand off: the owner's inbox was full.
    #[serde(default)]
    pub handoff_dropped: u64,
}

/// The lease journal's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalView {
    /// The journal file.
    pub path: String,
    /// `always` or `batch (N ms)`.
    pub durability: String,
    /// Whether writes and syncs succeed.
    pub healthy: bool,
    /// Events queued and not yet on disk.
    pub lag: u64,
    /// Times the writes started failing since start.
    pub write_failures: u64,
}

/// The answer of `GET /v1/server`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerView {
    /// The xdhcp6d version.
    pub version: String,
    /// The server's process id.
    pub pid: u32,
    /// When it started, Unix seconds.
    pub started: u64,
    /// Seconds since.
    pub uptime: u64,
    /// The configuration file it serves.
    pub config_file: String,
    /// The server DUID, colon-separated hex.
    pub duid: String,
    /// Configured links.
    pub links: usize,
    /// Leases in the table (offered, bound, declined).
    pub leases: usize,
    /// `udp` or `xdp`.
    pub datapath: String,
    /// Interfaces the XDP program is attached to, with their mode (`xdp` only).
    pub xdp: Vec<String>,
    /// Every worker's counters.
    pub workers: Vec<WorkerView>,
    /// The lease journal.
    pub journal: JournalView,
}

/// The answer of `GET /v1/config`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigView {
    /// The configuration file the server was started with.
    pub file: String,
    /// The configuration being served, written back as TOML (defaults filled in).
    pub toml: String,
}

/// `na` or `pd`.
pub fn kind_name(kind: IaKind) -> &'static str {
    match kind {
        IaKind::Na => "na",
        IaKind::Pd => "pd",
    }
}

/// Colon-separated hex, as DUIDs are written in the configuration.
pub fn hex(bytes: &[u8]) -> String {
    crate::runtime::hex(bytes)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(seconds: u32) -> String {
    let days = i64::from(seconds / 86_400);
    let rest = seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}
