//! Any bytes as a DHCPv6 message: parsing never panics, every option view can be read, and
//! whatever parses re-encodes to exactly the bytes it came from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xdhcp6_proto::{DhcpOption, Options, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::parse(data) else {
        return;
    };
    let _ = packet.msg_type();
    walk(packet.options());

    let mut buf = [0u8; 2048];
    if let Ok(len) = packet.encode(&mut buf) {
        assert_eq!(&buf[..len], data, "re-encoding changed the message");
        let again = Packet::parse(&buf[..len]).expect("our own output must parse");
        assert_eq!(again, packet);
    }
});

/// Reads every option and the options nested in IAs, iteratively (an explicit stack).
fn walk(options: Options<'_>) {
    let mut stack = vec![options];
    while let Some(options) = stack.pop() {
        for option in options {
            let Ok(option) = option else { break };
            let _ = option.code();
            match option {
                DhcpOption::IaNa(ia) => stack.push(ia.options()),
                DhcpOption::IaPd(ia) => stack.push(ia.options()),
                DhcpOption::IaTa(ia) => stack.push(ia.options()),
                DhcpOption::IaAddr(addr) => stack.push(addr.options()),
                DhcpOption::IaPrefix(prefix) => stack.push(prefix.options()),
                DhcpOption::LqQuery(query) => stack.push(query.options()),
                DhcpOption::ClientData(options) => stack.push(options),
                DhcpOption::DomainList(list) => {
                    for name in list.iter() {
                        let _ = name.labels().count();
                    }
                }
                DhcpOption::NtpServer(server) => {
                    let _ = server.suboptions().count();
                }
                _ => {}
            }
            if stack.len() > 64 {
                return;
            }
        }
    }
}
