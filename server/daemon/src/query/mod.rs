//! `xdhcp6d query`: the fleet requestor. Asks every server of an RFC 6853 set at once who
//! holds an address, a prefix or a client's bindings (Leasequery over UDP, RFC 5007, or Bulk
//! Leasequery over TCP, RFC 5460), merges the answers, names the servers that did not
//! answer, and, from the servers' configurations, which one would own the address or prefix
//! (docs/leasequery.md, "Across a fleet").
//!
//! [`run`] is the library entry point (servers, query, layout in; [`Report`] out); [`main`]
//! is the subcommand around it.

pub mod layout;
pub mod report;
pub mod transport;
pub mod wire;

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use xdhcp6_engine::config::Config;
use xdhcp6_engine::prefix::Prefix;

pub use self::layout::{Choice, Layout, Ownership};
pub use self::report::{
    EXIT_FOUND, EXIT_INCOMPLETE, EXIT_NOT_FOUND, Report, ServerResult, Verdict,
};
pub use self::transport::Exchange;
pub use self::wire::{Binding, Target};

/// The DHCPv6 server port, where Leasequery goes over UDP and TCP.
pub const SERVER_PORT: u16 = 547;

/// The longest DUID (RFC 9915 §11.1: 128 bytes after the type).
const MAX_DUID: usize = 130;

/// How the servers are asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Leasequery over UDP (RFC 5007), retransmitted until the timeout.
    Udp,
    /// Bulk Leasequery over TCP (RFC 5460): needed for --relay-id and --remote-id.
    Tcp,
}

/// How the report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable lines.
    Text,
    /// One JSON document.
    Json,
}

/// One server to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// How the report names it.
    pub name: String,
    /// Its address and port.
    pub address: SocketAddr,
}

/// One query for every server.
#[derive(Clone, Debug)]
pub struct Query {
    /// What is asked.
    pub target: Target,
    /// The link-address of the link asked about (`::`: every link).
    pub link: Ipv6Addr,
    /// UDP or TCP.
    pub transport: Transport,
    /// How long each server has to answer.
    pub timeout: Duration,
    /// The requestor's DUID (its Client Identifier).
    pub requestor: Vec<u8>,
    /// The source address to send from (one the servers' `[leasequery] requestors` list).
    pub source: Option<Ipv6Addr>,
    /// The transaction id (the same for every server).
    pub xid: u32,
}

/// Asks every server at once and merges their answers with the layout: the library entry
/// point of `xdhcp6d query`.
pub fn run(servers: &[Server], query: &Query, layout: &Layout) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the requestor's runtime")?;
    let message = wire::encode(query.xid, &query.requestor, &query.target, query.link)
        .map_err(|error| anyhow::anyhow!("the query does not fit a message: {error}"))?;
    let verdicts = runtime.block_on(ask_all(servers, query, &message));
    Ok(Report {
        target: query.target.clone(),
        transport: match query.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        },
        servers: servers
            .iter()
            .zip(verdicts)
            .map(|(server, verdict)| ServerResult {
                name: server.name.clone(),
                address: server.address,
                verdict,
            })
            .collect(),
        ownership: query
            .target
            .prefix()
            .map_or(Ownership::Unknown, |target| layout.ownership(target)),
        choices: match &query.target {
            Target::ClientId {
                duid,
                iaid: Some(iaid),
            } => layout.first_choices(duid, *iaid),
            _ => Vec::new(),
        },
    })
}

/// Every server's verdict, in the order of `servers`.
async fn ask_all(servers: &[Server], query: &Query, message: &[u8]) -> Vec<Verdict> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, server) in servers.iter().enumerate() {
        let (address, message) = (server.address, message.to_vec());
        let (transport, source, xid, timeout) =
            (query.transport, query.source, query.xid, query.timeout);
        tasks.spawn(async move {
            let exchange = match transport {
                Transport::Udp => transport::udp(address, source, &message, xid, timeout).await,
                Transport::Tcp => transport::tcp(address, source, &message, xid, timeout).await,
            };
            (index, Verdict::of(exchange))
        });
    }
    let mut verdicts = vec![Verdict::Timeout; servers.len()];
    while let Some(done) = tasks.join_next().await {
        if let Ok((index, verdict)) = done {
            verdicts[index] = verdict;
        }
    }
    verdicts
}

/// `xdhcp6d query`: ask every server of an RFC 6853 set who holds a binding.
///
/// Exit status: 0 a server holds a binding; 3 every server answered and none holds one; 4
/// none holds one and at least one server did not answer or refused (the binding may be
/// there); 1 an error (a configuration that does not read, a source address that cannot be
/// bound); 2 a command-line mistake.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["address", "prefix", "duid", "relay_id", "remote_id"])))]
pub struct QueryArgs {
    /// The servers to ask, comma-separated: ADDRESS, [ADDRESS]:PORT or NAME=ADDRESS (the
    /// name is how the report calls it; default: the address). Port 547 unless given.
    #[arg(long, value_name = "LIST", required = true, value_delimiter = ',', value_parser = parse_server)]
    pub servers: Vec<Server>,
    /// Who holds this address (an IA_NA address, or any address inside a delegated prefix).
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<Ipv6Addr>,
    /// Who holds this delegated prefix (asked by its first address).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<Prefix>,
    /// What the client with this DUID holds (hex bytes, with or without colons).
    #[arg(long, value_name = "HEX", value_parser = parse_duid)]
    pub duid: Option<Duid>,
    /// The client's IAID, with --duid and --configs: the report adds what each server would
    /// hand that IA (IA_NA and IA_PD) first, by its allocation hash (Client Data carries no
    /// IAIDs, so the answers are not filtered by it).
    #[arg(long, value_name = "N", requires = "duid")]
    pub iaid: Option<u32>,
    /// Every binding relayed by the relay agent with this Relay-ID (its DUID, hex; RFC 5460,
    /// over TCP).
    #[arg(long, value_name = "HEX", value_parser = parse_duid)]
    pub relay_id: Option<Duid>,
    /// Every binding with this Remote-ID (RFC 4649), ENTERPRISE:HEX, e.g. 4491:00:11:22:33:44:55
    /// (RFC 5460, over TCP).
    #[arg(long, value_name = "ENTERPRISE:HEX", value_parser = parse_remote_id)]
    pub remote_id: Option<(u32, Vec<u8>)>,
    /// The link to ask about, by an address of it (a relay's link-address or a pool
    /// address); default :: (every link).
    #[arg(long, value_name = "ADDRESS", default_value_t = Ipv6Addr::UNSPECIFIED)]
    pub link: Ipv6Addr,
    /// udp (Leasequery, RFC 5007) or tcp (Bulk Leasequery, RFC 5460). Default: udp, tcp for
    /// --relay-id and --remote-id, which only Bulk Leasequery has.
    #[arg(long, value_enum, value_name = "TRANSPORT")]
    pub transport: Option<Transport>,
    /// Milliseconds each server has to answer (UDP retransmits within it: after 1 s, or a
    /// quarter of it when shorter, doubling).
    #[arg(long, value_name = "MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout: u64,
    /// The servers' configuration files, comma-separated, in the order of --servers: the
    /// report then says which server would own the address or prefix (split and unique
    /// models) or that each may hold it (identical model).
    #[arg(long, value_name = "FILES", value_delimiter = ',')]
    pub configs: Vec<PathBuf>,
    /// The address to send from: one the servers' [leasequery] requestors list (default: the
    /// one the kernel picks for each server).
    #[arg(long, value_name = "ADDRESS")]
    pub source: Option<Ipv6Addr>,
    /// The requestor's DUID, hex (its Client Identifier; default: a DUID-LL made from the
    /// process id and the time).
    #[arg(long, value_name = "HEX", value_parser = parse_duid)]
    pub client_id: Option<Duid>,
    /// text or json.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub format: Format,
}

/// Runs `xdhcp6d query` and prints its report; the exit status says what was found.
pub fn main(args: &QueryArgs) -> anyhow::Result<ExitCode> {
    let target = if let Some(address) = args.address {
        Target::Address(address)
    } else if let Some(prefix) = args.prefix {
        Target::Prefix(prefix)
    } else if let Some(duid) = &args.duid {
        Target::ClientId {
            duid: duid.0.clone(),
            iaid: args.iaid,
        }
    } else if let Some(relay_id) = &args.relay_id {
        Target::RelayId(relay_id.0.clone())
    } else if let Some((enterprise, id)) = &args.remote_id {
        Target::RemoteId {
            enterprise: *enterprise,
            id: id.clone(),
        }
    } else {
        anyhow::bail!("give one of --address, --prefix, --duid, --relay-id, --remote-id");
    };
    let transport = match args.transport {
        Some(Transport::Udp) if target.is_bulk_only() => anyhow::bail!(
            "--relay-id and --remote-id exist only in Bulk Leasequery: use --transport tcp"
        ),
        Some(transport) => transport,
        None if target.is_bulk_only() => Transport::Tcp,
        None => Transport::Udp,
    };
    anyhow::ensure!(
        args.configs.is_empty() || args.configs.len() == args.servers.len(),
        "--configs names {} files for {} servers: give one per server, in the order of --servers",
        args.configs.len(),
        args.servers.len()
    );
    let configs = args
        .configs
        .iter()
        .map(|path| read_config(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let seed = seed();
    let query = Query {
        target,
        link: args.link,
        transport,
        timeout: Duration::from_millis(args.timeout),
        requestor: args
            .client_id
            .as_ref()
            .map(|duid| duid.0.clone())
            .unwrap_or_else(|| {
                let mut duid = vec![0, 3, 0, 1, 0x02];
                duid.extend_from_slice(&seed.to_be_bytes()[3..8]);
                duid
            }),
        source: args.source,
        xid: (seed as u32) & 0x00ff_ffff,
    };
    let report = run(&args.servers, &query, &Layout::new(configs))?;
    let text = match args.format {
        Format::Text => report.text(),
        Format::Json => format!("{:#}\n", report.json()),
    };
    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
    Ok(ExitCode::from(report.exit_code()))
}

/// Reads a server's configuration without touching anything (a `duid-file` is not created).
fn read_config(path: &std::path::Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(Config::from_toml_str(&text, &path.display().to_string())?)
}

/// A transaction id and a default DUID's bytes: the process id and the clock.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

/// `--servers` entries: `ADDRESS`, `[ADDRESS]:PORT`, `NAME=...`.
fn parse_server(text: &str) -> Result<Server, String> {
    let text = text.trim();
    let (name, address) = match text.split_once('=') {
        Some((name, address)) if !name.is_empty() => (Some(name), address),
        Some(_) => return Err(format!("{text:?}: the name before = is empty")),
        None => (None, text),
    };
    let socket = if let Ok(ip) = address.parse::<IpAddr>() {
        SocketAddr::new(ip, SERVER_PORT)
    } else if let Ok(socket) = address.parse::<SocketAddr>() {
        socket
    } else {
        return Err(format!(
            "{address:?} is not an address like 2001:db8::1 or [2001:db8::1]:547"
        ));
    };
    let socket = match socket {
        SocketAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0)),
        v4 => v4,
    };
    Ok(Server {
        name: name.unwrap_or(address).to_owned(),
        address: socket,
    })
}

/// A DUID given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duid(pub Vec<u8>);

/// Hex bytes with or without `:` or `-`: a DUID of 1 to 130 bytes.
fn parse_duid(text: &str) -> Result<Duid, String> {
    let bytes = parse_hex(text)?;
    if bytes.is_empty() || bytes.len() > MAX_DUID {
        return Err(format!(
            "a DUID has 1 to {MAX_DUID} bytes, not {}",
            bytes.len()
        ));
    }
    Ok(Duid(bytes))
}

/// `ENTERPRISE:HEX`.
fn parse_remote_id(text: &str) -> Result<(u32, Vec<u8>), String> {
    let (enterprise, id) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not ENTERPRISE:HEX, e.g. 4491:00:11:22:33:44:55"))?;
    let enterprise = enterprise
        .parse::<u32>()
        .map_err(|_| format!("{enterprise:?} is not an enterprise number"))?;
    let id = parse_hex(id)?;
    if id.is_empty() || id.len() > 1000 {
        return Err("a remote-id has 1 to 1,000 bytes".to_owned());
    }
    Ok((enterprise, id))
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    xdhcp6_engine::hex::parse(text).map_err(|_| {
        format!("{text:?} is not hexadecimal bytes like 00:03:00:01:02:00:00:00:00:01")
    })
}

#[cfg(test)]
mod tests;
