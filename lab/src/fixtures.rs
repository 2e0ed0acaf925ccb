//! The configurations under `tests/fixtures/configs/`, written once and shared by the daemon's
//! tests, the generator's tests and the xtask runs.
//!
//! A fixture names what changes from run to run as `@PLACEHOLDER@` (`@SERVER_IF@`, the
//! server's interface; `@SALT@`); [`render`] fills them in.

use crate::{Error, Result};

/// Two links: a local one on `@SERVER_IF@` and a relayed one with an IA_PD pool; `@SALT@`.
pub const TWO_LINKS: &str = include_str!("../../tests/fixtures/configs/two-links.toml");
/// One access link on `@SERVER_IF@` with addresses and prefixes, short timers.
pub const ACCESS: &str = include_str!("../../tests/fixtures/configs/access.toml");
/// `cargo xtask demo`'s server on `@SERVER_IF@`.
pub const DEMO: &str = include_str!("../../tests/fixtures/configs/demo.toml");
/// `cargo xtask bench`'s xdhcp6d on `@SERVER_IF@`.
pub const BENCH: &str = include_str!("../../tests/fixtures/configs/bench.toml");
/// `cargo xtask torture`'s xdhcp6d on `@SERVER_IF@`, with the default limits.
pub const TORTURE: &str = include_str!("../../tests/fixtures/configs/torture.toml");
/// The AF_XDP worker tests' link on `@SERVER_IF@`, untagged and on VLAN 101.
pub const AFXDP_VETH: &str = include_str!("../../tests/fixtures/configs/afxdp-veth.toml");
/// The generator's AF_XDP tests: xdhcp6d on `@SERVER_IF@`.
pub const BENCH_AFXDP: &str = include_str!("../../tests/fixtures/configs/bench-afxdp.toml");
/// The generator's UDP test: the engine on loopback.
pub const BENCH_UDP: &str = include_str!("../../tests/fixtures/configs/bench-udp.toml");
/// The generator against the engine in process.
pub const BENCH_ENGINE: &str = include_str!("../../tests/fixtures/configs/bench-engine.toml");

/// `fixture` with each `@KEY@` of `values` replaced; fails when a placeholder is left over.
pub fn render(fixture: &str, values: &[(&str, &str)]) -> Result<String> {
    let mut text = fixture.to_owned();
    for (key, value) in values {
        text = text.replace(&format!("@{key}@"), value);
    }
    if let Some(start) = text.find('@') {
        let rest = &text[start..];
        let end = rest[1..].find('@').map_or(rest.len(), |end| end + 2);
        return Err(Error::State(format!(
            "the fixture still has the placeholder {}",
            &rest[..end]
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_leftovers_named() {
        let text = render(TWO_LINKS, &[("SERVER_IF", "eth9"), ("SALT", "s")]).unwrap();
        assert!(text.contains(r#"interfaces = ["eth9"]"#));
        assert!(text.contains(r#"salt = "s""#));
        let error = render(TWO_LINKS, &[("SALT", "s")]).unwrap_err();
        assert!(error.to_string().contains("@SERVER_IF@"), "{error}");
        for fixture in [BENCH_UDP, BENCH_ENGINE] {
            assert!(render(fixture, &[]).is_ok());
        }
    }
}
