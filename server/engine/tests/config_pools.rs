//! Configuration of pools: overlapping pools name both, several PD pools per link, and PD pools
//! carved from the link's on-link space (`inside-on-link`).

use xdhcp6_engine::config::{Config, ConfigError};
use xdhcp6_engine::prefix::Prefix;

const FILE: &str = "/etc/xdhcp6/pools.toml";

const SERVER: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0b"
"#;

fn load(rest: &str) -> Config {
    match Config::from_toml_str(&format!("{SERVER}\n{rest}"), FILE) {
        Ok(config) => config,
        Err(error) => panic!("{error}"),
    }
}

/// Asserts the field path and that the problem mentions `needle`.
fn assert_error(rest: &str, field: &str, needle: &str) -> ConfigError {
    let error = match Config::from_toml_str(&format!("{SERVER}\n{rest}"), FILE) {
        Ok(_) => panic!("accepted:\n{rest}"),
        Err(error) => error,
    };
    assert_eq!(error.file(), FILE, "{error}");
    assert_eq!(error.field(), field, "{error}");
    assert!(
        error.problem().contains(needle),
        "`{needle}` not in: {error}"
    );
    error
}

fn prefix(text: &str) -> Prefix {
    match text.parse() {
        Ok(prefix) => prefix,
        Err(error) => panic!("bad prefix {text}: {error:?}"),
    }
}

#[test]
fn overlapping_address_pools_on_one_link_name_both() {
    // Disjoint ranges, nested prefixes: another server's slice of pool[0] would hold pool[1].
    let error = assert_error(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/65"
[[link.pool]]
prefix = "2001:db8:1:0:8000::/65"
"#,
        "link[0].pool[1].prefix",
        "2001:db8:1:0:8000::/65 overlaps 2001:db8:1::/64 (link[0].pool[0].prefix)",
    );
    assert_eq!(
        error.to_string(),
        "/etc/xdhcp6/pools.toml: link[0].pool[1].prefix: 2001:db8:1:0:8000::/65 overlaps \
         2001:db8:1::/64 (link[0].pool[0].prefix)"
    );
}

#[test]
fn overlapping_pd_pools_on_one_link_name_both() {
    assert_error(
        r#"
[[link]]
name = "a"
interfaces = ["eth1"]
[[link.pd-pool]]
prefix = "2001:db8:100::/40"
split = "1/2"
delegated-length = 56
[[link.pd-pool]]
prefix = "2001:db8:180::/41"
delegated-length = 60
"#,
        "link[0].pd-pool[1].prefix",
        "2001:db8:180::/41 overlaps 2001:db8:100::/40 (link[0].pd-pool[0].prefix)",
    );
}

#[test]
fn overlapping_pools_of_two_links_name_both() {
    // The later pool is named first, whichever of the two is shorter.
    assert_error(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1:0:8000::/65"
[[link]]
name = "b"
[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/65"
"#,
        "link[1].pool[0].prefix",
        "2001:db8:1::/64 overlaps 2001:db8:1:0:8000::/65 (link[0].pool[0].prefix)",
    );
}

#[test]
fn several_pd_pools_and_one_inside_on_link_round_trip() {
    let config = load(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/65"
[[link.pd-pool]]
prefix = "2001:db8:100::/40"
delegated-length = 56
[[link.pd-pool]]
prefix = "2001:db8:200::/40"
delegated-length = 60
[[link.pd-pool]]
prefix = "2001:db8:1:0:8000::/65"
delegated-length = 80
inside-on-link = true
"#,
    );
    let pools = &config.links[0].pd_pools;
    assert_eq!(
        pools.iter().map(|p| p.delegated_len).collect::<Vec<_>>(),
        [56, 60, 80]
    );
    assert_eq!(
        pools.iter().map(|p| p.inside_on_link).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(pools[2].prefix, prefix("2001:db8:1:0:8000::/65"));
    let text = config.to_toml_string();
    assert_eq!(text.matches("inside-on-link = true").count(), 1, "{text}");
    let again = match Config::from_toml_str(&text, "again.toml") {
        Ok(again) => again,
        Err(error) => panic!("{error}\n{text}"),
    };
    assert_eq!(again, config);
}

#[test]
fn inside_on_link_needs_an_address_pool_prefix_of_the_link() {
    assert_error(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/65"
[[link.pd-pool]]
prefix = "2001:db8:100::/40"
delegated-length = 56
inside-on-link = true
"#,
        "link[0].pd-pool[0].inside-on-link",
        "2001:db8:100::/40 is not inside an address pool prefix of this link",
    );
}

#[test]
fn inside_on_link_of_another_link_is_refused() {
    // The space belongs to link "a": "b" may not delegate it, key or no key.
    assert_error(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/65"
[[link]]
name = "b"
[[link.pool]]
prefix = "2001:db8:2::/64"
[[link.pd-pool]]
prefix = "2001:db8:1:0:8000::/65"
delegated-length = 80
inside-on-link = true
"#,
        "link[1].pd-pool[0].inside-on-link",
        "2001:db8:1:0:8000::/65 is not inside an address pool prefix of this link",
    );
}

#[test]
fn inside_on_link_must_leave_the_address_ranges_alone() {
    // The aggregate is shared by every server: it may not meet this server's address range,
    // even where this server's PD slice would not.
    assert_error(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/65"
[[link.pd-pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1:0:8000::/65"
delegated-length = 80
inside-on-link = true
"#,
        "link[0].pd-pool[0].prefix",
        "2001:db8:1::/64 overlaps 2001:db8:1::/65 (link[0].pool[0].range)",
    );
}

#[test]
fn inside_on_link_false_still_refuses_on_link_space() {
    assert_error(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/65"
[[link.pd-pool]]
prefix = "2001:db8:1:0:8000::/65"
delegated-length = 80
inside-on-link = false
"#,
        "link[0].pd-pool[0].prefix",
        "2001:db8:1:0:8000::/65 overlaps 2001:db8:1::/64 (link[0].pool[0].prefix)",
    );
}
