//! A minimal HTTP GET, run inside a namespace to read the daemon's metrics endpoint.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Options of the hidden `http-get` task.
#[derive(clap::Args)]
pub struct Options {
    /// Address of the server, e.g. [::1]:9547.
    address: SocketAddr,
    /// Path to fetch.
    path: String,
}

/// Fetches `path` from `address` and prints the body; fails unless the status is 200.
pub fn run(options: &Options) -> Result<()> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&options.address, timeout)
        .with_context(|| format!("connecting to {}", options.address))?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        options.path, options.address
    )?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .with_context(|| format!("reading the answer of {}", options.address))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        bail!("{}{}: {status}", options.address, options.path);
    }
    print!("{body}");
    Ok(())
}
