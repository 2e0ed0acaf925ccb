//! The xdhcp6 XDP programs: `xdhcp6_xdp` sends DHCPv6 to servers to the AF_XDP socket of its
//! receive queue, everything else to the kernel; `xdhcp6_client_xdp` does the same for DHCPv6
//! to clients and relay agents, for the load generator.
//!
//! The rules themselves are [`xdhcp6_common::classify`] and [`xdhcp6_common::classify_client`],
//! shared with userspace and tested on the host. Both programs use the same maps.
//! Here it reads the packet through [`XdpFrame`], whose every read is an explicit bounds check
//! against `data_end` that the verifier can follow. The program has no loops.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::xdp_action,
        macros::{map, xdp},
        maps::{PerCpuArray, XskMap},
        programs::XdpContext,
    };
    use aya_log_ebpf::error;
    use xdhcp6_common::{
        COUNTERS_INDEX, Counters, FrameReader, MAX_QUEUES, Verdict, classify, classify_client,
    };

    /// AF_XDP socket per receive queue; userspace fills it (`xdhcp6_common::XSK_MAP`).
    #[map]
    static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

    /// One [`Counters`] per CPU (`xdhcp6_common::COUNTERS_MAP`).
    #[map]
    static XDP_COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);

    /// The packet of an XDP context, read with verifier-visible bounds checks.
    struct XdpFrame<'a>(&'a XdpContext);

    impl FrameReader for XdpFrame<'_> {
        #[inline(always)]
        fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
            let start = self.0.data() + offset;
            if start + N > self.0.data_end() {
                return None;
            }
            // Safety: the check above is against data_end, so [start, start + N) lies inside the
            // packet; the verifier tracks the same comparison. `[u8; N]` has alignment 1.
            Some(unsafe { core::ptr::read_unaligned(start as *const [u8; N]) })
        }
    }

    /// DHCPv6 to servers and relay agents (UDP/547): the server's program.
    #[xdp]
    pub fn xdhcp6_xdp(ctx: XdpContext) -> u32 {
        let verdict = classify(&XdpFrame(&ctx));
        steer(&ctx, verdict)
    }

    /// DHCPv6 to clients and relay agents (UDP/546 or 547): the load generator's program.
    #[xdp]
    pub fn xdhcp6_client_xdp(ctx: XdpContext) -> u32 {
        let verdict = classify_client(&XdpFrame(&ctx));
        steer(&ctx, verdict)
    }

    /// Carries out `verdict` and counts it.
    #[inline(always)]
    fn steer(ctx: &XdpContext, verdict: Verdict) -> u32 {
        let Some(counters) = XDP_COUNTERS.get_ptr_mut(COUNTERS_INDEX) else {
            // A one-entry array always has index 0: this is a loader bug, not traffic.
            error!(ctx, "xdhcp6: counters map has no entry 0");
            return xdp_action::XDP_PASS;
        };
        // Safety: the pointer is a valid, aligned `Counters` in this CPU's slot of the map, and
        // XDP runs with migration disabled in softirq context, so no other program run touches
        // the slot while this reference lives. (Under PREEMPT_RT a nested run could interleave;
        // the worst outcome is a lost increment, which statistics tolerate.)
        let counters = unsafe { &mut *counters };
        match verdict {
            // An empty slot (no socket on this queue yet, or a queue beyond MAX_QUEUES) makes
            // bpf_redirect_map return the fallback action in the low flag bits: XDP_PASS.
            Verdict::Steer(_) => {
                match XSKS.redirect(ctx.rx_queue_index(), xdp_action::XDP_PASS.into()) {
                    Ok(action) => {
                        counters.steered = counters.steered.wrapping_add(1);
                        action
                    }
                    Err(action) => {
                        counters.no_socket = counters.no_socket.wrapping_add(1);
                        action
                    }
                }
            }
            Verdict::Pass(reason) => {
                counters.record_pass(reason);
                xdp_action::XDP_PASS
            }
        }
    }

    /// The object's license: GPL-compatible, so GPL-only helpers stay available.
    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        // Unreachable in a verified program: the verifier rejects paths that would get here.
        loop {}
    }
}

/// The host build of this crate is empty; the program only exists for `bpfel-unknown-none`.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
