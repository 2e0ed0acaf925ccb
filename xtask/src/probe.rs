//! Probe traffic for the demo: DHCPv6 Solicits (which the XDP program steers) and other UDP
//! datagrams (which it passes), sent to the All_DHCP_Relay_Agents_and_Servers group.

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::time::Duration;

use anyhow::{Context, Result};

/// Options of the hidden `send-probes` task.
#[derive(clap::Args)]
pub struct Options {
    /// Interface to send from.
    #[arg(long)]
    interface: String,
    /// How many packets of each kind.
    #[arg(long, default_value_t = 5)]
    count: u32,
}

/// ff02::1:2, All_DHCP_Relay_Agents_and_Servers (RFC 9915 §7.1).
const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

pub fn run(options: &Options) -> Result<()> {
    let index_path = format!("/sys/class/net/{}/ifindex", options.interface);
    let ifindex: u32 = std::fs::read_to_string(&index_path)
        .with_context(|| format!("reading {index_path}"))?
        .trim()
        .parse()
        .with_context(|| format!("parsing {index_path}"))?;
    let socket = UdpSocket::bind(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 546, 0, 0))
        .context("binding [::]:546")?;
    let dhcp = SocketAddrV6::new(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, 547, 0, ifindex);
    let other = SocketAddrV6::new(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, 5547, 0, ifindex);
    for n in 0..options.count {
        socket
            .send_to(&solicit(n), dhcp)
            .with_context(|| format!("sending a Solicit to {dhcp}"))?;
        socket
            .send_to(b"not dhcpv6", other)
            .with_context(|| format!("sending a datagram to {other}"))?;
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "sent {} DHCPv6 Solicits to {dhcp} and {} other UDP datagrams to {other}",
        options.count, options.count
    );
    Ok(())
}

/// A minimal Solicit: transaction id, Client Identifier (DUID-LL), Elapsed Time, an empty IA_NA.
fn solicit(n: u32) -> Vec<u8> {
    let xid = 0x00de_0000_u32.wrapping_add(n) & 0x00ff_ffff;
    let mut packet = vec![1];
    packet.extend_from_slice(&xid.to_be_bytes()[1..]);
    // OPTION_CLIENTID: DUID-LL, hardware type 1 (Ethernet), a locally administered MAC.
    packet.extend_from_slice(&[0, 1, 0, 10, 0, 3, 0, 1, 0x02, 0, 0, 0, 0, n as u8]);
    // OPTION_ELAPSED_TIME: 0.
    packet.extend_from_slice(&[0, 8, 0, 2, 0, 0]);
    // OPTION_IA_NA: IAID n, T1 = T2 = 0.
    packet.extend_from_slice(&[0, 3, 0, 12]);
    packet.extend_from_slice(&n.to_be_bytes());
    packet.extend_from_slice(&[0; 8]);
    packet
}
