//! Names, sizes and value layouts of the XDP program's maps.

use crate::PassReason;

/// Name of the server's XDP program in the object file ([`crate::classify`]).
pub const PROGRAM: &str = "xdhcp6_xdp";

/// Name of the client-side XDP program in the object file ([`crate::classify_client`]): the
/// load generator receives replies to its emulated clients and relays through it. It shares
/// the maps with [`PROGRAM`]; one object is loaded once per program.
pub const CLIENT_PROGRAM: &str = "xdhcp6_client_xdp";

/// Name of the `XSKMAP`: AF_XDP socket per receive queue, indexed by `rx_queue_index`.
pub const XSK_MAP: &str = "XSKS";

/// Name of the per-CPU array with one [`Counters`] entry.
pub const COUNTERS_MAP: &str = "XDP_COUNTERS";

/// Index of the only entry of [`COUNTERS_MAP`].
pub const COUNTERS_INDEX: u32 = 0;

/// The longest frame steered to an AF_XDP socket: the UMEM frame size the sockets use
/// (`XskConfig::default().frame_size`). A longer one (jumbo frames) would not fit a frame and
/// be dropped by the kernel's AF_XDP receive; the program passes it to the kernel instead,
/// whose UDP socket answers it ([`PassReason::TooLarge`]).
pub const MAX_STEERED_FRAME_LEN: usize = 2048;

/// Entries of [`XSK_MAP`]: receive queues beyond this are never steered.
pub const MAX_QUEUES: u32 = 256;

/// What the XDP program did, per CPU in the map and summed over CPUs in userspace.
///
/// `passed` is the sum of the per-reason counters; `no_socket` frames matched the rule but found
/// no AF_XDP socket for their queue and went to the kernel as well.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Counters {
    /// Redirected to the AF_XDP socket of their queue.
    pub steered: u64,
    /// Matched the rule, but the queue had no socket: passed to the kernel.
    pub no_socket: u64,
    /// Did not match the rule: passed to the kernel.
    pub passed: u64,
    /// Passed: [`PassReason::NotIpv6`].
    pub not_ipv6: u64,
    /// Passed: [`PassReason::VlanStack`].
    pub vlan_stack: u64,
    /// Passed: [`PassReason::Truncated`].
    pub truncated: u64,
    /// Passed: [`PassReason::BadVersion`].
    pub bad_version: u64,
    /// Passed: [`PassReason::ExtensionHeader`].
    pub extension_header: u64,
    /// Passed: [`PassReason::NotUdp`].
    pub not_udp: u64,
    /// Passed: [`PassReason::OtherPort`].
    pub other_port: u64,
    /// Passed: [`PassReason::TooLarge`].
    pub too_large: u64,
}

impl Counters {
    /// Counts one frame passed for `reason`.
    #[inline(always)]
    pub fn record_pass(&mut self, reason: PassReason) {
        self.passed = self.passed.wrapping_add(1);
        let counter = match reason {
            PassReason::NotIpv6 => &mut self.not_ipv6,
            PassReason::VlanStack => &mut self.vlan_stack,
            PassReason::Truncated => &mut self.truncated,
            PassReason::BadVersion => &mut self.bad_version,
            PassReason::ExtensionHeader => &mut self.extension_header,
            PassReason::NotUdp => &mut self.not_udp,
            PassReason::OtherPort => &mut self.other_port,
            PassReason::TooLarge => &mut self.too_large,
        };
        *counter = counter.wrapping_add(1);
    }

    /// The counter of one pass reason.
    pub const fn passed_for(&self, reason: PassReason) -> u64 {
        match reason {
            PassReason::NotIpv6 => self.not_ipv6,
            PassReason::VlanStack => self.vlan_stack,
            PassReason::Truncated => self.truncated,
            PassReason::BadVersion => self.bad_version,
            PassReason::ExtensionHeader => self.extension_header,
            PassReason::NotUdp => self.not_udp,
            PassReason::OtherPort => self.other_port,
            PassReason::TooLarge => self.too_large,
        }
    }

    /// Adds another CPU's counters to these.
    pub fn accumulate(&mut self, other: &Counters) {
        let Counters {
            steered,
            no_socket,
            passed,
            not_ipv6,
            vlan_stack,
            truncated,
            bad_version,
            extension_header,
            not_udp,
            other_port,
            too_large,
        } = other;
        self.steered = self.steered.wrapping_add(*steered);
        self.no_socket = self.no_socket.wrapping_add(*no_socket);
        self.passed = self.passed.wrapping_add(*passed);
        self.not_ipv6 = self.not_ipv6.wrapping_add(*not_ipv6);
        self.vlan_stack = self.vlan_stack.wrapping_add(*vlan_stack);
        self.truncated = self.truncated.wrapping_add(*truncated);
        self.bad_version = self.bad_version.wrapping_add(*bad_version);
        self.extension_header = self.extension_header.wrapping_add(*extension_header);
        self.not_udp = self.not_udp.wrapping_add(*not_udp);
        self.other_port = self.other_port.wrapping_add(*other_port);
        self.too_large = self.too_large.wrapping_add(*too_large);
    }

    /// Counters accumulated since `earlier` (a snapshot of the same map).
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            steered: self.steered.wrapping_sub(earlier.steered),
            no_socket: self.no_socket.wrapping_sub(earlier.no_socket),
            passed: self.passed.wrapping_sub(earlier.passed),
            not_ipv6: self.not_ipv6.wrapping_sub(earlier.not_ipv6),
            vlan_stack: self.vlan_stack.wrapping_sub(earlier.vlan_stack),
            truncated: self.truncated.wrapping_sub(earlier.truncated),
            bad_version: self.bad_version.wrapping_sub(earlier.bad_version),
            extension_header: self.extension_header.wrapping_sub(earlier.extension_header),
            not_udp: self.not_udp.wrapping_sub(earlier.not_udp),
            other_port: self.other_port.wrapping_sub(earlier.other_port),
            too_large: self.too_large.wrapping_sub(earlier.too_large),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_pass_counts_total_and_reason() {
        let mut counters = Counters::default();
        for (i, reason) in PassReason::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                counters.record_pass(reason);
            }
        }
        for (i, reason) in PassReason::ALL.into_iter().enumerate() {
            assert_eq!(counters.passed_for(reason), i as u64 + 1, "{reason:?}");
        }
        assert_eq!(counters.passed, 36);
        assert_eq!(counters.steered + counters.no_socket, 0);
    }

    #[test]
    fn accumulate_then_since_round_trips() {
        let mut a = Counters::default();
        a.record_pass(PassReason::OtherPort);
        a.steered = 5;
        let mut b = a;
        b.no_socket = u64::MAX;
        let mut sum = a;
        sum.accumulate(&b);
        assert_eq!(sum.since(&b), a);
        assert_eq!(sum.passed, 2);
        assert_eq!(sum.steered, 10);
    }

    #[test]
    fn layout_is_plain_u64s() {
        assert_eq!(core::mem::size_of::<Counters>(), 11 * 8);
        assert_eq!(core::mem::align_of::<Counters>(), 8);
    }
}
