//! The loaded XDP program, run by the kernel: `BPF_PROG_TEST_RUN` for every classifier case, a
//! real AF_XDP socket in the XskMap for `XDP_REDIRECT`, and frames sent over a veth pair with
//! the program attached in native and in generic mode. The client-side program
//! (`xdhcp6_client_xdp`, the load generator's) is run the same way.
//!
//! These need root and the built object: `cargo xtask test` builds it and runs
//! `XDHCP6_EBPF_OBJECT=... cargo test -p xdhcp6d -- --include-ignored --test-threads=1`.
//! Nothing here skips itself: a missing object, missing privileges or a kernel that refuses
//! fails the test.

use std::{
    io,
    os::fd::{AsFd, FromRawFd, OwnedFd},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use aya::programs::{TestRun, TestRunOptions};
use xdhcp6_common::{
    Counters, IPPROTO_UDP, PassReason,
    ethertype::{IPV4, QINQ, VLAN},
    frames::{Frame, FrameBuilder},
};
use xdhcp6d::afxdp::{BindMode, InterfaceInfo, XskConfig, XskError, XskSocket};
use xdhcp6d::xdp::{AttachMode, Steering};

#[path = "support/veth.rs"]
mod veth;

use veth::{VethPair, if_index, load, load_client, send_frame};

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const SOLICIT: &[u8] = &[1, 0x12, 0x34, 0x56, 0, 8, 0, 2, 0, 0];

// ---------------------------------------------------------------------------------------------
// BPF_PROG_TEST_RUN with an empty XskMap: steered frames fall back to XDP_PASS as no_socket.

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn untagged_dhcpv6_counts_as_no_socket() {
    assert_no_socket(&dhcp(&[]));
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn one_ctag_counts_as_no_socket() {
    assert_no_socket(&dhcp(&[VLAN]));
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn one_stag_counts_as_no_socket() {
    assert_no_socket(&dhcp(&[QINQ]));
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn qinq_8021ad_counts_as_no_socket() {
    assert_no_socket(&dhcp(&[QINQ, VLAN]));
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn double_8021q_counts_as_no_socket() {
    assert_no_socket(&dhcp(&[VLAN, VLAN]));
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn three_tags_are_passed() {
    assert_passed(&dhcp(&[QINQ, VLAN, VLAN]), PassReason::VlanStack);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn fragment_is_passed() {
    let frame = FrameBuilder::with_tags(&[VLAN])
        .ipv6(44)
        .raw(&[IPPROTO_UDP, 0, 0, 1, 0, 0, 0, 1])
        .udp(546, 547, SOLICIT);
    assert_passed(&frame, PassReason::ExtensionHeader);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn hop_by_hop_is_passed() {
    let frame = FrameBuilder::with_tags(&[])
        .ipv6(0)
        .extension(IPPROTO_UDP)
        .udp(546, 547, SOLICIT);
    assert_passed(&frame, PassReason::ExtensionHeader);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn other_port_is_passed() {
    let frame = FrameBuilder::with_tags(&[QINQ, VLAN])
        .ipv6(IPPROTO_UDP)
        .udp(546, 548, SOLICIT);
    assert_passed(&frame, PassReason::OtherPort);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn jumbo_request_is_passed_to_the_kernel_socket() {
    // 3,000 bytes: more than an AF_XDP frame holds, which the kernel's AF_XDP receive would
    // drop; passed, the UDP socket answers it.
    let mut frame = FrameBuilder::with_tags(&[])
        .ipv6(IPPROTO_UDP)
        .udp(546, 547, SOLICIT)
        .bytes()
        .to_vec();
    let payload = (3000 - 14 - 40) as u16;
    frame[18..20].copy_from_slice(&payload.to_be_bytes());
    frame[54 + 4..54 + 6].copy_from_slice(&payload.to_be_bytes());
    frame.resize(3000, 0);
    let steering = load();
    let (action, delta) = test_run(&steering, &frame);
    assert_eq!(action, XDP_PASS);
    assert_eq!(delta, passed(PassReason::TooLarge));
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn source_port_547_alone_is_passed() {
    let frame = FrameBuilder::with_tags(&[])
        .ipv6(IPPROTO_UDP)
        .udp(547, 546, SOLICIT);
    assert_passed(&frame, PassReason::OtherPort);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn icmpv6_is_passed() {
    let frame = FrameBuilder::with_tags(&[])
        .ipv6(58)
        .payload(&[135, 0, 0, 0]);
    assert_passed(&frame, PassReason::NotUdp);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn ipv4_is_passed() {
    let frame = FrameBuilder::with_tags(&[VLAN])
        .ethertype(IPV4)
        .payload(&[0x45; 28]);
    assert_passed(&frame, PassReason::NotIpv6);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn bad_ip_version_is_passed() {
    let mut frame = dhcp(&[]);
    frame.bytes_mut()[14] = 0x40;
    assert_passed(&frame, PassReason::BadVersion);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn every_truncation_is_passed() {
    let steering = load();
    for tags in [&[][..], &[VLAN], &[QINQ, VLAN]] {
        let frame = dhcp(tags);
        let full = frame.bytes();
        let headers = 14 + 4 * tags.len() + 40 + 8;
        // BPF_PROG_TEST_RUN refuses XDP input shorter than an Ethernet header.
        for len in 14..headers {
            let (action, delta) = test_run(&steering, &full[..len]);
            assert_eq!(action, XDP_PASS, "{tags:x?} cut at {len}");
            assert_eq!(
                delta,
                passed(PassReason::Truncated),
                "{tags:x?} cut at {len}"
            );
        }
        let (action, delta) = test_run(&steering, &full[..headers]);
        assert_eq!(action, XDP_PASS);
        assert_eq!(delta, no_socket(), "{tags:x?} with the headers only");
    }
}

// ---------------------------------------------------------------------------------------------
// A bound AF_XDP socket in the XskMap: XDP_REDIRECT.

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn steered_frame_is_redirected_to_a_bound_socket() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let mut steering = load();
        let socket = xdp_socket(VethPair::SERVER, 0).expect("binding an AF_XDP socket");
        steering
            .xsk_map()
            .unwrap()
            .set(0, socket.as_fd(), 0)
            .expect("inserting the socket into the XskMap");

        // Without a context BPF_PROG_TEST_RUN runs as receive queue 0.
        for tags in [&[][..], &[VLAN], &[QINQ], &[QINQ, VLAN], &[VLAN, VLAN]] {
            let (action, delta) = test_run(&steering, dhcp(tags).bytes());
            assert_eq!(action, XDP_REDIRECT, "{tags:x?}");
            assert_eq!(delta, steered(), "{tags:x?}");
        }
        let other = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(546, 53, SOLICIT);
        let (action, delta) = test_run(&steering, other.bytes());
        assert_eq!(action, XDP_PASS);
        assert_eq!(delta, passed(PassReason::OtherPort));

        steering.xsk_map().unwrap().unset(0).unwrap();
        let (action, delta) = test_run(&steering, dhcp(&[]).bytes());
        assert_eq!(action, XDP_PASS);
        assert_eq!(delta, no_socket());
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn redirect_uses_the_socket_of_the_receive_queue() {
    let pair = VethPair::with_queues(2);
    pair.run_in_namespace(|| {
        let mut steering = load();
        let ifindex = if_index(VethPair::SERVER).unwrap();
        let socket = xdp_socket(VethPair::SERVER, 1).expect("binding to queue 1");
        steering
            .xsk_map()
            .unwrap()
            .set(1, socket.as_fd(), 0)
            .expect("inserting the socket into the XskMap");
        let frame = dhcp(&[QINQ, VLAN]);

        let (action, delta) = test_run_on_queue(&steering, frame.bytes(), ifindex, 1);
        assert_eq!(action, XDP_REDIRECT);
        assert_eq!(delta, steered());
        let (action, delta) = test_run_on_queue(&steering, frame.bytes(), ifindex, 0);
        assert_eq!(action, XDP_PASS, "queue 0 has no socket");
        assert_eq!(delta, no_socket());
    });
}

// ---------------------------------------------------------------------------------------------
// The client-side program: replies to clients (546) and relays (547) are steered.

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn client_program_steers_replies_and_passes_the_rest() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let mut steering = load_client();
        let to_client = |tags: &[u16]| {
            FrameBuilder::with_tags(tags)
                .ipv6(IPPROTO_UDP)
                .udp(547, 546, SOLICIT)
        };
        let to_relay = FrameBuilder::with_tags(&[VLAN])
            .ipv6(IPPROTO_UDP)
            .udp(547, 547, SOLICIT);
        let other_port = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(547, 548, SOLICIT);
        let icmp = FrameBuilder::with_tags(&[])
            .ipv6(58)
            .payload(&[135, 0, 0, 0]);

        // No socket: matches fall back to the kernel as no_socket.
        let (action, delta) = test_run(&steering, to_client(&[]).bytes());
        assert_eq!(action, XDP_PASS);
        assert_eq!(delta, no_socket());

        let socket = xdp_socket(VethPair::SERVER, 0).expect("binding an AF_XDP socket");
        steering
            .xsk_map()
            .unwrap()
            .set(0, socket.as_fd(), 0)
            .expect("inserting the socket into the XskMap");
        for frame in [to_client(&[]), to_client(&[QINQ, VLAN]), to_relay] {
            let (action, delta) = test_run(&steering, frame.bytes());
            assert_eq!(action, XDP_REDIRECT, "{frame:?}");
            assert_eq!(delta, steered(), "{frame:?}");
        }
        let (action, delta) = test_run(&steering, other_port.bytes());
        assert_eq!(action, XDP_PASS);
        assert_eq!(delta, passed(PassReason::OtherPort));
        let (action, delta) = test_run(&steering, icmp.bytes());
        assert_eq!(action, XDP_PASS);
        assert_eq!(delta, passed(PassReason::NotUdp));
        let full = to_client(&[VLAN]);
        let (action, delta) = test_run(&steering, &full.bytes()[..14 + 4 + 40 + 4]);
        assert_eq!(action, XDP_PASS);
        assert_eq!(delta, passed(PassReason::Truncated));
    });
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn server_program_still_passes_replies_to_clients() {
    let steering = load();
    let to_client = FrameBuilder::with_tags(&[])
        .ipv6(IPPROTO_UDP)
        .udp(547, 546, SOLICIT);
    let (action, delta) = test_run(&steering, to_client.bytes());
    assert_eq!(action, XDP_PASS);
    assert_eq!(delta, passed(PassReason::OtherPort));
}

// ---------------------------------------------------------------------------------------------
// Attached to a veth, with frames sent from its peer.

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn native_xdp_on_veth_steers_to_the_socket() {
    steers_over_veth(AttachMode::Native);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn generic_xdp_on_veth_steers_to_the_socket() {
    steers_over_veth(AttachMode::Skb);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn drop_detaches_the_program() {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let mut steering = load();
        assert_eq!(
            steering.attach(VethPair::SERVER, AttachMode::Auto).unwrap(),
            AttachMode::Native,
            "veth supports native XDP"
        );
        assert!(xdp_attached(VethPair::SERVER), "no XDP program on the veth");
        let error = steering
            .attach(VethPair::SERVER, AttachMode::Skb)
            .unwrap_err();
        assert!(error.to_string().contains("already attached"), "{error}");
        drop(steering);
        assert!(!xdp_attached(VethPair::SERVER), "XDP program left attached");
    });
}

fn steers_over_veth(mode: AttachMode) {
    let pair = VethPair::new();
    pair.run_in_namespace(|| {
        let mut steering = load();
        assert_eq!(steering.attach(VethPair::SERVER, mode).unwrap(), mode);
        let sender = PacketSender::new(VethPair::CLIENT).expect("AF_PACKET socket on the peer");
        let steer = [dhcp(&[]), dhcp(&[VLAN]), dhcp(&[QINQ, VLAN])];
        let other_port = FrameBuilder::with_tags(&[VLAN])
            .ipv6(IPPROTO_UDP)
            .udp(546, 548, SOLICIT);
        let fragment = FrameBuilder::with_tags(&[])
            .ipv6(44)
            .raw(&[IPPROTO_UDP, 0, 0, 1, 0, 0, 0, 1])
            .udp(546, 547, SOLICIT);

        // No socket yet: DHCPv6 goes to the kernel and counts as no_socket.
        let before = steering.counters().unwrap();
        for frame in steer.iter().chain([&other_port, &fragment]) {
            sender.send(frame.bytes()).expect("sending a frame");
        }
        let delta = wait_for(&steering, &before, |delta| {
            delta.no_socket >= 3 && delta.other_port >= 1 && delta.extension_header >= 1
        });
        assert_eq!(delta.no_socket, 3, "{delta:?}");
        assert_eq!(delta.steered, 0, "{delta:?}");
        assert_eq!(delta.other_port, 1, "{delta:?}");

        // With a socket on queue 0 (a veth has one): redirected, and the socket sees them.
        let socket = xdp_socket(VethPair::SERVER, 0).expect("binding an AF_XDP socket");
        steering
            .xsk_map()
            .unwrap()
            .set(0, socket.as_fd(), 0)
            .expect("inserting the socket into the XskMap");
        let before = steering.counters().unwrap();
        for frame in steer.iter().chain([&other_port]) {
            sender.send(frame.bytes()).expect("sending a frame");
        }
        let delta = wait_for(&steering, &before, |delta| {
            delta.steered >= 3 && delta.other_port >= 1
        });
        assert_eq!(delta.steered, 3, "{delta:?}");
        assert_eq!(delta.no_socket, 0, "{delta:?}");
        assert_eq!(delta.other_port, 1, "{delta:?}");
        // The socket has no fill ring entries, so it drops what it gets and counts it: proof
        // that the redirect reached it rather than failing in the kernel.
        let stats = socket.statistics().unwrap();
        assert_eq!(
            stats.rx_dropped, 3,
            "rx_dropped {} fill_empty {} ring_full {}",
            stats.rx_dropped, stats.rx_fill_ring_empty_descs, stats.rx_ring_full
        );
        steering.detach().unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn dhcp(tags: &[u16]) -> Frame {
    FrameBuilder::with_tags(tags)
        .ipv6(IPPROTO_UDP)
        .udp(546, 547, SOLICIT)
}

/// Runs the program once on `frame`; returns its action and the counters it changed.
fn test_run(steering: &Steering, frame: &[u8]) -> (u32, Counters) {
    let before = steering.counters().unwrap();
    let mut options = TestRunOptions::new();
    options.data_in = Some(frame);
    let result = steering
        .program()
        .unwrap()
        .test_run(options)
        .expect("BPF_PROG_TEST_RUN");
    let after = steering.counters().unwrap();
    (result.return_value, after.since(&before))
}

/// Like [`test_run`], as if received on `queue` of interface `ifindex`.
fn test_run_on_queue(
    steering: &Steering,
    frame: &[u8],
    ifindex: u32,
    queue: u32,
) -> (u32, Counters) {
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
    // egress_ifindex. The kernel wants data = data_meta = 0 and data_end = the frame length.
    let fields = [0, frame.len() as u32, 0, ifindex, queue, 0];
    let context: Vec<u8> = fields
        .iter()
        .flat_map(|field| field.to_ne_bytes())
        .collect();
    let before = steering.counters().unwrap();
    let mut options = TestRunOptions::new();
    options.data_in = Some(frame);
    options.ctx_in = Some(&context);
    let result = steering
        .program()
        .unwrap()
        .test_run(options)
        .expect("BPF_PROG_TEST_RUN with an xdp_md context");
    let after = steering.counters().unwrap();
    (result.return_value, after.since(&before))
}

fn assert_no_socket(frame: &Frame) {
    let steering = load();
    let (action, delta) = test_run(&steering, frame.bytes());
    assert_eq!(action, XDP_PASS, "{frame:?}");
    assert_eq!(delta, no_socket(), "{frame:?}");
}

fn assert_passed(frame: &Frame, reason: PassReason) {
    let steering = load();
    let (action, delta) = test_run(&steering, frame.bytes());
    assert_eq!(action, XDP_PASS, "{frame:?}");
    assert_eq!(delta, passed(reason), "{frame:?}");
}

fn passed(reason: PassReason) -> Counters {
    let mut counters = Counters::default();
    counters.record_pass(reason);
    counters
}

fn no_socket() -> Counters {
    Counters {
        no_socket: 1,
        ..Counters::default()
    }
}

fn steered() -> Counters {
    Counters {
        steered: 1,
        ..Counters::default()
    }
}

/// Polls the counters until `done` holds for the change since `before` (NAPI runs later).
fn wait_for(steering: &Steering, before: &Counters, done: impl Fn(&Counters) -> bool) -> Counters {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let delta = steering.counters().unwrap().since(before);
        if done(&delta) || Instant::now() > deadline {
            return delta;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn xdp_attached(interface: &str) -> bool {
    let output = Command::new("ip")
        .args(["-details", "link", "show", "dev", interface])
        .output()
        .expect("running ip");
    assert!(output.status.success(), "ip link show {interface} failed");
    let text = String::from_utf8_lossy(&output.stdout);
    // `prog/xdp id N` (native) or `prog/xdpgeneric id N`.
    text.contains("prog/xdp")
}

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc < 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(error.kind(), format!("{what}: {error}")));
    }
    Ok(())
}

/// An AF_XDP socket in copy mode bound to `queue` of `interface`, through the datapath's own
/// socket code. Its fill ring stays empty, so it drops (and counts) what it receives.
fn xdp_socket(interface: &str, queue: u32) -> Result<XskSocket, XskError> {
    let info = InterfaceInfo::query(interface, None)?;
    let config = XskConfig {
        frames: 64,
        frame_size: 4096,
        ring_size: 64,
        batch: 16,
        mode: BindMode::Copy,
        ..XskConfig::default()
    };
    XskSocket::bind(&info, queue, &config)
}

/// An AF_PACKET socket that sends whole Ethernet frames out of one interface.
struct PacketSender {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSender {
    fn new(interface: &str) -> io::Result<Self> {
        let ifindex = if_index(interface)?;
        // Protocol 0: send only, receive nothing.
        // Safety: plain socket(2); the result is checked before it is wrapped.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        check(raw, "socket(AF_PACKET)")?;
        // Safety: `raw` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(PacketSender { fd, ifindex })
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        send_frame(&self.fd, self.ifindex, frame)
    }
}
