//! Relay chains: walking Relay-forward/Relay-reply nesting never panics, never goes deeper than
//! the limit, and the client message at the end re-encodes to its own bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xdhcp6_proto::{MAX_RELAY_HOPS, OptionCode, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(Packet::Relay(relay)) = Packet::parse(data) else {
        return;
    };
    let Ok(chain) = relay.chain() else {
        return;
    };
    assert!(chain.len() >= 1 && chain.len() <= MAX_RELAY_HOPS);
    let mut hops = 0;
    for hop in chain.hops() {
        hops += 1;
        let _ = (hop.hop_count(), hop.link_address(), hop.peer_address());
        let _ = hop.options().find_raw(OptionCode::InterfaceId);
    }
    assert_eq!(hops, chain.len(), "hops() must visit every relay of the chain");
    assert_eq!(chain.innermost().link_address(), chain.hops().last().map(|h| h.link_address()).unwrap());

    let message = chain.message();
    let _ = (message.msg_type(), message.transaction_id());
    let mut buf = [0u8; 2048];
    if let Ok(len) = Packet::Client(message).encode(&mut buf) {
        let inner = chain.innermost().relayed_message().expect("validated chain");
        assert_eq!(&buf[..len], inner, "re-encoding the relayed message changed it");
    }
});
