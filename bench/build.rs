//! Embeds the XDP object when `XDHCP6_EBPF_OBJECT` names it at build time.
//!
//! Without it nothing is embedded and the AF_XDP transport and the reflector ask for the object
//! at run time, so a plain stable `cargo build` never needs nightly or bpf-linker.

use std::{env, path::PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(xdhcp6_embedded_ebpf)");
    println!("cargo::rerun-if-env-changed=XDHCP6_EBPF_OBJECT");
    let Some(path) = env::var_os("XDHCP6_EBPF_OBJECT").filter(|path| !path.is_empty()) else {
        return;
    };
    let path = PathBuf::from(path);
    let path = match path.canonicalize() {
        Ok(path) => path,
        Err(error) => {
            println!(
                "cargo::error=XDHCP6_EBPF_OBJECT={} cannot be embedded: {error}; build the \
                 object first (cargo xtask build) or unset the variable",
                path.display()
            );
            return;
        }
    };
    let Some(text) = path.to_str() else {
        println!(
            "cargo::error=XDHCP6_EBPF_OBJECT={} is not UTF-8 and cannot be embedded",
            path.display()
        );
        return;
    };
    println!("cargo::rerun-if-changed={text}");
    println!("cargo::rustc-env=XDHCP6_EMBEDDED_EBPF_OBJECT={text}");
    println!("cargo::rustc-cfg=xdhcp6_embedded_ebpf");
}
