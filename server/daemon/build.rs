//! Embeds the XDP object when `XDHCP6_EBPF_OBJECT` names it at build time.
//!
//! Without it nothing is embedded and the daemon asks for the object at run time, so a plain
//! stable `cargo build` never needs nightly or bpf-linker.

#[path = "../datapath/build/embed.rs"]
mod embed;

fn main() {
    embed::ebpf_object();
}
