//! `xdhcp6d ctl`: the command-line client of the control API (as `birdc` or `kea-shell`
//! serve their daemons). It speaks HTTP/1.1 through hyper over the unix socket, or over TCP
//! with the bearer token read from a file; it prints tables, or the JSON as the server sent
//! it with `--json`. An answer other than 2xx prints the server's error and fails.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;

use crate::control::DEFAULT_SOCKET;
use crate::control::model::{
    ConfigView, ErrorBody, LeaseView, Leases, Pools, Released, ServerView,
};

/// The largest answer read (a page of 1,000 leases is about 300 KiB).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// `xdhcp6d ctl`: where the server is, and what to ask.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The server's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Talk to the TCP listener (`--control-tcp`) instead, e.g. `http://[::1]:9548`.
    #[arg(long, value_name = "URL", requires = "token_file")]
    pub url: Option<String>,
    /// The file holding the TCP listener's bearer token (with --url).
    #[arg(long, value_name = "FILE", requires = "url")]
    pub token_file: Option<PathBuf>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to ask.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// The requests of `xdhcp6d ctl`, one per endpoint.
#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// Look leases up (by address, prefix, DUID, link-layer address) or list them (all, or a
    /// link's, or a pool slice's), a page at a time.
    #[command(group = clap::ArgGroup::new("lookup").multiple(false))]
    Leases {
        /// The lease on this address.
        #[arg(long, value_name = "ADDRESS", group = "lookup")]
        address: Option<String>,
        /// The lease of this delegated prefix.
        #[arg(long, value_name = "PREFIX", group = "lookup")]
        prefix: Option<String>,
        /// The leases of this client (hex, colons optional).
        #[arg(long, value_name = "DUID", group = "lookup")]
        duid: Option<String>,
        /// Only the client's IA with this IAID (with --duid).
        #[arg(long, value_name = "N", requires = "duid")]
        iaid: Option<u32>,
        /// The leases of clients whose DUID-LL or DUID-LLT carries this link-layer address.
        #[arg(long, value_name = "MAC", group = "lookup")]
        hw_address: Option<String>,
        /// List this link's leases.
        #[arg(long, value_name = "NAME", group = "lookup")]
        link: Option<String>,
        /// Only pool slice N of the link (numbered as `ctl pools` shows).
        #[arg(long, value_name = "N", requires = "link")]
        pool: Option<usize>,
        /// Start after this lease (the `next` of the previous page).
        #[arg(long, value_name = "LEASE")]
        after: Option<String>,
        /// Leases per page (1 to 1000; default 100).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Release a lease now, as its client's Release would (journaled).
    Release {
        /// The address, or the delegated prefix (with its length).
        #[arg(value_name = "ADDRESS|PREFIX")]
        lease: String,
    },
    /// Size, bound, offered, declined and free units of every pool slice.
    Pools,
    /// Runtime reservations.
    Reservations {
        /// list, add or remove.
        #[command(subcommand)]
        command: ReservationCommand,
    },
    /// Version, uptime, datapath, workers and journal health.
    Server,
    /// The configuration being served, as TOML.
    Config,
    /// Read the configuration file again and apply it.
    Reload,
    /// Send a Reconfigure (RFC 9915) to a bound client that accepts them, through the relays
    /// of its last message or to its address; it then renews, rebinds or asks for
    /// information.
    Reconfigure {
        /// The client's DUID (hex, colons optional).
        #[arg(long, value_name = "DUID")]
        duid: String,
        /// The message the client is to send.
        #[arg(long, value_name = "MSG", default_value = "renew",
              value_parser = ["renew", "rebind", "information-request"])]
        msg: String,
    },
}

/// `xdhcp6d ctl reservations ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ReservationCommand {
    /// List the reservations.
    List,
    /// Add a reservation.
    Add(ReservationArgs),
    /// Remove the reservation of a client.
    Remove(ReservationArgs),
}

/// A reservation, with the keys of a `[[reservation]]` table.
#[derive(Debug, Default, clap::Args)]
pub struct ReservationArgs {
    /// The client's DUID.
    #[arg(long, value_name = "DUID")]
    pub duid: Option<String>,
    /// Or the RFC 6939 client link-layer address a relay adds.
    #[arg(long, value_name = "MAC", conflicts_with = "duid")]
    pub hw_address: Option<String>,
    /// Its hardware type (default 1, Ethernet).
    #[arg(long, value_name = "N", requires = "hw_address")]
    pub hw_type: Option<u16>,
    /// Or the cable modem MAC a CMTS relays.
    #[arg(long, value_name = "MAC")]
    pub cm_mac: Option<String>,
    /// Or the Subscriber-ID a relay adds (text; `{"hex": ...}` through the API).
    #[arg(long, value_name = "TEXT")]
    pub subscriber_id: Option<String>,
    /// Or the Remote-ID a relay adds (hex, enterprise number first).
    #[arg(long, value_name = "HEX")]
    pub remote_id: Option<String>,
    /// Or the Interface-Id of the relay closest to the client (text), with --link.
    #[arg(long, value_name = "TEXT", requires = "link")]
    pub interface_id: Option<String>,
    /// The address reserved.
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,
    /// The delegated prefix reserved.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// The only link where it applies.
    #[arg(long, value_name = "NAME")]
    pub link: Option<String>,
}

impl ReservationArgs {
    /// The JSON object, with the keys of `[[reservation]]`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        let mut put = |key: &str, value: Option<serde_json::Value>| {
            if let Some(value) = value {
                object.insert(key.to_owned(), value);
            }
        };
        put("duid", self.duid.clone().map(Into::into));
        put("hw-address", self.hw_address.clone().map(Into::into));
        put("hw-type", self.hw_type.map(Into::into));
        put("cm-mac", self.cm_mac.clone().map(Into::into));
        put("subscriber-id", self.subscriber_id.clone().map(Into::into));
        put("remote-id", self.remote_id.clone().map(Into::into));
        put("interface-id", self.interface_id.clone().map(Into::into));
        put("address", self.address.clone().map(Into::into));
        put("prefix", self.prefix.clone().map(Into::into));
        put("link", self.link.clone().map(Into::into));
        serde_json::Value::Object(object)
    }
}

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The unix socket.
    Unix(PathBuf),
    /// The TCP listener: `host:port`, and the bearer token.
    Tcp {
        /// `host:port` as the URL gives it.
        authority: String,
        /// The bearer token.
        token: String,
    },
}

impl Target {
    /// The target `args` name: the socket, or the URL with the token read from its file.
    pub fn of(args: &CtlArgs) -> anyhow::Result<Self> {
        match (&args.url, &args.token_file) {
            (Some(url), Some(file)) => Self::tcp(url, file),
            (Some(url), None) => bail!("--url {url} needs --token-file FILE"),
            (None, _) => Ok(Target::Unix(args.socket.clone())),
        }
    }

    /// The TCP target of `url` (`http://host:port`), its token read from `file`.
    pub fn tcp(url: &str, file: &Path) -> anyhow::Result<Self> {
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("--url {url:?} is not a URL like http://[::1]:9548"))?;
        if uri.scheme_str() != Some("http") {
            bail!("--url {url:?}: only http:// is served");
        }
        let authority = uri
            .authority()
            .filter(|authority| authority.port_u16().is_some())
            .ok_or_else(|| anyhow!("--url {url:?} names no host and port"))?
            .to_string();
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--token-file {}: cannot read", file.display()))?;
        let token = text.trim().to_owned();
        if token.is_empty() {
            bail!("--token-file {}: the file is empty", file.display());
        }
        Ok(Target::Tcp { authority, token })
    }
}

/// An answer: its status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body (JSON).
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as `T`, or the server's error when the status is not 2xx.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        self.check()?;
        serde_json::from_slice(&self.body).context("the server's answer is not what was expected")
    }

    /// The server's error when the status is not 2xx.
    pub fn check(&self) -> anyhow::Result<()> {
        if (200..300).contains(&self.status) {
            return Ok(());
        }
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(error) => bail!("{} (HTTP {})", error.error, self.status),
            Err(_) => bail!(
                "HTTP {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body).trim()
            ),
        }
    }
}

/// Sends one request and reads the answer (blocking; a runtime of its own).
pub fn request(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<Answer> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    runtime.block_on(send(target, method, path, body))
}

/// Sends one request over a new connection and reads the answer.
pub async fn send(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<Answer> {
    let body = match body {
        Some(value) => Bytes::from(serde_json::to_vec(&value)?),
        None => Bytes::new(),
    };
    let mut builder = Request::builder().method(method).uri(path);
    builder = match target {
        Target::Unix(_) => builder.header(header::HOST, "localhost"),
        Target::Tcp { authority, token } => builder
            .header(header::HOST, authority.as_str())
            .header(header::AUTHORIZATION, format!("Bearer {token}")),
    };
    if !body.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let request = builder.body(Full::new(body))?;
    let response =
        match target {
            Target::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.with_context(|| {
                format!(
                    "cannot reach the control socket {} (is the server running, with --control \
                     there? Give another with --socket)",
                    path.display()
                )
            })?;
                exchange(TokioIo::new(stream), request).await?
            }
            Target::Tcp { authority, .. } => {
                let stream = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .with_context(|| format!("cannot reach {authority}"))?;
                exchange(TokioIo::new(stream), request).await?
            }
        };
    Ok(response)
}

/// One HTTP/1.1 exchange on a fresh connection.
async fn exchange<T>(io: T, request: Request<Full<Bytes>>) -> anyhow::Result<Answer>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .context("HTTP handshake with the server")?;
    let driver = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|error| anyhow!("reading the answer: {error}"))?
        .to_bytes()
        .to_vec();
    drop(sender);
    let _ = driver.await;
    Ok(Answer { status, body })
}

/// `path?name=value&...`, values percent-encoded.
pub fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let mut text = path.to_owned();
    for (index, (name, value)) in pairs.iter().enumerate() {
        text.push(if index == 0 { '?' } else { '&' });
        text.push_str(name);
        text.push('=');
        for byte in value.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~:/".contains(&byte) {
                text.push(char::from(byte));
            } else {
                text.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    text
}

/// Runs `xdhcp6d ctl`.
pub fn run(args: &CtlArgs) -> anyhow::Result<()> {
    let target = Target::of(args)?;
    let (method, path, body) = plan(&args.command);
    let answer = request(&target, method, &path, body)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        answer.check()?;
        out.write_all(&answer.body)?;
        out.write_all(b"\n")?;
        return Ok(());
    }
    match &args.command {
        CtlCommand::Leases { .. } => {
            let leases: Leases = answer.parse()?;
            out.write_all(lease_table(&leases.leases).as_bytes())?;
            if let Some(next) = leases.next {
                eprintln!("more leases: add --after {next}");
            }
        }
        CtlCommand::Release { .. } => {
            let released: Released = answer.parse()?;
            let lease = &released.released;
            writeln!(
                out,
                "released {} (client {}, IAID {}, link {})",
                lease.lease, lease.duid, lease.iaid, lease.link
            )?;
        }
        CtlCommand::Pools => {
            let pools: Pools = answer.parse()?;
            out.write_all(pool_table(&pools).as_bytes())?;
        }
        CtlCommand::Server => {
            let server: ServerView = answer.parse()?;
            out.write_all(server_text(&server).as_bytes())?;
        }
        CtlCommand::Config => {
            let config: ConfigView = answer.parse()?;
            writeln!(out, "# {}", config.file)?;
            out.write_all(config.toml.as_bytes())?;
        }
        CtlCommand::Reconfigure { .. } => {
            let value: serde_json::Value = answer.parse()?;
            let sent = &value["reconfigure"];
            writeln!(
                out,
                "Reconfigure ({}) sent to {} {} (client {}, link {})",
                sent["msg"].as_str().unwrap_or_default(),
                sent["to"].as_str().unwrap_or_default(),
                if sent["via"] == "relay" {
                    "through its relays"
                } else {
                    "directly"
                },
                sent["duid"].as_str().unwrap_or_default(),
                sent["link"].as_str().unwrap_or_default(),
            )?;
        }
        CtlCommand::Reservations { .. } | CtlCommand::Reload => {
            let value: serde_json::Value = answer.parse()?;
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
    }
    Ok(())
}

/// The method, path (with query) and body of a command.
pub fn plan(command: &CtlCommand) -> (Method, String, Option<serde_json::Value>) {
    match command {
        CtlCommand::Leases {
            address,
            prefix,
            duid,
            iaid,
            hw_address,
            link,
            pool,
            after,
            limit,
        } => {
            let mut pairs: Vec<(&str, String)> = Vec::new();
            let mut put = |name: &'static str, value: Option<String>| {
                if let Some(value) = value {
                    pairs.push((name, value));
                }
            };
            put("address", address.clone());
            put("prefix", prefix.clone());
            put("duid", duid.clone());
            put("iaid", iaid.map(|n| n.to_string()));
            put("hw-address", hw_address.clone());
            put("link", link.clone());
            put("pool", pool.map(|n| n.to_string()));
            put("after", after.clone());
            put("limit", limit.map(|n| n.to_string()));
            (Method::GET, with_query("/v1/leases", &pairs), None)
        }
        CtlCommand::Release { lease } => {
            let name = if lease.contains('/') {
                "prefix"
            } else {
                "address"
            };
            (
                Method::DELETE,
                with_query("/v1/leases", &[(name, lease.clone())]),
                None,
            )
        }
        CtlCommand::Pools => (Method::GET, "/v1/pools".to_owned(), None),
        CtlCommand::Reservations { command } => match command {
            ReservationCommand::List => (Method::GET, "/v1/reservations".to_owned(), None),
            ReservationCommand::Add(reservation) => (
                Method::POST,
                "/v1/reservations".to_owned(),
                Some(reservation.to_json()),
            ),
            ReservationCommand::Remove(reservation) => (
                Method::DELETE,
                "/v1/reservations".to_owned(),
                Some(reservation.to_json()),
            ),
        },
        CtlCommand::Server => (Method::GET, "/v1/server".to_owned(), None),
        CtlCommand::Config => (Method::GET, "/v1/config".to_owned(), None),
        CtlCommand::Reload => (Method::POST, "/v1/reload".to_owned(), None),
        CtlCommand::Reconfigure { duid, msg } => (
            Method::POST,
            "/v1/reconfigure".to_owned(),
            Some(serde_json::json!({ "duid": duid, "msg": msg })),
        ),
    }
}

/// Rows under a header, columns aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    let header: Vec<String> = header.iter().map(|cell| (*cell).to_owned()).collect();
    for line in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// Leases as `xdhcp6d leases` prints them.
pub fn lease_table(leases: &[LeaseView]) -> String {
    let lifetime = |seconds: Option<u32>| seconds.map_or("infinite".to_owned(), |s| s.to_string());
    let rows: Vec<Vec<String>> = leases
        .iter()
        .map(|lease| {
            vec![
                lease.duid.clone(),
                lease.iaid.to_string(),
                lease.kind.clone(),
                lease.lease.clone(),
                lease.link.clone(),
                lease.state.clone(),
                lifetime(lease.preferred),
                lifetime(lease.valid),
                lease.expires_at.clone(),
            ]
        })
        .collect();
    table(
        &[
            "DUID",
            "IAID",
            "KIND",
            "LEASE",
            "LINK",
            "STATE",
            "PREFERRED",
            "VALID",
            "EXPIRES",
        ],
        &rows,
    )
}

/// Pool slices as a table.
pub fn pool_table(pools: &Pools) -> String {
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    let rows: Vec<Vec<String>> = pools
        .pools
        .iter()
        .map(|pool| {
            vec![
                pool.link.clone(),
                pool.pool.to_string(),
                pool.kind.clone(),
                pool.prefix.clone(),
                pool.range.clone(),
                or_dash(pool.size.map(|size| size.to_string())),
                pool.bound.to_string(),
                pool.offered.to_string(),
                pool.declined.to_string(),
                or_dash(pool.free.map(|free| free.to_string())),
            ]
        })
        .collect();
    table(
        &[
            "LINK", "POOL", "KIND", "PREFIX", "RANGE", "SIZE", "BOUND", "OFFERED", "DECLINED",
            "FREE",
        ],
        &rows,
    )
}

/// The server's state as lines and a table of workers.
pub fn server_text(server: &ServerView) -> String {
    let journal = &server.journal;
    let mut text = format!(
        "version:   {}\npid:       {}\nuptime:    {} s\nconfig:    {}\nduid:      {}\nlinks:     {}\nleases:    {}\ndatapath:  {}{}\njournal:   {} ({}), {}, lag {}, {} write failure(s)\n",
        server.version,
        server.pid,
        server.uptime,
        server.config_file,
        server.duid,
        server.links,
        server.leases,
        server.datapath,
        if server.xdp.is_empty() {
            String::new()
        } else {
            format!(" (XDP on {})", server.xdp.join(", "))
        },
        journal.path,
        journal.durability,
        if journal.healthy {
            "healthy"
        } else {
            "FAILING"
        },
        journal.lag,
        journal.write_failures,
    );
    let rows: Vec<Vec<String>> = server
        .workers
        .iter()
        .map(|worker| {
            vec![
                worker.datapath.clone(),
                worker.index.to_string(),
                worker.received.to_string(),
                worker.sent.to_string(),
                worker.dropped.to_string(),
                worker.bad_frames.to_string(),
                worker.send_failures.to_string(),
            ]
        })
        .collect();
    text.push('\n');
    text.push_str(&table(
        &[
            "WORKER",
            "#",
            "RECEIVED",
            "SENT",
            "DROPPED",
            "BAD FRAMES",
            "SEND FAILURES",
        ],
        &rows,
    ));
    text
}
