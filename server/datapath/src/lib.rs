//! The xdhcp6 OS plumbing: every system call of the server and the load generator, and the
//! only place outside the XDP program where `unsafe` is written.
//!
//! - AF_XDP, split the way the kernel interface is: [`iface`] (interfaces: index, name,
//!   addresses, receive queues), `umem` (the shared packet buffer), `ring` (the four mapped
//!   rings), [`socket`] (binding an AF_XDP socket to a queue) and [`queue`] (the frame
//!   accounting a datapath drives).
//! - [`steer`]: loading and attaching the XDP program (aya), its XskMap and its counters.
//! - [`mmsg`] and [`udp`]: batched UDP with `recvmmsg` / `sendmmsg`, the server socket.
//! - [`os`]: pinning threads, waiting on descriptors, signals, the wall clock, error chains.
//! - [`ioprio`]: a thread's I/O scheduling class (`ioprio_set`, `ioprio_get`).
//! - [`wake`]: an `eventfd` that wakes a thread sleeping in `poll(2)` on its socket.
//! - [`blockdev`]: the disk under a file, its request queues and interrupts, and where its
//!   requests complete (sysfs, procfs).
//!
//! Each `unsafe` block says why it is sound in a `// Safety:` comment; the APIs exported here
//! are safe.

pub mod blockdev;
pub mod iface;
pub mod ioprio;
pub mod mmsg;
pub mod os;
pub mod queue;
mod ring;
pub mod socket;
pub mod steer;
pub mod udp;
mod umem;
pub mod wake;

pub use iface::{InterfaceInfo, interface_index, interface_name, rx_queue_count};
pub use queue::{FrameAudit, XskQueue};
pub use socket::{BindMode, XskConfig, XskError, XskSocket, register};
