//! The reflector: the cheapest possible "server" for measuring the ceiling of a link.
//!
//! Every frame the server-side XDP program (`xdhcp6_xdp`, UDP to port 547) steers to the socket
//! is turned around in place ([`frame::reflect`]: MACs, addresses and ports swapped, checksum
//! updated) and put on the TX ring as it is: no copy, no allocation, one wakeup per batch.
//! `xdhcp6-reflect` runs [`run`] until SIGINT or SIGTERM.

use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use xdhcp6_datapath::XskQueue;

use crate::afxdp::BATCH;
use crate::frame::{self, Mac, Side};

/// What the reflector did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReflectStats {
    /// Frames received on the socket.
    pub received: u64,
    /// Frames sent back.
    pub reflected: u64,
    /// Frames dropped as malformed (lengths, not DHCPv6 to a server).
    pub bad_frames: u64,
    /// Frames dropped because the TX ring was full.
    pub tx_full: u64,
}

/// Reflects one batch, if any arrived; returns how many frames were received.
pub fn poll(
    queue: &mut XskQueue,
    mac: &Mac,
    link_local: &Ipv6Addr,
    stats: &mut ReflectStats,
) -> u32 {
    queue.reclaim();
    // Received frames are sent back in place, so every free frame can wait in the fill ring.
    queue.refill(0);
    queue.kick_tx();
    let (rx_first, count) = queue.rx_peek(BATCH);
    if count == 0 {
        queue.kick_rx();
        return 0;
    }
    let (tx_first, space) = queue.tx_space();
    let mut queued = 0;
    for i in 0..count {
        let Some(desc) = queue.rx_desc(rx_first.wrapping_add(i)) else {
            continue;
        };
        // The checksum is not verified here: the incremental update keeps a wrong one wrong,
        // and the generator checks every echo.
        let parsed = frame::parse_headers(queue.frame(desc.addr, desc.len as usize), Side::Server);
        match parsed {
            Ok(received) if queued < space => {
                // The frame came off the RX ring and is neither recycled nor submitted yet.
                let buf = queue.frame_mut(desc.addr);
                match frame::reflect(buf, &received, mac, link_local) {
                    Some(len) => {
                        queue.tx_write(tx_first.wrapping_add(queued), desc.addr, len as u32);
                        queued += 1;
                    }
                    None => {
                        stats.bad_frames += 1;
                        queue.recycle(desc.addr);
                    }
                }
            }
            Ok(_) => {
                stats.tx_full += 1;
                queue.recycle(desc.addr);
            }
            Err(_) => {
                stats.bad_frames += 1;
                queue.recycle(desc.addr);
            }
        }
    }
    queue.rx_release(rx_first, count);
    queue.tx_submit(tx_first, queued);
    queue.kick_rx();
    stats.received += u64::from(count);
    stats.reflected += u64::from(queued);
    count
}

/// Reflects until `stop` is set; an idle loop sleeps in `ppoll(2)` for up to 10 ms.
pub fn run(
    queue: &mut XskQueue,
    mac: &Mac,
    link_local: &Ipv6Addr,
    stop: &AtomicBool,
    stats: &mut ReflectStats,
) {
    while !stop.load(Ordering::Relaxed) {
        if poll(queue, mac, link_local, stats) == 0 {
            let wait = if queue.in_tx() > 0 {
                Duration::from_micros(100)
            } else {
                Duration::from_millis(10)
            };
            queue.wait_for(wait);
        }
    }
    // Let the last replies leave and their frames come back.
    for _ in 0..100 {
        queue.kick_tx();
        queue.reclaim();
        if queue.in_tx() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
