//! Embeds the XDP object when `XDHCP6_EBPF_OBJECT` names it at build time.
//!
//! Without it nothing is embedded and the AF_XDP transport and the reflector ask for the object
//! at run time, so a plain stable `cargo build` never needs nightly or bpf-linker.

#[path = "../server/datapath/build/embed.rs"]
mod embed;

fn main() {
    embed::ebpf_object();
}
