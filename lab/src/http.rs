//! A minimal HTTP GET for the daemon's metrics endpoint, and reading the metrics it serves.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::{Error, Result};

/// Fetches `path` from `address` and returns the body; fails unless the status is 200.
pub fn get(address: SocketAddr, path: &str) -> Result<String> {
    let timeout = Duration::from_secs(5);
    let what = format!("http://{address}{path}");
    let mut stream =
        TcpStream::connect_timeout(&address, timeout).map_err(Error::io(what.clone()))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(Error::io(what.clone()))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(Error::io(what.clone()))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(Error::io(what.clone()))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        return Err(Error::State(format!("{what}: {status}")));
    }
    Ok(body.to_owned())
}

/// The sum of a metric's samples (all label sets) in a metrics text.
pub fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_adds_every_label_set_of_one_name() {
        let text = "# HELP x\nx_total{a=\"1\"} 2\nx_total{a=\"2\"} 3\nx_total_more 9\nx_total 1\n";
        assert_eq!(metric_sum(text, "x_total"), 6);
    }
}
