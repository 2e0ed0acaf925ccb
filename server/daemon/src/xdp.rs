//! Loading and attaching the XDP steering program (`ebpf/xdp`), and reading its counters.
//!
//! The loader is `xdhcp6_datapath::steer`, shared with the load generator and re-exported here.
//! This module adds the daemon's embedded copy of the object: [`locate`] finds the object from
//! an explicit path, else `XDHCP6_EBPF_OBJECT` at run time, else the copy embedded at build time
//! when `XDHCP6_EBPF_OBJECT` was set for `cargo build` (see `build.rs`). Plain stable builds
//! embed nothing and so never need the BPF toolchain.

use std::path::Path;

pub use xdhcp6_datapath::os::error_chain;
pub use xdhcp6_datapath::steer::{
    AttachMode, EbpfObject, OBJECT_ENV, ObjectOrigin, Steering, SteeringError,
};

/// Finds the object: `explicit`, else `XDHCP6_EBPF_OBJECT` now, else the embedded copy.
pub fn locate(explicit: Option<&Path>) -> Result<EbpfObject, SteeringError> {
    EbpfObject::locate(explicit, embedded())
}

/// The object embedded at build time, if `XDHCP6_EBPF_OBJECT` was set for the build.
pub fn embedded() -> Option<EbpfObject> {
    #[cfg(xdhcp6_embedded_ebpf)]
    {
        let bytes: &'static [u8] = aya::include_bytes_aligned!(env!("XDHCP6_EMBEDDED_EBPF_OBJECT"));
        Some(EbpfObject::embedded(bytes))
    }
    #[cfg(not(xdhcp6_embedded_ebpf))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_wins_over_the_embedded_copy() {
        let missing = Path::new("/nonexistent/xdhcp6-ebpf.o");
        assert!(matches!(
            locate(Some(missing)),
            Err(SteeringError::ReadObject { .. })
        ));
    }
}
