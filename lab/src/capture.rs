//! tcpdump captures of DHCPv6 traffic, read back through tshark.

use std::net::Ipv6Addr;
use std::path::Path;
use std::process::Command;

use crate::Result;
use crate::cmd;
use crate::netns::Netns;

/// The capture filter of DHCPv6 between clients and servers, both ways.
pub const CLIENTS_AND_SERVERS: &[&str] = &["udp", "port", "546", "or", "udp", "port", "547"];

/// The capture filter of what reaches the clients' port only.
pub const TO_CLIENTS: &[&str] = &["udp", "dst", "port", "546"];

/// `tcpdump` in `netns` writing the traffic of `interface` that `filter` selects (such as
/// [`CLIENTS_AND_SERVERS`]) to `file`. It says `listening on` on its standard error once it
/// captures.
pub fn tcpdump(netns: &Netns, interface: &str, file: &Path, filter: &[&str]) -> Command {
    let mut command = netns.command("tcpdump");
    command
        .args(["-i", interface, "-n"])
        // Frames are not left in an unretired ring block when tcpdump stops.
        .args(["--immediate-mode", "-U", "-w"])
        .arg(file)
        .args(filter);
    command
}

/// One DHCPv6 message of a capture, as tshark decodes it.
#[derive(Clone, Debug, Default)]
pub struct CapturedMessage {
    /// Seconds since the epoch.
    pub time: f64,
    /// The message type (1 Solicit, 2 Advertise, 3 Request, 5 Renew, 6 Rebind, 7 Reply).
    pub msg_type: u8,
    /// The transaction id as tshark prints it.
    pub xid: String,
    /// The Preference option, if any.
    pub preference: Option<u8>,
    /// IA Address options: address, preferred and valid lifetime.
    pub addresses: Vec<(Ipv6Addr, u32, u32)>,
    /// IA Prefix options: `prefix/length`, preferred and valid lifetime.
    pub prefixes: Vec<(String, u32, u32)>,
}

/// The DHCPv6 messages between client and server ports in a capture, in order.
pub fn captured_messages(capture: &Path) -> Result<Vec<CapturedMessage>> {
    let fields = [
        "frame.time_epoch",
        "dhcpv6.msgtype",
        "dhcpv6.xid",
        "dhcpv6.option_preference",
        "dhcpv6.iaaddr.ip",
        "dhcpv6.iaaddr.pref_lifetime",
        "dhcpv6.iaaddr.valid_lifetime",
        "dhcpv6.iaprefix.pref_addr",
        "dhcpv6.iaprefix.pref_len",
        "dhcpv6.iaprefix.pref_lifetime",
        "dhcpv6.iaprefix.valid_lifetime",
    ];
    let mut command = Command::new("tshark");
    command
        .arg("-r")
        .arg(capture)
        .args(["-Y", "dhcpv6", "-T", "fields", "-E", "separator=|"]);
    for field in &fields {
        command.args(["-e", field]);
    }
    let text = cmd::output(&mut command)?;
    Ok(text
        .lines()
        .filter_map(|line| parse_row(line, fields.len()))
        .collect())
}

fn parse_row(line: &str, width: usize) -> Option<CapturedMessage> {
    let list = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let numbers = |text: &str| -> Vec<u32> {
        list(text)
            .iter()
            .filter_map(|item| item.parse().ok())
            .collect()
    };
    let columns: Vec<&str> = line.split('|').collect();
    if columns.len() != width {
        return None;
    }
    let addresses = list(columns[4])
        .iter()
        .zip(numbers(columns[5]))
        .zip(numbers(columns[6]))
        .filter_map(|((address, preferred), valid)| Some((address.parse().ok()?, preferred, valid)))
        .collect();
    let prefixes = list(columns[7])
        .iter()
        .zip(list(columns[8]))
        .zip(numbers(columns[9]))
        .zip(numbers(columns[10]))
        .map(|(((prefix, length), preferred), valid)| {
            (format!("{prefix}/{length}"), preferred, valid)
        })
        .collect();
    Some(CapturedMessage {
        time: columns[0].parse().ok()?,
        // A relayed message lists the relay type first, the client's message last.
        msg_type: list(columns[1]).last()?.parse().ok()?,
        xid: columns[2].to_owned(),
        preference: list(columns[3]).first().and_then(|p| p.parse().ok()),
        addresses,
        prefixes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_reply_row_parses() {
        let row = "1.25|12,7|0x00abcd|255|2001:db8:1::5|200|300|2001:db8:100::|56|200|300";
        let message = parse_row(row, 11).unwrap();
        assert_eq!((message.msg_type, message.preference), (7, Some(255)));
        assert_eq!(
            message.addresses,
            vec![("2001:db8:1::5".parse().unwrap(), 200, 300)]
        );
        assert_eq!(
            message.prefixes,
            vec![("2001:db8:100::/56".to_owned(), 200, 300)]
        );
        assert!(parse_row("1|2", 11).is_none());
    }
}
