//! Configuration of how relayed clients find their link: both relay keys together, the
//! configurations check-config must refuse because one pair of keys could select two links,
//! Preference per link and `unknown-link`, each with its round trip.

use std::net::Ipv6Addr;

use xdhcp6_engine::config::{Config, ConfigError, LinkId, UnknownLink};

const FILE: &str = "/etc/xdhcp6/links.toml";

const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0b"
preference = 7
"#;

fn load(rest: &str) -> Config {
    let text = format!("{BASE}\n{rest}");
    match Config::from_toml_str(&text, FILE) {
        Ok(config) => config,
        Err(error) => panic!("{error}\n{text}"),
    }
}

fn error(rest: &str) -> ConfigError {
    let text = format!("{BASE}\n{rest}");
    match Config::from_toml_str(&text, FILE) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(error) => error,
    }
}

/// Asserts the field path and that the problem mentions every needle.
fn assert_error(rest: &str, field: &str, needles: &[&str]) {
    let error = error(rest);
    assert_eq!(error.file(), FILE, "{error}");
    assert_eq!(error.field(), field, "{error}");
    for needle in needles {
        assert!(
            error.problem().contains(needle),
            "`{needle}` not in: {error}"
        );
    }
}

fn round_trips(config: &Config) {
    let text = config.to_toml_string();
    let again = Config::from_toml_str(&text, "round-trip.toml")
        .unwrap_or_else(|error| panic!("{error}\n{text}"));
    assert_eq!(&again, config, "{text}");
}

fn addr(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

/// One relay address in front of two links, and one Interface-Id from two relays.
const SHARED: &str = r#"
[[link]]
name = "a"
relay-prefixes = ["2001:db8:ffff::1/128"]
interface-ids = ["bundle-1"]
[[link.pool]]
prefix = "2001:db8:1::/64"

[[link]]
name = "b"
relay-prefixes = ["2001:db8:ffff::1/128"]
interface-ids = ["bundle-2", { hex = "00ff" }]
[[link.pool]]
prefix = "2001:db8:2::/64"

[[link]]
name = "c"
relay-prefixes = ["2001:db8:ffff::/48"]
interface-ids = ["bundle-1"]
[[link.pool]]
prefix = "2001:db8:3::/64"

[[link]]
name = "d"
relay-prefixes = ["2001:db8:eeee::/48"]
"#;

#[test]
fn links_may_share_a_relay_prefix_or_an_interface_id_when_the_other_key_differs() {
    let config = load(SHARED);
    let link = |addr_text: &str, id: Option<&[u8]>| config.link_for_relay(addr(addr_text), id);
    // Both keys: the relay address names a and b, the Interface-Id picks one.
    assert_eq!(link("2001:db8:ffff::1", Some(b"bundle-1")), Some(LinkId(0)));
    assert_eq!(link("2001:db8:ffff::1", Some(b"bundle-2")), Some(LinkId(1)));
    assert_eq!(link("2001:db8:ffff::1", Some(&[0, 255])), Some(LinkId(1)));
    // The same Interface-Id from another address of c's prefix: c. Both keys take the longest
    // prefix, so the /128 of a wins over c's /48 that also holds it.
    assert_eq!(link("2001:db8:ffff::9", Some(b"bundle-1")), Some(LinkId(2)));
    // The pool prefix is a relay prefix too.
    assert_eq!(link("2001:db8:3::1", Some(b"bundle-1")), Some(LinkId(2)));
    // An Interface-Id only one link lists selects it from any relay.
    assert_eq!(link("2001:db8:9::1", Some(b"bundle-2")), Some(LinkId(1)));
    assert_eq!(link("::", Some(b"bundle-2")), Some(LinkId(1)));
    // An Interface-Id two links list, from a relay of neither: no link by it alone...
    assert_eq!(link("2001:db8:9::1", Some(b"bundle-1")), None);
    assert_eq!(link("::", Some(b"bundle-1")), None);
    // ...but the link-address alone still can select a third.
    assert_eq!(link("2001:db8:eeee::1", Some(b"bundle-1")), Some(LinkId(3)));
    // The shared relay address alone is ambiguous; an unknown Interface-Id does not help.
    assert_eq!(link("2001:db8:ffff::1", None), None);
    assert_eq!(link("2001:db8:ffff::1", Some(b"bundle-9")), None);
    // A prefix that one link lists selects it by link-address alone.
    assert_eq!(link("2001:db8:ffff::9", None), Some(LinkId(2)));
    assert_eq!(link("2001:db8:1::1", None), Some(LinkId(0)));
    round_trips(&config);
}

#[test]
fn interface_id_of_one_link_still_wins_over_another_links_prefix() {
    // The order of single keys is as before: Interface-Id, then link-address.
    let config = load(
        r#"
[[link]]
name = "a"
interface-ids = ["x"]
[[link]]
name = "b"
relay-prefixes = ["2001:db8:ffff::/48"]
"#,
    );
    assert_eq!(
        config.link_for_relay(addr("2001:db8:ffff::1"), Some(b"x")),
        Some(LinkId(0))
    );
    assert_eq!(
        config.link_for_relay(addr("2001:db8:ffff::1"), Some(b"y")),
        Some(LinkId(1))
    );
}

#[test]
fn shared_relay_prefix_without_interface_ids_names_both_links() {
    assert_error(
        r#"
[[link]]
name = "a"
relay-prefixes = ["2001:db8:ffff::1/128"]
interface-ids = ["bundle-1"]
[[link]]
name = "b"
relay-prefixes = ["2001:db8:ffff::1/128"]
"#,
        "link[1].relay-prefixes[0]",
        &[
            "already selects link[0] \"a\"",
            "link[0].relay-prefixes[0]",
            "interface-ids",
        ],
    );
}

#[test]
fn shared_relay_prefix_and_shared_interface_id_is_ambiguous() {
    assert_error(
        r#"
[[link]]
name = "a"
relay-prefixes = ["2001:db8:ffff::1/128"]
interface-ids = ["bundle-1", "bundle-3"]
[[link]]
name = "b"
relay-prefixes = ["2001:db8:ffff::1/128"]
interface-ids = ["bundle-2", "bundle-3"]
"#,
        "link[1].relay-prefixes[0]",
        &["already selects link[0] \"a\"", "none in common"],
    );
}

#[test]
fn shared_pool_prefix_as_relay_prefix_needs_interface_ids_on_both() {
    // b lists a's pool prefix as a relay prefix: told apart only by Interface-Id.
    let config = load(
        r#"
[[link]]
name = "a"
interface-ids = ["port-1"]
[[link.pool]]
prefix = "2001:db8:1::/64"
[[link]]
name = "b"
interface-ids = ["port-2"]
relay-prefixes = ["2001:db8:1::/64"]
"#,
    );
    assert_eq!(
        config.link_for_relay(addr("2001:db8:1::1"), Some(b"port-2")),
        Some(LinkId(1))
    );
    assert_eq!(config.link_for_relay(addr("2001:db8:1::1"), None), None);
    round_trips(&config);
}

#[test]
fn shared_interface_id_without_relay_prefix_names_both_links() {
    // b has no prefix to tell it from a: whichever comes second names the first.
    assert_error(
        r#"
[[link]]
name = "a"
relay-prefixes = ["2001:db8:ffff::1/128"]
interface-ids = ["bundle-1"]
[[link]]
name = "b"
interface-ids = ["bundle-2", "bundle-1"]
"#,
        "link[1].interface-ids[1]",
        &["already selects link[0] \"a\"", "relay-prefixes or pools"],
    );
    assert_error(
        r#"
[[link]]
name = "a"
interface-ids = ["bundle-1"]
[[link]]
name = "b"
interface-ids = ["bundle-1"]
[[link.pool]]
prefix = "2001:db8:2::/64"
"#,
        "link[1].interface-ids[0]",
        &["already selects link[0] \"a\""],
    );
}

#[test]
fn interface_id_twice_on_one_link() {
    assert_error(
        r#"
[[link]]
name = "a"
relay-prefixes = ["2001:db8:ffff::1/128"]
interface-ids = ["x", { hex = "78" }]
"#,
        "link[0].interface-ids[1]",
        &["already selects link[0] \"a\""],
    );
}

// ---- Preference per link ----

#[test]
fn link_preference_defaults_to_the_servers_and_round_trips() {
    let config = load(
        r#"
[[link]]
name = "a"
interfaces = ["eth1"]
preference = 255
[[link]]
name = "b"
interfaces = ["eth2"]
"#,
    );
    assert_eq!(config.server.preference, 7);
    assert_eq!(config.links[0].preference, 255);
    assert_eq!(config.links[1].preference, 7);
    round_trips(&config);
    // Written out, each link states its own value: changing the server's later changes none.
    let text = config.to_toml_string();
    let again =
        Config::from_toml_str(&text.replacen("preference = 7", "preference = 9", 1), "x").unwrap();
    assert_eq!(again.server.preference, 9);
    assert_eq!(again.links[1].preference, 7);
}

#[test]
fn link_preference_out_of_range() {
    let error = error("[[link]]\nname = \"a\"\ninterfaces = [\"eth1\"]\npreference = 256\n");
    assert_eq!(error.field(), "link[0].preference", "{error}");
}

// ---- unknown-link ----

#[test]
fn unknown_link_defaults_to_drop_and_round_trips() {
    let config = load("[[link]]\nname = \"a\"\ninterfaces = [\"eth1\"]\n");
    assert_eq!(config.server.unknown_link, UnknownLink::Drop);
    round_trips(&config);
    let text = BASE.replacen(
        "preference = 7",
        "preference = 7\nunknown-link = \"no-addrs-avail\"",
        1,
    );
    let config = Config::from_toml_str(&text, FILE).unwrap();
    assert_eq!(config.server.unknown_link, UnknownLink::NoAddrsAvail);
    round_trips(&config);
    assert!(
        config
            .to_toml_string()
            .contains("unknown-link = \"no-addrs-avail\"")
    );
}

#[test]
fn unknown_link_unknown_value() {
    let text = BASE.replacen("preference = 7", "unknown-link = \"answer\"", 1);
    let error = Config::from_toml_str(&text, FILE).unwrap_err();
    assert_eq!(error.field(), "server.unknown-link", "{error}");
    assert!(error.problem().contains("no-addrs-avail"), "{error}");
}
