//! ISC `dhcrelay -6`: a relay agent between a clients' link and upstream servers.

use std::process::Command;

use crate::netns::Netns;

/// What dhcrelay says on its standard error once it relays.
pub const READY: &str = "Sending on";

/// `dhcrelay -6` in `netns` in the foreground, without a pid file, listening for clients on
/// `downstream` and relaying to each of `upstreams` (`ADDRESS%INTERFACE`).
pub fn dhcrelay(netns: &Netns, downstream: &str, upstreams: &[String]) -> Command {
    let mut command = netns.command("dhcrelay");
    command.args(["-6", "-d", "--no-pid", "-l", downstream]);
    for upstream in upstreams {
        command.args(["-u", upstream]);
    }
    command
}
