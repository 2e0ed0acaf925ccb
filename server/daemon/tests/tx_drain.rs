//! Sending a burst over AF_XDP in copy mode: one `sendto` sends at most 32 frames and answers
//! EAGAIN while more wait, so a queue that drains the TX ring ([`XskQueue::drain_tx`], the
//! server's workers) sends a whole burst in one submit, and one that does not leaves the rest
//! for its next wakeup. A veth pair in a fresh namespace; needs root, not the eBPF object
//! (nothing is received).

use xdhcp6_datapath::{BindMode, InterfaceInfo, XskConfig, XskQueue, XskSocket};

#[path = "support/veth.rs"]
mod veth;

use veth::VethPair;

/// More than the kernel sends per wakeup (32), fewer than the TX ring holds.
const BURST: u32 = 200;

#[test]
#[ignore = "needs root; run by cargo xtask test"]
fn a_draining_queue_sends_a_burst_in_one_submit() {
    assert_eq!(unsent_after_one_submit(true), 0);
}

#[test]
#[ignore = "needs root; run by cargo xtask test"]
fn without_draining_a_burst_waits_for_more_wakeups() {
    // What the drain is for: the kernel stops after a batch and leaves the rest queued.
    let unsent = unsent_after_one_submit(false);
    assert!(unsent > 0 && unsent < BURST, "{unsent} of {BURST} unsent");
}

/// Submits [`BURST`] frames at once on a copy-mode socket of the veth's server end, then
/// reclaims what was sent; returns how many are still the kernel's to send.
fn unsent_after_one_submit(drain: bool) -> u32 {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let interface = InterfaceInfo::query(VethPair::SERVER, None).unwrap();
        let config = XskConfig {
            frames: 1024,
            ring_size: 512,
            batch: 64,
            mode: BindMode::Copy,
            ..XskConfig::default()
        };
        let socket = XskSocket::bind(&interface, 0, &config).unwrap();
        let mut queue = XskQueue::new(socket);
        queue.drain_tx(drain);
        let (first, space) = queue.tx_space();
        assert!(space >= BURST);
        for i in 0..BURST {
            let addr = queue.alloc().expect("a free frame");
            let frame = queue.frame_mut(addr);
            // Broadcast, from the server's MAC, a local experimental EtherType: the peer's
            // stack drops it, the transmit completes all the same.
            frame[..6].fill(0xff);
            frame[6..12].copy_from_slice(&interface.mac);
            frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
            frame[14..60].fill(i as u8);
            queue.tx_write(first.wrapping_add(i), addr, 60);
        }
        queue.tx_submit(first, BURST);
        // Copy mode sends inside the wakeup: what it sent is on the completion ring now.
        queue.reclaim();
        let unsent = queue.in_tx();
        // Whatever was left leaves with later wakeups; every frame comes back.
        for _ in 0..BURST {
            if queue.in_tx() == 0 {
                break;
            }
            queue.kick_tx();
            queue.reclaim();
        }
        assert_eq!(queue.in_tx(), 0);
        assert!(queue.audit().is_complete(), "{:?}", queue.audit());
        unsent
    })
}
