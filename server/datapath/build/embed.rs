//! The build-script half of embedding the XDP object, shared by the crates that load it
//! (`xdhcp6d`, `xdhcp6-bench`): their `build.rs` include this file with `#[path]`.

use std::{env, path::PathBuf};

/// Tells cargo to embed the object named by `XDHCP6_EBPF_OBJECT`, if any: sets
/// `XDHCP6_EMBEDDED_EBPF_OBJECT` (its canonical path) and the cfg `xdhcp6_embedded_ebpf`.
pub fn ebpf_object() {
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
