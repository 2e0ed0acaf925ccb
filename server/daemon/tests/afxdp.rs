//! The AF_XDP datapath end to end: a veth pair in a fresh network namespace, the XDP program on
//! the server end, AF_XDP workers on its queues, and real frames sent and received on the peer
//! with AF_PACKET sockets.
//!
//! These need root and the built object: `cargo xtask test` builds it and runs
//! `XDHCP6_EBPF_OBJECT=... cargo test -p xdhcp6d -- --include-ignored --test-threads=1`.
//! Nothing here skips itself.

use std::{
    io,
    mem::{size_of, zeroed},
    net::Ipv6Addr,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    ptr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use xdhcp6_common::{
    IPPROTO_UDP,
    ethertype::{QINQ, VLAN},
    frames::{Frame, FrameBuilder, SOURCE_ADDRESS, SOURCE_MAC},
    wire::{Headers, checksum},
};
use xdhcp6_engine::{
    Destination, DropReason, Engine,
    alloc::SaltKey,
    config::Config,
    proto::MessageType,
    table::{Discard, EventSink, LeaseEvent, LeaseTable},
};
use xdhcp6d::{
    afxdp::{self, BindMode, InterfaceInfo, ReplyPlan, XskConfig, XskSocket, XskWorker},
    events::{Barrier, Events},
    frame::{FrameError, FrameMeta},
    handoff::Spread,
    stats::WorkerStats,
    xdp::AttachMode,
};

#[path = "support/veth.rs"]
mod veth;

use veth::{VethPair, if_index, load, send_frame};
use xdhcp6_datapath::wake::{Wakeup, wait_any};
use xdhcp6_lab::fixtures;

/// Solicit, transaction 0x123456, with an Elapsed Time option.
const SOLICIT: &[u8] = &[1, 0x12, 0x34, 0x56, 0, 8, 0, 2, 0, 0];

/// Round trips for the leak checks.
const ROUND_TRIPS: usize = 300;

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn copy_mode_replies_with_native_xdp() {
    replies_and_accounts_every_frame(AttachMode::Native, true);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn copy_mode_replies_with_generic_xdp() {
    // Also without XDP_USE_NEED_WAKEUP: a wakeup every batch.
    replies_and_accounts_every_frame(AttachMode::Skb, false);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn every_queue_has_a_worker() {
    let pair = VethPair::with_queues(2);
    pair.run_in_namespace(|| {
        let mut steering = load();
        steering
            .attach(VethPair::SERVER, AttachMode::Native)
            .unwrap();
        let interface = InterfaceInfo::query(VethPair::SERVER, None).unwrap();
        assert_eq!(afxdp::rx_queue_count(VethPair::SERVER), 2);
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for queue in 0..2 {
            let socket = XskSocket::bind(&interface, queue, &copy_config()).unwrap();
            let server = XskWorker::new(socket, &interface);
            afxdp::register(&mut steering, server.socket()).unwrap();
            workers.push(spawn_echo(server, &interface, &stop));
        }
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();
        for i in 0..ROUND_TRIPS {
            // The flow label enters the flow hash that picks the peer's transmit queue, and a
            // veth delivers on the receive queue of the same number: vary it to use both.
            let mut request = solicit(&[], i as u32);
            request.bytes_mut()[15..18].copy_from_slice(&(i as u32).to_be_bytes()[1..]);
            client.send(request.bytes()).unwrap();
            let reply = client.receive_reply().expect("no reply");
            check_reply(&reply, &request, &interface);
        }
        stop.store(true, Ordering::Relaxed);
        let mut received = Vec::new();
        for (worker, stats) in workers {
            let worker = worker.join().unwrap().unwrap();
            let audit = worker.audit();
            assert!(audit.is_complete(), "{audit:?}");
            received.push(stats.received[1].load(Ordering::Relaxed) as usize);
        }
        assert_eq!(received.iter().sum::<usize>(), ROUND_TRIPS, "{received:?}");
        assert!(received.iter().all(|count| *count > 0), "{received:?}");
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn engine_answers_direct_and_relayed_clients() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let mut steering = load();
        steering.attach(VethPair::SERVER, AttachMode::Auto).unwrap();
        let interface = InterfaceInfo::query(VethPair::SERVER, None).unwrap();
        assert_eq!(interface.global, Some(VethPair::SERVER_GLOBAL));
        // Auto: a veth has no zero-copy support, so this falls back to copy mode.
        let auto = XskConfig {
            mode: BindMode::Auto,
            ..copy_config()
        };
        let socket = XskSocket::bind(&interface, 0, &auto).unwrap();
        assert_eq!(socket.mode(), BindMode::Copy);
        let server = XskWorker::new(socket, &interface);
        afxdp::register(&mut steering, server.socket()).unwrap();

        let engine = Arc::new(engine());
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WorkerStats::default());
        let worker = {
            let (interface, engine, stop, stats) = (
                interface.clone(),
                Arc::clone(&engine),
                Arc::clone(&stop),
                Arc::clone(&stats),
            );
            thread::spawn(move || {
                let mut events: Vec<LeaseEvent> = Vec::new();
                let worker = afxdp::serve_queue(
                    server,
                    &interface,
                    None,
                    &engine,
                    || 1_750_000_000,
                    &mut events,
                    &stop,
                    &stats,
                );
                (worker, events)
            })
        };
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();

        // A direct client, untagged and on VLAN 101 inside S-tag 100.
        for tags in [&[][..], &[QINQ, VLAN]] {
            let message = client_solicit(0x00ab_cd01, 7);
            let request = FrameBuilder::with_tags(tags)
                .ipv6(IPPROTO_UDP)
                .udp(546, 547, &message);
            client.send(request.bytes()).unwrap();
            let reply = client.receive_reply().expect("no Advertise");
            let view = check_reply(&reply, &request, &interface);
            assert_eq!(view.payload[0], 2, "Advertise");
            assert_eq!(&view.payload[1..4], &message[1..4], "transaction id");
        }

        // A relay agent on 2001:db8:ffff:1::1, from port 547 and from its own port.
        for source_port in [547, 40_000] {
            let relayed = relay_forward(&client_solicit(0x00ab_cd02, 8), source_port);
            let request = relayed_frame(&relayed, source_port);
            client.send(&request).unwrap();
            let reply = client.receive_reply().expect("no Relay-reply");
            let view = ReplyView::parse(&reply).expect("not IPv6/UDP");
            assert_eq!(view.source, VethPair::SERVER_GLOBAL);
            assert_eq!(view.destination, RELAY_ADDRESS);
            assert_eq!(view.hop_limit, 64);
            assert_eq!(view.source_port, 547);
            assert_eq!(view.destination_port, source_port);
            assert!(view.checksum_ok);
            assert_eq!(view.payload[0], 13, "Relay-reply");
        }

        stop.store(true, Ordering::Relaxed);
        let (worker, events) = worker.join().unwrap();
        let worker = worker.unwrap();
        assert!(worker.audit().is_complete(), "{:?}", worker.audit());
        assert!(
            events.is_empty(),
            "an Advertise reserves nothing: {events:?}"
        );
        assert_eq!(stats.received[1].load(Ordering::Relaxed), 4, "Solicits");
        assert_eq!(stats.sent[2].load(Ordering::Relaxed), 4, "Advertises");
        assert_eq!(stats.bad_frames.load(Ordering::Relaxed), 0);
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn spawned_workers_serve_every_queue_with_the_engine() {
    let pair = VethPair::with_queues(2);
    pair.run_in_namespace(|| {
        let mut steering = load();
        // Native: in generic mode a veth reports every frame on receive queue 0.
        steering
            .attach(VethPair::SERVER, AttachMode::Native)
            .unwrap();
        let interface = InterfaceInfo::query(VethPair::SERVER, None).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // Each queue's requests answered by its own worker.
        let workers = afxdp::spawn_workers_with(
            &mut steering,
            &interface,
            &copy_config(),
            &[0],
            Arc::new(engine()),
            || 1_750_000_000,
            |_queue| Vec::<LeaseEvent>::new(),
            None,
            Spread::Off,
            Arc::clone(&stop),
        )
        .unwrap();
        assert_eq!(workers.threads.len(), 2);
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();
        for i in 0..64u32 {
            let message = client_solicit(0x0010_0000 + i, i as u8);
            let mut request = FrameBuilder::with_tags(&[])
                .ipv6(IPPROTO_UDP)
                .udp(546, 547, &message);
            request.bytes_mut()[16..18].copy_from_slice(&(i as u16).to_be_bytes());
            client.send(request.bytes()).unwrap();
            let reply = client.receive_reply().expect("no Advertise");
            let view = check_reply(&reply, &request, &interface);
            assert_eq!(view.payload[0], 2, "Advertise");
        }
        stop.store(true, Ordering::Relaxed);
        let mut per_queue = Vec::new();
        for (thread, stats) in workers.threads.into_iter().zip(&workers.stats) {
            let worker = thread.join().unwrap().unwrap();
            assert!(worker.audit().is_complete(), "{:?}", worker.audit());
            per_queue.push(stats.sent[2].load(Ordering::Relaxed));
        }
        assert_eq!(per_queue.iter().sum::<u64>(), 64, "{per_queue:?}");
        assert!(per_queue.iter().all(|sent| *sent > 0), "{per_queue:?}");
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn spawned_workers_spread_one_queues_clients_over_every_worker() {
    let pair = VethPair::with_queues(2);
    pair.run_in_namespace(|| {
        let mut steering = load();
        steering
            .attach(VethPair::SERVER, AttachMode::Native)
            .unwrap();
        let interface = InterfaceInfo::query(VethPair::SERVER, None).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // The default: spread by client.
        let workers = afxdp::spawn_workers(
            &mut steering,
            &interface,
            &copy_config(),
            &[0],
            Arc::new(engine()),
            || 1_750_000_000,
            |_queue| Vec::<LeaseEvent>::new(),
            None,
            Arc::clone(&stop),
        )
        .unwrap();
        assert_eq!(workers.threads.len(), 2);
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();
        // One relay agent (one address and port pair: one flow, one receive queue) for 64
        // clients, each behind its own peer-address.
        for i in 0..64u16 {
            let mut relayed =
                relay_forward(&client_solicit(0x0020_0000 + u32::from(i), i as u8), 547);
            let peer = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x0200, 0x5eff, 0xfe00, i + 1);
            relayed[18..34].copy_from_slice(&peer.octets());
            let request = relayed_frame(&relayed, 547);
            client.send(&request).unwrap();
            let reply = client.receive_reply().expect("no Relay-reply");
            let view = ReplyView::parse(&reply).expect("a reply frame");
            // Addressed from the request, whichever worker answered it.
            assert_eq!(view.payload[0], 13, "Relay-reply");
            assert_eq!(&view.payload[18..34], &peer.octets(), "peer-address");
            assert_eq!(view.destination, RELAY_ADDRESS);
            assert_eq!(view.source, VethPair::SERVER_GLOBAL);
            assert!(view.checksum_ok);
            assert_eq!(view.destination_mac, SOURCE_MAC);
            assert_eq!(view.source_mac, interface.mac);
        }
        stop.store(true, Ordering::Relaxed);
        let mut sent = Vec::new();
        let mut handed = Vec::new();
        for (thread, stats) in workers.threads.into_iter().zip(&workers.stats) {
            let worker = thread.join().unwrap().unwrap();
            // Every frame back where it belongs, the copies of handed requests included.
            assert!(worker.audit().is_complete(), "{:?}", worker.audit());
            sent.push(stats.sent[2].load(Ordering::Relaxed));
            handed.push((
                stats.handoff_out.load(Ordering::Relaxed),
                stats.handoff_in.load(Ordering::Relaxed),
                stats.handoff_full.load(Ordering::Relaxed),
            ));
        }
        assert_eq!(sent.iter().sum::<u64>(), 64, "{sent:?}");
        assert!(sent.iter().all(|sent| *sent > 0), "{sent:?} {handed:?}");
        // One worker received them all and handed the other's clients over.
        let out: u64 = handed.iter().map(|h| h.0).sum();
        let taken: u64 = handed.iter().map(|h| h.1).sum();
        assert!(out > 0 && out == taken, "{handed:?}");
        assert!(handed.iter().any(|h| h.0 == 0), "{handed:?}");
        assert!(handed.iter().all(|h| h.2 == 0), "{handed:?}");
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn bad_frames_are_counted_and_dropped() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let (_steering, interface, server) = native_copy_worker();
        let stop = Arc::new(AtomicBool::new(false));
        let (worker, stats) = spawn_echo(server, &interface, &stop);
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();

        let mut bad_checksum = solicit(&[VLAN], 1);
        let last = bad_checksum.bytes().len() - 1;
        bad_checksum.bytes_mut()[last] ^= 0xff;
        let mut bad_length = solicit(&[], 2);
        bad_length.bytes_mut()[14 + 40 + 5] += 1;
        client.send(bad_checksum.bytes()).unwrap();
        client.send(bad_length.bytes()).unwrap();
        // A good one after them: its reply proves the bad ones were handled first.
        let good = solicit(&[], 3);
        client.send(good.bytes()).unwrap();
        let reply = client.receive_reply().expect("no reply to the good frame");
        check_reply(&reply, &good, &interface);
        assert!(client.receive_reply().is_none(), "a bad frame was answered");

        stop.store(true, Ordering::Relaxed);
        let worker = worker.join().unwrap().unwrap();
        assert_eq!(stats.bad_frames.load(Ordering::Relaxed), 2);
        assert!(worker.audit().is_complete(), "{:?}", worker.audit());
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn solicit_to_a_foreign_ip_and_mac_over_afxdp_is_not_answered() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let (_steering, interface, server) = native_copy_worker();
        let stop = Arc::new(AtomicBool::new(false));
        let (worker, stats) = spawn_engine(engine(), server, &interface, &stop);
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();

        // Another host's MAC and address (a switch flooding, a promiscuous port).
        let foreign: Ipv6Addr = "2001:db8::99".parse().unwrap();
        let mut to_another_host = solicit_frame(client_solicit(0x00ab_0001, 21), &[]);
        to_another_host[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
        readdress(&mut to_another_host, None, Some(foreign));
        // Our group MAC, another host's address; another host's MAC, our group.
        let mut foreign_ip = solicit_frame(client_solicit(0x00ab_0002, 22), &[]);
        readdress(&mut foreign_ip, None, Some(foreign));
        let mut foreign_mac = solicit_frame(client_solicit(0x00ab_0003, 23), &[]);
        foreign_mac[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
        // From ::1: a reply would go on the wire to a loopback address.
        let mut from_loopback = solicit_frame(client_solicit(0x00ab_0004, 24), &[]);
        readdress(&mut from_loopback, Some(Ipv6Addr::LOCALHOST), None);
        for frame in [&to_another_host, &foreign_ip, &foreign_mac, &from_loopback] {
            client.send(frame).unwrap();
        }
        // A good one after them: its reply proves the others were handled first.
        let good = FrameBuilder::with_tags(&[]).ipv6(IPPROTO_UDP).udp(
            546,
            547,
            &client_solicit(0x00ab_0005, 25),
        );
        client.send(good.bytes()).unwrap();
        let reply = client.receive_reply().expect("no reply to the good frame");
        assert_eq!(check_reply(&reply, &good, &interface).payload[0], 2);
        assert!(
            client.receive_reply().is_none(),
            "a frame for another host was answered"
        );

        stop.store(true, Ordering::Relaxed);
        let _ = worker.join().unwrap();
        let errors = |error: FrameError| stats.frame_errors[error.index()].load(Ordering::Relaxed);
        assert_eq!(errors(FrameError::NotOurs), 3);
        assert_eq!(errors(FrameError::BadSource), 1);
        assert_eq!(stats.sent[2].load(Ordering::Relaxed), 1, "one Advertise");
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn relay_forward_on_a_management_interface_is_dropped_and_counted_over_afxdp() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let (_steering, interface, server) = native_copy_worker();
        let stop = Arc::new(AtomicBool::new(false));
        // Relay agents live on uplink0; this interface is for direct clients (and management).
        let engine = engine_with("relay-interfaces = [\"uplink0\"]");
        let (worker, stats) = spawn_engine(engine, server, &interface, &stop);
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();

        let relayed = relayed_frame(&relay_forward(&client_solicit(0x00ab_0006, 26), 547), 547);
        client.send(&relayed).unwrap();
        // Direct clients on the link are still answered.
        let good = FrameBuilder::with_tags(&[]).ipv6(IPPROTO_UDP).udp(
            546,
            547,
            &client_solicit(0x00ab_0007, 27),
        );
        client.send(good.bytes()).unwrap();
        let reply = client
            .receive_reply()
            .expect("no reply to the direct client");
        assert_eq!(check_reply(&reply, &good, &interface).payload[0], 2);
        assert!(client.receive_reply().is_none(), "the relay was answered");

        stop.store(true, Ordering::Relaxed);
        let _ = worker.join().unwrap();
        let index = DropReason::ALL
            .iter()
            .position(|reason| *reason == DropReason::RelayNotAllowed)
            .unwrap();
        assert_eq!(stats.dropped[index].load(Ordering::Relaxed), 1);
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn veth_client_with_checksum_offload_left_on_gets_answered_over_afxdp() {
    // The lab's veth keeps its offloads: a kernel UDP socket on the peer leaves the checksum
    // to "hardware" (CHECKSUM_PARTIAL), as containers and VMs on a bridge do.
    let pair = VethPair::new();
    // A link-local address usable at once (no DAD) to send from.
    pair.netns()
        .add_address(VethPair::CLIENT, "fe80::546/64")
        .unwrap();
    pair.run_in_namespace(|| {
        let (_steering, interface, server) = native_copy_worker();
        let stop = Arc::new(AtomicBool::new(false));
        let (worker, stats) = spawn_engine(engine(), server, &interface, &stop);

        let client = std::net::UdpSocket::bind("[::]:546").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let scope = if_index(VethPair::CLIENT).unwrap();
        let group = std::net::SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, scope);
        client
            .send_to(&client_solicit(0x00ab_0008, 28), group)
            .unwrap();
        let mut reply = [0u8; 1500];
        let (len, from) = client.recv_from(&mut reply).expect("no Advertise");
        assert_eq!(reply[0], 2, "Advertise: {:?}", &reply[..len]);
        assert_eq!(from.port(), 547);

        stop.store(true, Ordering::Relaxed);
        let _ = worker.join().unwrap();
        assert!(stats.partial_checksums.load(Ordering::Relaxed) >= 1);
        assert_eq!(stats.bad_frames.load(Ordering::Relaxed), 0);
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn reply_larger_than_the_mtu_is_counted_not_sent_over_afxdp() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let (_steering, interface, server) = native_copy_worker();
        assert_eq!(interface.mtu, Some(1500));
        let stop = Arc::new(AtomicBool::new(false));
        let engine = oversize_engine();
        let (worker, stats) = spawn_engine(engine, server, &interface, &stop);
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();

        let request = FrameBuilder::with_tags(&[]).ipv6(IPPROTO_UDP).udp(
            546,
            547,
            &client_solicit(0x00ab_0009, 29),
        );
        client.send(request.bytes()).unwrap();
        assert!(client.receive_reply().is_none(), "an oversize frame left");
        let deadline = Instant::now() + Duration::from_secs(5);
        let index = DropReason::ALL
            .iter()
            .position(|reason| *reason == DropReason::ReplyTooLarge)
            .unwrap();
        while stats.dropped[index].load(Ordering::Relaxed) == 0 {
            assert!(
                Instant::now() < deadline,
                "the oversize reply was not counted"
            );
            thread::sleep(Duration::from_millis(10));
        }

        stop.store(true, Ordering::Relaxed);
        let _ = worker.join().unwrap();
        assert_eq!(stats.sent[2].load(Ordering::Relaxed), 0, "counted as sent");
        assert_eq!(stats.dropped[index].load(Ordering::Relaxed), 1);
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn reply_larger_than_the_mtu_leaves_through_the_kernel_socket() {
    let pair = VethPair::new();
    // The server end's only link-local address is the one replies leave from, whenever the
    // kernel's own would have been made.
    let addresses = pair
        .netns()
        .ip(&[
            "-6",
            "addr",
            "show",
            "dev",
            VethPair::SERVER,
            "scope",
            "link",
        ])
        .unwrap();
    assert_eq!(addresses.matches("inet6 ").count(), 1, "{addresses}");
    assert!(addresses.contains("fe80::547/64"), "{addresses}");
    pair.netns()
        .add_address(VethPair::CLIENT, "fe80::546/64")
        .unwrap();
    pair.run_in_namespace(|| {
        let (_steering, interface, server) = native_copy_worker();
        let stop = Arc::new(AtomicBool::new(false));
        let kernel = Arc::new(xdhcp6d::udp::bind(547).unwrap());
        let (worker, stats) =
            spawn_engine_with(oversize_engine(), server, &interface, Some(kernel), &stop);

        let client = std::net::UdpSocket::bind("[::]:546").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let scope = if_index(VethPair::CLIENT).unwrap();
        let group = std::net::SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, scope);
        // The worker fills its fill ring once its thread runs: a Solicit that arrives before
        // that finds no frame and is lost, so the client retransmits, as clients do.
        let solicit = client_solicit(0x00ab_000a, 30);
        let mut reply = [0u8; 4096];
        let mut sent = 0;
        let (len, from) = loop {
            client.send_to(&solicit, group).unwrap();
            sent += 1;
            match client.recv_from(&mut reply) {
                Ok(received) => break received,
                Err(error) => assert!(sent < 5, "no Advertise to {sent} Solicits: {error}"),
            }
        };
        assert_eq!(reply[0], 2, "Advertise");
        assert!(len > 1500, "{len} bytes: the reply fits the MTU after all");
        assert_eq!(from.port(), 547);

        stop.store(true, Ordering::Relaxed);
        let worker = worker.join().unwrap().unwrap();
        assert!(worker.audit().is_complete(), "{:?}", worker.audit());
        let through_kernel = stats.replies_through_kernel.load(Ordering::Relaxed);
        assert!(
            (1..=sent).contains(&through_kernel),
            "{through_kernel} replies through the kernel for {sent} Solicits"
        );
        assert_eq!(stats.send_failures.load(Ordering::Relaxed), 0);
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn replies_wait_for_the_durability_barrier_and_are_dropped_when_it_fails() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let (_steering, interface, server) = native_copy_worker();
        // Each handled request issues the next mark.
        let worker = CountingEcho::start(server, &interface, FakeJournal::default(), |journal| {
            Barriered(Arc::clone(journal))
        });
        let CountingEcho { journal, stats, .. } = &worker;
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();

        // Handled one at a time (so each is a batch of its own, marks 1, 2 and 3) but not
        // durable: nothing leaves.
        let requests: Vec<Frame> = (1..=3).map(|i| solicit(&[], i)).collect();
        send_one_by_one(&client, journal, &requests);
        assert!(
            client.receive_reply().is_none(),
            "a reply left before its barrier"
        );
        // Durable up to 2: exactly the first two leave, in order.
        journal.durable.store(2, Ordering::Relaxed);
        for request in &requests[..2] {
            let reply = client.receive_reply().expect("a durable reply was held");
            check_reply(&reply, request, &interface);
        }
        assert!(
            client.receive_reply().is_none(),
            "the third left before its barrier"
        );
        // The journal fails: the third is dropped, counted, and its frame comes back.
        journal.failed.store(true, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(200));
        assert!(
            client.receive_reply().is_none(),
            "a reply left after the journal failed"
        );
        assert_eq!(stats.send_failures.load(Ordering::Relaxed), 1);

        worker.stop();
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn a_worker_holding_replies_takes_requests_during_the_sync_and_wakes_when_it_ends() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        // An idle timeout longer than the client waits for a reply: a held reply that leaves
        // in time was released by the journal's wakeup, not by the worker's timeout.
        let (_steering, interface, worker, wakeup) = waking_echo(XskConfig {
            idle_timeout_ms: 5_000,
            ..copy_config()
        });
        let journal = &worker.journal;
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();

        // The first request's reply waits for mark 1; meanwhile (the sync still running) the
        // worker takes the second, which a worker blocked on the journal would not.
        let requests: Vec<Frame> = (1..=2).map(|i| solicit(&[], i)).collect();
        send_one_by_one(&client, journal, &requests);
        assert!(
            client.receive_reply().is_none(),
            "a reply left before its barrier"
        );
        // Mark 1 is durable: the wakeup sends the first reply, and only it.
        journal.durable.store(1, Ordering::SeqCst);
        wakeup.notify();
        let reply = client
            .receive_reply()
            .expect("the wakeup did not release the reply");
        check_reply(&reply, &requests[0], &interface);
        assert!(
            client.receive_reply().is_none(),
            "the second left before its barrier"
        );
        journal.durable.store(2, Ordering::SeqCst);
        wakeup.notify();
        let reply = client
            .receive_reply()
            .expect("the wakeup did not release the reply");
        check_reply(&reply, &requests[1], &interface);

        let stats = worker.stop();
        assert_eq!(stats.send_failures.load(Ordering::Relaxed), 0);
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn the_replies_one_sync_releases_all_leave_before_the_worker_sleeps_again() {
    // The kernel's copy-mode transmit takes 32 descriptors per wakeup. A worker that submits
    // the hundred replies a sync released at once and wakes the kernel once sends 32 of them
    // and leaves the rest to its next turns, sleeping in poll(2) in between; one that submits
    // them in chunks, each with its wakeup, sends all of them in the turn the sync started.
    const HELD: u64 = 100;
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        // Room to hold them all (the TX ring and a quarter of the frames), and an idle
        // timeout longer than the test: only the journal's wakeup starts a turn.
        let (_steering, interface, worker, wakeup) = waking_echo(XskConfig {
            frames: 1024,
            ring_size: 256,
            idle_timeout_ms: 5_000,
            ..copy_config()
        });
        let journal = &worker.journal;
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();
        let requests: Vec<Frame> = (1..=HELD as u32).map(|i| solicit(&[], i)).collect();
        send_one_by_one(&client, journal, &requests);
        // The worker handled the last one and went to sleep on the journal.
        thread::sleep(Duration::from_millis(100));

        let before = voluntary_switches(ECHO_WORKER);
        journal.durable.store(HELD, Ordering::SeqCst);
        wakeup.notify();
        for (i, request) in requests.iter().enumerate() {
            let reply = client
                .receive_reply()
                .unwrap_or_else(|| panic!("reply {i} of {HELD} never left"));
            check_reply(&reply, request, &interface);
        }
        let slept = voluntary_switches(ECHO_WORKER) - before;
        // Once: back to sleep after the turn, which may come before the count is read.
        assert!(
            slept <= 1,
            "the worker slept {slept} times before the last of {HELD} released replies left"
        );

        let stats = worker.stop();
        assert_eq!(stats.send_failures.load(Ordering::Relaxed), 0);
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn a_busy_polling_worker_does_not_sleep_between_requests_and_still_stops() {
    // A worker that sleeps as soon as it finds nothing sleeps in poll(2) about every idle
    // timeout (20 ms) while nothing comes; one that busy-polls for longer than the pause
    // between two requests never does, yet answers both and stops when told. Its own
    // counters say the same: the sleeps it counted in the pause, and one busy turn for each
    // request, which came alone.
    let sleeping = pause_between_two_requests(0);
    assert!(
        sleeping.switches > 0,
        "the measure cannot tell: a worker without busy polling did not sleep in 300 ms"
    );
    assert!(
        // Counted just before each poll(2): one may be read before its switch is.
        sleeping.counted_sleeps > 0 && sleeping.counted_sleeps <= sleeping.switches + 1,
        "the worker counted {} sleeps in a pause in which its thread slept {} times",
        sleeping.counted_sleeps,
        sleeping.switches
    );
    assert_eq!(sleeping.busy_turns, 2, "two requests a turn apart");
    let polling = pause_between_two_requests(60_000_000);
    assert_eq!(
        polling.switches, 0,
        "a busy-polling worker slept between two requests"
    );
    assert_eq!(
        polling.counted_sleeps, 0,
        "a busy-polling worker counted sleeps"
    );
    assert_eq!(polling.busy_turns, 2, "two requests a turn apart");
}

/// What [`pause_between_two_requests`] saw.
struct Pause {
    /// The worker thread's voluntary context switches in the pause.
    switches: u64,
    /// The sleeps the worker counted in the pause (`WorkerStats::sleeps`).
    counted_sleeps: u64,
    /// The turns that found requests, over the whole run (`WorkerStats::busy_turns`).
    busy_turns: u64,
}

/// Starts a worker with `busy_poll_us`, has it answer a request, waits 300 ms, has it
/// answer another and stops it; returns how often its thread went to sleep in the pause and
/// what its counters say.
fn pause_between_two_requests(busy_poll_us: u32) -> Pause {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let (_steering, interface, server) = native_copy_worker_with(&XskConfig {
            busy_poll_us,
            ..copy_config()
        });
        let journal = FakeJournal {
            durable: AtomicU64::new(u64::MAX),
            ..FakeJournal::default()
        };
        let worker = CountingEcho::start(server, &interface, journal, |journal| {
            Barriered(Arc::clone(journal))
        });
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();
        let first = solicit(&[], 1);
        client.send(first.bytes()).unwrap();
        let reply = client
            .receive_reply()
            .expect("no answer to the first request");
        check_reply(&reply, &first, &interface);

        let sleeps = || worker.stats.sleeps.load(Ordering::Relaxed);
        let (before, slept_before) = (voluntary_switches(ECHO_WORKER), sleeps());
        thread::sleep(Duration::from_millis(300));
        let (after, slept_after) = (voluntary_switches(ECHO_WORKER), sleeps());

        let second = solicit(&[], 2);
        client.send(second.bytes()).unwrap();
        let reply = client
            .receive_reply()
            .expect("no answer to the second request");
        check_reply(&reply, &second, &interface);
        let stats = worker.stop();
        Pause {
            switches: after - before,
            counted_sleeps: slept_after - slept_before,
            busy_turns: stats.busy_turns.load(Ordering::Relaxed),
        }
    })
}

/// The voluntary context switches of this process's thread called `name` (its sleeps).
fn voluntary_switches(name: &str) -> u64 {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        if std::fs::read_to_string(task.join("comm")).unwrap().trim() != name {
            continue;
        }
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .expect("no voluntary_ctxt_switches in /proc/self/task/*/status");
        return line.trim().parse().unwrap();
    }
    panic!("no thread called {name}");
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn while_the_journal_cannot_write_no_solicit_reaches_the_engine_over_af_xdp() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let (_steering, interface, server) = native_copy_worker();
        let journal = FakeJournal {
            durable: AtomicU64::new(u64::MAX),
            stalled: AtomicBool::new(true),
            ..FakeJournal::default()
        };
        let worker = CountingEcho::start(server, &interface, journal, |journal| {
            Barriered(Arc::clone(journal))
        });
        let CountingEcho { journal, stats, .. } = &worker;
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();
        let dropped = || {
            let index = xdhcp6_engine::DropReason::ALL
                .iter()
                .position(|reason| *reason == xdhcp6_engine::DropReason::JournalUnavailable)
                .unwrap();
            stats.dropped[index].load(Ordering::Relaxed)
        };

        let first = solicit(&[], 1);
        client.send(first.bytes()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while dropped() < 1 {
            assert!(Instant::now() < deadline, "the Solicit was not counted");
            thread::sleep(Duration::from_millis(5));
        }
        assert!(client.receive_reply().is_none(), "answered a Solicit");
        assert_eq!(
            journal.issued.load(Ordering::Relaxed),
            0,
            "the engine saw it"
        );

        // Writes work again: answered.
        journal.stalled.store(false, Ordering::Relaxed);
        let second = solicit(&[], 2);
        client.send(second.bytes()).unwrap();
        let reply = client
            .receive_reply()
            .expect("no answer once the journal writes");
        check_reply(&reply, &second, &interface);
        assert_eq!(dropped(), 1);

        worker.stop();
    });
}

fn replies_and_accounts_every_frame(mode: AttachMode, need_wakeup: bool) {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let mut steering = load();
        assert_eq!(steering.attach(VethPair::SERVER, mode).unwrap(), mode);
        let interface = InterfaceInfo::query(VethPair::SERVER, None).unwrap();
        assert!(interface.link_local.is_unicast_link_local());
        let config = XskConfig {
            need_wakeup,
            ..copy_config()
        };
        let socket = XskSocket::bind(&interface, 0, &config).unwrap();
        assert_eq!(socket.mode(), BindMode::Copy);
        let server = XskWorker::new(socket, &interface);
        afxdp::register(&mut steering, server.socket()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (worker, stats) = spawn_echo(server, &interface, &stop);
        let client = PacketSocket::new(VethPair::CLIENT).unwrap();

        // Every tag layout, and enough round trips to cycle every frame of the UMEM several
        // times (the free list, fill and completion rings must not lose any).
        let layouts: [&[u16]; 4] = [&[], &[VLAN], &[QINQ, VLAN], &[VLAN, VLAN]];
        for i in 0..ROUND_TRIPS {
            let request = solicit(layouts[i % layouts.len()], i as u32);
            client.send(request.bytes()).unwrap();
            let reply = client
                .receive_reply()
                .unwrap_or_else(|| panic!("no reply to request {i}"));
            check_reply(&reply, &request, &interface);
        }
        // And a burst larger than a batch, answered in full.
        for i in 0..100 {
            client.send(solicit(&[VLAN], 10_000 + i).bytes()).unwrap();
        }
        for i in 0..100 {
            client
                .receive_reply()
                .unwrap_or_else(|| panic!("burst reply {i} missing"));
        }

        stop.store(true, Ordering::Relaxed);
        let worker = worker.join().unwrap().unwrap();
        let audit = worker.audit();
        assert!(audit.is_complete(), "{audit:?}");
        assert_eq!(audit.total, copy_config().frames);
        let statistics = worker.socket().statistics().unwrap();
        assert_eq!(statistics.rx_dropped, 0);
        assert_eq!(statistics.tx_invalid_descs, 0);
        assert_eq!(statistics.rx_invalid_descs, 0);
        let received = stats.received[1].load(Ordering::Relaxed) as usize;
        assert_eq!(received, ROUND_TRIPS + 100);
        assert_eq!(stats.sent[2].load(Ordering::Relaxed) as usize, received);
        assert_eq!(stats.bad_frames.load(Ordering::Relaxed), 0);
        assert_eq!(stats.send_failures.load(Ordering::Relaxed), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Workers.

/// The program attached natively to the server end and one copy-mode socket on queue 0 in its
/// XskMap; the steering must outlive the socket's use.
fn native_copy_worker() -> (xdhcp6d::xdp::Steering, InterfaceInfo, XskWorker) {
    native_copy_worker_with(&copy_config())
}

/// [`native_copy_worker`] with the socket bound with `config`.
fn native_copy_worker_with(
    config: &XskConfig,
) -> (xdhcp6d::xdp::Steering, InterfaceInfo, XskWorker) {
    let mut steering = load();
    steering
        .attach(VethPair::SERVER, AttachMode::Native)
        .unwrap();
    let interface = InterfaceInfo::query(VethPair::SERVER, None).unwrap();
    let socket = XskSocket::bind(&interface, 0, config).unwrap();
    // Built (its fill ring primed) before the program may redirect to its socket.
    let server = XskWorker::new(socket, &interface);
    afxdp::register(&mut steering, server.socket()).unwrap();
    (steering, interface, server)
}

/// A counting echo worker on a native copy-mode socket with `config`, whose journal stand-in
/// wakes it through the returned `Wakeup` (as the journal's writer does once a mark is
/// durable); its replies wait for the stand-in's `durable` mark.
fn waking_echo(
    config: XskConfig,
) -> (
    xdhcp6d::xdp::Steering,
    InterfaceInfo,
    CountingEcho,
    Arc<Wakeup>,
) {
    let (steering, interface, server) = native_copy_worker_with(&config);
    let wakeup = Arc::new(Wakeup::new().unwrap());
    let worker = CountingEcho::start(server, &interface, FakeJournal::default(), |journal| {
        Waking(Barriered(Arc::clone(journal)), Arc::clone(&wakeup))
    });
    (steering, interface, worker, wakeup)
}

/// Small enough that the round trips cycle the UMEM many times.
fn copy_config() -> XskConfig {
    XskConfig {
        frames: 256,
        ring_size: 128,
        batch: 32,
        mode: BindMode::Copy,
        idle_timeout_ms: 20,
        ..XskConfig::default()
    }
}

/// A journal stand-in: each handled request issues the next mark; a test moves `durable` and
/// sets `failed`.
#[derive(Default)]
struct FakeJournal {
    issued: AtomicU64,
    durable: AtomicU64,
    failed: AtomicBool,
    /// Writes fail at the moment (a full disk): no binding may be made or extended.
    stalled: AtomicBool,
}

/// The events of a worker whose replies wait for [`FakeJournal`].
struct Barriered(Arc<FakeJournal>);

impl EventSink for Barriered {
    fn emit(&mut self, _: LeaseEvent) {}
}

impl Events for Barriered {
    fn settle(&mut self) -> bool {
        let mark = self.mark();
        self.wait(mark)
    }

    fn mark(&self) -> u64 {
        self.0.issued.load(Ordering::Relaxed)
    }

    fn barrier(&self, mark: u64) -> Barrier {
        if self.0.failed.load(Ordering::Relaxed) {
            Barrier::Failed
        } else if self.0.durable.load(Ordering::Relaxed) >= mark {
            Barrier::Ready
        } else {
            Barrier::Pending
        }
    }

    fn wait(&mut self, mark: u64) -> bool {
        // A real journal blocks until the mark is durable; the stand-in gives up after 20 ms
        // without failing, and the worker simply asks again.
        let deadline = Instant::now() + Duration::from_millis(20);
        while Instant::now() < deadline {
            match self.barrier(mark) {
                Barrier::Ready => return true,
                Barrier::Failed => return false,
                Barrier::Pending => thread::sleep(Duration::from_millis(1)),
            }
        }
        true
    }

    fn persisting(&self) -> bool {
        !self.0.stalled.load(Ordering::Relaxed)
    }
}

/// [`Barriered`] whose worker sleeps beside its socket until the test makes a mark durable and
/// notifies the wakeup, as the journal's writer does; its `wait` blocks like a real journal's.
struct Waking(Barriered, Arc<Wakeup>);

impl EventSink for Waking {
    fn emit(&mut self, _: LeaseEvent) {}
}

impl Events for Waking {
    fn settle(&mut self) -> bool {
        let mark = self.mark();
        self.wait(mark)
    }

    fn mark(&self) -> u64 {
        self.0.mark()
    }

    fn barrier(&self, mark: u64) -> Barrier {
        self.0.barrier(mark)
    }

    fn wait(&mut self, mark: u64) -> bool {
        loop {
            match self.barrier(mark) {
                Barrier::Ready => return true,
                Barrier::Failed => return false,
                Barrier::Pending => thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    fn sleep_until(&mut self, mark: u64, beside: &[BorrowedFd<'_>], timeout_ms: i32) -> bool {
        if self.barrier(mark) == Barrier::Pending {
            let mut fds = vec![self.1.as_fd()];
            fds.extend_from_slice(beside);
            wait_any(&fds, timeout_ms);
        }
        self.1.clear();
        true
    }
}

/// Answers each message with an Advertise carrying the request's transaction id and options.
type EchoWorker = (
    thread::JoinHandle<Result<XskWorker, afxdp::XskError>>,
    Arc<WorkerStats>,
);

/// A worker that answers each message with an Advertise carrying the request's transaction
/// id and options.
fn spawn_echo(server: XskWorker, interface: &InterfaceInfo, stop: &Arc<AtomicBool>) -> EchoWorker {
    let stats = Arc::new(WorkerStats::default());
    let interface = interface.clone();
    let stop = Arc::clone(stop);
    let thread_stats = Arc::clone(&stats);
    let thread = thread::spawn(move || {
        let counts = Arc::clone(&thread_stats);
        let respond = move |request: &[u8], _: &FrameMeta, reply: &mut [u8], _: &mut Discard| {
            echo(request, reply, &counts)
        };
        afxdp::run_queue(
            server,
            &interface,
            Some(0),
            respond,
            &mut Discard,
            &stop,
            &thread_stats,
        )
    });
    (thread, stats)
}

/// A worker on queue 0 of a socket whose responder answers with [`echo`] and counts each
/// request it handles in `journal.issued`, with its stop flag and counters.
struct CountingEcho {
    journal: Arc<FakeJournal>,
    stats: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Result<XskWorker, afxdp::XskError>>,
}

impl CountingEcho {
    /// Starts the worker, on a thread called [`ECHO_WORKER`], with `journal` (as the test set
    /// it up) and, as its sink and durability barrier, the events `events` makes of it.
    fn start<E: Events>(
        server: XskWorker,
        interface: &InterfaceInfo,
        journal: FakeJournal,
        events: impl FnOnce(&Arc<FakeJournal>) -> E,
    ) -> Self {
        let journal = Arc::new(journal);
        let mut events = events(&journal);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WorkerStats::default());
        let (interface, thread_stop, thread_stats) =
            (interface.clone(), Arc::clone(&stop), Arc::clone(&stats));
        let issue = Arc::clone(&journal);
        let counts = Arc::clone(&stats);
        let respond = move |request: &[u8], _: &FrameMeta, reply: &mut [u8], _: &mut E| {
            issue.issued.fetch_add(1, Ordering::Relaxed);
            echo(request, reply, &counts)
        };
        let thread = thread::Builder::new()
            .name(ECHO_WORKER.to_owned())
            .spawn(move || {
                afxdp::run_queue(
                    server,
                    &interface,
                    Some(0),
                    respond,
                    &mut events,
                    &thread_stop,
                    &thread_stats,
                )
            })
            .unwrap();
        Self {
            journal,
            stats,
            stop,
            thread,
        }
    }

    /// Stops the worker, checks that it accounted for every frame and returns its counters.
    fn stop(self) -> Arc<WorkerStats> {
        self.stop.store(true, Ordering::Relaxed);
        let worker = self.thread.join().unwrap().unwrap();
        assert!(worker.audit().is_complete(), "{:?}", worker.audit());
        self.stats
    }
}

/// The name of the thread of a [`CountingEcho`].
const ECHO_WORKER: &str = "xsk-echo-test";

/// Sends `requests` one at a time, each once the worker of a [`CountingEcho`] has handled
/// the one before, so that each is a batch of its own (and takes a mark of its own).
fn send_one_by_one(client: &PacketSocket, journal: &FakeJournal, requests: &[Frame]) {
    for (i, request) in requests.iter().enumerate() {
        client.send(request.bytes()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while journal.issued.load(Ordering::Relaxed) < i as u64 + 1 {
            assert!(
                Instant::now() < deadline,
                "the worker did not handle request {i}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Answers `request` with itself as an Advertise, counting both as the engine's handler does.
fn echo(request: &[u8], reply: &mut [u8], stats: &WorkerStats) -> Option<ReplyPlan> {
    stats.count_received(MessageType::from(*request.first()?));
    let reply = reply.get_mut(..request.len())?;
    reply.copy_from_slice(request);
    reply[0] = 2;
    stats.count_sent(MessageType::Advertise);
    Some(ReplyPlan {
        delay_ms: 0,
        len: request.len(),
        to: Destination::Client,
    })
}

fn engine() -> Engine {
    let text = fixtures::render(fixtures::AFXDP_VETH, &[("SERVER_IF", VethPair::SERVER)])
        .expect("the afxdp-veth fixture");
    let config = Arc::new(Config::from_toml_str(&text, "afxdp-test.toml").unwrap());
    let table = Arc::new(LeaseTable::with_capacity(
        1000,
        SaltKey::from_salt(&config.server.salt),
    ));
    Engine::new(config, table).unwrap()
}

/// Runs [`afxdp::serve_queue`] with `engine` on `server` until `stop` is set.
fn spawn_engine(
    engine: Engine,
    server: XskWorker,
    interface: &InterfaceInfo,
    stop: &Arc<AtomicBool>,
) -> (
    thread::JoinHandle<Result<XskWorker, afxdp::XskError>>,
    Arc<WorkerStats>,
) {
    spawn_engine_with(engine, server, interface, None, stop)
}

/// [`spawn_engine`] with the kernel socket for replies larger than the MTU.
fn spawn_engine_with(
    engine: Engine,
    mut server: XskWorker,
    interface: &InterfaceInfo,
    kernel: Option<Arc<xdhcp6_datapath::udp::ServerSocket>>,
    stop: &Arc<AtomicBool>,
) -> (
    thread::JoinHandle<Result<XskWorker, afxdp::XskError>>,
    Arc<WorkerStats>,
) {
    if let Some(kernel) = kernel {
        server = server.with_kernel_socket(kernel);
    }
    let stats = Arc::new(WorkerStats::default());
    let (interface, stop, thread_stats) = (interface.clone(), Arc::clone(stop), Arc::clone(&stats));
    let thread = thread::spawn(move || {
        let mut events: Vec<LeaseEvent> = Vec::new();
        afxdp::serve_queue(
            server,
            &interface,
            None,
            &engine,
            || 1_750_000_000,
            &mut events,
            &stop,
            &thread_stats,
        )
    });
    (thread, stats)
}

/// The test engine with an option of 1,600 bytes in every reply: more than a 1,500-byte link
/// carries, less than a UMEM frame holds.
fn oversize_engine() -> Engine {
    let big = "x".repeat(1600);
    let text = fixtures::render(fixtures::AFXDP_VETH, &[("SERVER_IF", VethPair::SERVER)]).unwrap()
        + &format!(
            "\n[options]\ncustom = [{{ code = 250, text = \"{big}\", always-send = true }}]\n"
        );
    let config = Arc::new(Config::from_toml_str(&text, "afxdp-test.toml").unwrap());
    let table = Arc::new(LeaseTable::with_capacity(1000, SaltKey::from_salt("t")));
    Engine::new(config, table).unwrap()
}

/// The test engine with `server` lines added to its `[server]` section.
fn engine_with(server: &str) -> Engine {
    let text = fixtures::render(fixtures::AFXDP_VETH, &[("SERVER_IF", VethPair::SERVER)])
        .expect("the afxdp-veth fixture")
        .replacen("[server]\n", &format!("[server]\n{server}\n"), 1);
    let config = Arc::new(Config::from_toml_str(&text, "afxdp-test.toml").unwrap());
    let table = Arc::new(LeaseTable::with_capacity(
        1000,
        SaltKey::from_salt(&config.server.salt),
    ));
    Engine::new(config, table).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Messages and frames.

fn solicit(tags: &[u16], n: u32) -> Frame {
    let mut message = SOLICIT.to_vec();
    message[1..4].copy_from_slice(&n.to_be_bytes()[1..]);
    FrameBuilder::with_tags(tags)
        .ipv6(IPPROTO_UDP)
        .udp(546, 547, &message)
}

/// A Solicit with a Client Identifier (DUID-LL) and one IA_NA.
fn client_solicit(transaction: u32, client: u8) -> Vec<u8> {
    let mut message = vec![1];
    message.extend_from_slice(&transaction.to_be_bytes()[1..]);
    // Client Identifier: DUID-LL, Ethernet.
    message.extend_from_slice(&[0, 1, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, client]);
    // IA_NA: IAID 1, T1 0, T2 0.
    message.extend_from_slice(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Elapsed Time 0.
    message.extend_from_slice(&[0, 8, 0, 2, 0, 0]);
    message
}

const RELAY_ADDRESS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 1, 0, 0, 0, 1);

/// Relay-forward from RELAY_ADDRESS, with a Relay Source Port option when not from 547.
fn relay_forward(inner: &[u8], source_port: u16) -> Vec<u8> {
    let mut message = vec![12, 0];
    message.extend_from_slice(&RELAY_ADDRESS.octets());
    message.extend_from_slice(&Ipv6Addr::from(SOURCE_ADDRESS).octets());
    if source_port != 547 {
        // RFC 8357 Relay Source Port option (135), carrying the port.
        message.extend_from_slice(&[0, 135, 0, 2]);
        message.extend_from_slice(&source_port.to_be_bytes());
    }
    message.extend_from_slice(&[0, 9]);
    message.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    message.extend_from_slice(inner);
    message
}

/// A frame from the relay agent to the server's global address.
fn relayed_frame(message: &[u8], source_port: u16) -> Vec<u8> {
    let frame = FrameBuilder::with_tags(&[])
        .ipv6(IPPROTO_UDP)
        .udp(source_port, 547, message);
    let mut frame = frame.bytes().to_vec();
    frame[21] = 64;
    frame[22..38].copy_from_slice(&RELAY_ADDRESS.octets());
    frame[38..54].copy_from_slice(&VethPair::SERVER_GLOBAL.octets());
    frame[60..62].copy_from_slice(&[0, 0]);
    let checksum = checksum::udp(&RELAY_ADDRESS, &VethPair::SERVER_GLOBAL, &frame[54..]);
    frame[60..62].copy_from_slice(&checksum.to_be_bytes());
    frame
}

/// A direct client's frame carrying `message`, with `tags`.
fn solicit_frame(message: Vec<u8>, tags: &[u16]) -> Vec<u8> {
    FrameBuilder::with_tags(tags)
        .ipv6(IPPROTO_UDP)
        .udp(546, 547, &message)
        .bytes()
        .to_vec()
}

/// Replaces the IPv6 source and/or destination of an untagged frame and fixes its checksum.
fn readdress(frame: &mut [u8], source: Option<Ipv6Addr>, destination: Option<Ipv6Addr>) {
    if let Some(source) = source {
        frame[22..38].copy_from_slice(&source.octets());
    }
    if let Some(destination) = destination {
        frame[38..54].copy_from_slice(&destination.octets());
    }
    let source = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap());
    let destination = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap());
    frame[60..62].copy_from_slice(&[0, 0]);
    let sum = checksum::udp(&source, &destination, &frame[54..]);
    frame[60..62].copy_from_slice(&sum.to_be_bytes());
}

/// A received reply taken apart.
#[derive(Debug)]
struct ReplyView {
    destination_mac: [u8; 6],
    source_mac: [u8; 6],
    tags: Vec<u8>,
    hop_limit: u8,
    source: Ipv6Addr,
    destination: Ipv6Addr,
    source_port: u16,
    destination_port: u16,
    checksum_ok: bool,
    payload: Vec<u8>,
}

impl ReplyView {
    fn parse(frame: &[u8]) -> Option<Self> {
        let (headers, payload) = Headers::parse(frame).ok()?;
        Some(ReplyView {
            destination_mac: headers.destination_mac,
            source_mac: headers.source_mac,
            tags: frame.get(12..headers.l3() - 2)?.to_vec(),
            hop_limit: headers.ipv6.hop_limit,
            source: headers.ipv6.source,
            destination: headers.ipv6.destination,
            source_port: headers.udp.source_port,
            destination_port: headers.udp.destination_port,
            checksum_ok: headers.verify_checksum(frame),
            payload: frame.get(payload)?.to_vec(),
        })
    }
}

/// Checks a reply to a direct client's `request` from `interface`.
fn check_reply(reply: &[u8], request: &Frame, interface: &InterfaceInfo) -> ReplyView {
    let view = ReplyView::parse(reply).expect("reply is not IPv6/UDP");
    let request = request.bytes();
    let l3 = 14 + view.tags.len();
    assert_eq!(view.destination_mac, SOURCE_MAC);
    assert_eq!(view.source_mac, interface.mac);
    assert_eq!(&view.tags[..], &request[12..l3 - 2], "VLAN tags kept");
    assert_eq!(view.hop_limit, 255);
    assert_eq!(view.source, interface.link_local);
    assert_eq!(view.destination, Ipv6Addr::from(SOURCE_ADDRESS));
    assert_eq!(view.source_port, 547);
    assert_eq!(view.destination_port, 546);
    assert!(view.checksum_ok, "bad checksum: {view:?}");
    assert_eq!(&view.payload[1..4], &request[l3 + 48 + 1..l3 + 48 + 4]);
    view
}

// ---------------------------------------------------------------------------------------------
// Namespace, veth and packet sockets.

/// An AF_PACKET socket on one interface: sends whole frames, receives the server's replies.
struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

static REPLIES_SKIPPED: AtomicU64 = AtomicU64::new(0);

impl PacketSocket {
    fn new(interface: &str) -> io::Result<Self> {
        let ifindex = if_index(interface)?;
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // Safety: plain socket(2); the result is checked before it is wrapped.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(protocol),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // Safety: `raw` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Safety: all-zero is a valid `sockaddr_ll`.
        let mut address: libc::sockaddr_ll = unsafe { zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = protocol;
        address.sll_ifindex = ifindex as i32;
        // Safety: `address` is a valid `sockaddr_ll` and the length is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                ptr::from_ref(&address).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // Safety: `timeout` is a valid timeval of the stated size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                ptr::from_ref(&timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let on: libc::c_int = 1;
        // Safety: `on` is a valid int of the stated size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                ptr::from_ref(&on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket { fd, ifindex })
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        send_frame(&self.fd, self.ifindex, frame)
    }

    /// The next frame coming in from UDP port 547 within two seconds, skipping our own
    /// outgoing frames and the kernel's chatter (router solicitations, MLD).
    ///
    /// The kernel's receive path moves the outer VLAN tag into packet metadata before
    /// AF_PACKET sees the frame; it comes back from PACKET_AUXDATA and is put back in place.
    fn receive_reply(&self) -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let Some((frame, outgoing)) = self.receive(&mut buf) else {
                continue;
            };
            if outgoing {
                continue;
            }
            match ReplyView::parse(&frame) {
                Some(view) if view.source_port == 547 => return Some(frame),
                _ => {
                    REPLIES_SKIPPED.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        None
    }

    /// One frame, with its stripped VLAN tag restored, and whether it was outgoing.
    fn receive(&self, buf: &mut [u8]) -> Option<(Vec<u8>, bool)> {
        // Safety: all-zero is a valid `sockaddr_ll`.
        let mut from: libc::sockaddr_ll = unsafe { zeroed() };
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Safety: all-zero is a valid `msghdr`.
        let mut header: libc::msghdr = unsafe { zeroed() };
        header.msg_name = ptr::from_mut(&mut from).cast();
        header.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        header.msg_iov = &mut iov;
        header.msg_iovlen = 1;
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = size_of::<[u64; 16]>() as _;
        // Safety: every pointer in `header` refers to a live buffer of the stated length.
        let len = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut header, 0) };
        if len < 0 {
            return None;
        }
        let mut frame = buf[..len as usize].to_vec();
        // Safety: the control buffer was filled by recvmsg and `header` describes it.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&header) };
        while !cmsg.is_null() {
            // Safety: `cmsg` is a control message header inside `control`.
            let message = unsafe { &*cmsg };
            if message.cmsg_level == libc::SOL_PACKET && message.cmsg_type == libc::PACKET_AUXDATA {
                // Safety: a PACKET_AUXDATA message carries a `tpacket_auxdata`.
                let aux: libc::tpacket_auxdata =
                    unsafe { ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 && frame.len() >= 12 {
                    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        VLAN
                    };
                    let mut tag = tpid.to_be_bytes().to_vec();
                    tag.extend_from_slice(&aux.tp_vlan_tci.to_be_bytes());
                    frame.splice(12..12, tag);
                }
            }
            // Safety: as for CMSG_FIRSTHDR.
            cmsg = unsafe { libc::CMSG_NXTHDR(&header, cmsg) };
        }
        Some((frame, from.sll_pkttype == libc::PACKET_OUTGOING))
    }
}
