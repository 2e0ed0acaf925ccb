//! Configuration of the options sent unasked (`always-send`) and of the options relays may
//! supply (`rsoo-allow`): the model, every error with its field path, and the round trip.

use xdhcp6_engine::config::{Config, ConfigError, RSOO_DEFAULT};

const FILE: &str = "/etc/xdhcp6/options.toml";

const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0a"
"#;

const LINK: &str = r#"
[[link]]
name = "cable-1"
interfaces = ["eth1"]
"#;

fn load(rest: &str) -> Config {
    Config::from_toml_str(&format!("{BASE}{rest}"), FILE).unwrap_or_else(|error| panic!("{error}"))
}

/// Asserts the field path and that the problem mentions `needle`.
fn assert_error(rest: &str, field: &str, needle: &str) -> ConfigError {
    let text = format!("{BASE}{rest}");
    let error = match Config::from_toml_str(&text, FILE) {
        Ok(_) => panic!("accepted:\n{text}"),
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

fn round_trip(config: &Config) {
    let text = config.to_toml_string();
    let again = Config::from_toml_str(&text, "again.toml")
        .unwrap_or_else(|error| panic!("{error}\n{text}"));
    assert_eq!(&again, config, "{text}");
    assert_eq!(again.to_toml_string(), text);
}

// ---- always-send ----

#[test]
fn always_send_names_typed_keys_and_custom_codes() {
    let config = load(&format!(
        r#"
[options]
dns-servers = ["2001:db8:53::1"]
sol-max-rt = 3600
custom = [{{ code = 100, u8 = 1 }}, {{ code = 101, u8 = 2, always-send = true }}]
always-send = ["sol-max-rt", 100, "dns-servers"]
{LINK}"#
    ));
    let options = &config.links[0].options;
    assert_eq!(options.always_send, [23, 82, 100, 101]);
    round_trip(&config);
    let text = config.to_toml_string();
    assert!(text.contains("always-send"), "{text}");
}

#[test]
fn always_send_on_a_vendor_option_marks_that_enterprise() {
    let config = load(&format!(
        r#"
[[options.vendor]]
enterprise = 4491
always-send = true
sub-options = [{{ code = 33, text = "modem.cfg" }}]

[[options.vendor]]
enterprise = 9999
sub-options = [{{ code = 1, u8 = 1 }}]
{LINK}"#
    ));
    let vendor = &config.links[0].options.vendor;
    assert!(vendor[0].always_send);
    assert!(!vendor[1].always_send);
    assert!(config.links[0].options.always_send.is_empty());
    round_trip(&config);
}

#[test]
fn link_inherits_the_servers_always_send_and_may_replace_it() {
    let config = load(
        r#"
[options]
dns-servers = ["2001:db8:53::1"]
domain-search = ["example.net"]
always-send = ["dns-servers"]

[[link]]
name = "inherits"
interfaces = ["eth1"]

[[link]]
name = "replaces"
interfaces = ["eth2"]

[link.options]
always-send = ["domain-search"]
"#,
    );
    assert_eq!(config.links[0].options.always_send, [23]);
    assert_eq!(config.links[1].options.always_send, [24]);
    round_trip(&config);
}

#[test]
fn always_send_unknown_key() {
    assert_error(
        "[options]\ndns-servers = [\"2001:db8::1\"]\nalways-send = [\"dns\"]\n",
        "options.always-send[0]",
        "`dns` is not an option key",
    );
}

#[test]
fn always_send_option_not_set() {
    assert_error(
        &format!(
            "{LINK}\n[link.options]\ndns-servers = [\"2001:db8::1\"]\n\
             always-send = [\"dns-servers\", \"ntp-servers\"]\n"
        ),
        "link[0].options.always-send[1]",
        "`ntp-servers` (56) is not set",
    );
    assert_error(
        "[options]\nalways-send = [100]\n",
        "options.always-send[0]",
        "option 100 is not set",
    );
}

#[test]
fn always_send_twice() {
    assert_error(
        "[options]\ncustom = [{ code = 100, u8 = 1, always-send = true }]\nalways-send = [100]\n",
        "options.always-send[0]",
        "appears twice",
    );
}

#[test]
fn always_send_vendor_by_code_or_key() {
    let vendor = "[[options.vendor]]\nenterprise = 4491\nsub-options = [{ code = 33, u8 = 1 }]\n";
    assert_error(
        &format!("[options]\nalways-send = [17]\n{vendor}"),
        "options.always-send[0]",
        "in its `vendor` entry",
    );
    assert_error(
        &format!("[options]\nalways-send = [\"vendor\"]\n{vendor}"),
        "options.always-send[0]",
        "in its `vendor` entry",
    );
}

#[test]
fn always_send_on_a_sub_option() {
    assert_error(
        "[[options.vendor]]\nenterprise = 4491\n\
         sub-options = [{ code = 33, u8 = 1, always-send = true }]\n",
        "options.vendor[0].sub-options[0].always-send",
        "on the vendor option",
    );
}

// ---- rsoo-allow ----

#[test]
fn rsoo_allow_adds_to_the_registry_default() {
    assert_eq!(RSOO_DEFAULT, [65]);
    let config = load(&format!("{LINK}rsoo-allow = [99, 23]\n"));
    let link = &config.links[0];
    assert_eq!(link.rsoo_allow, [99, 23]);
    assert!(link.rsoo_allows(65));
    assert!(link.rsoo_allows(99));
    assert!(!link.rsoo_allows(100));
    round_trip(&config);
    assert!(config.to_toml_string().contains("rsoo-allow = [99, 23]"));

    let plain = load(LINK);
    assert!(plain.links[0].rsoo_allow.is_empty());
    assert!(plain.links[0].rsoo_allows(65));
    assert!(!plain.links[0].rsoo_allows(99));
}

#[test]
fn rsoo_allow_option_built_by_the_server() {
    assert_error(
        &format!("{LINK}rsoo-allow = [99, 2]\n"),
        "link[0].rsoo-allow[1]",
        "the server builds this option itself",
    );
    assert_error(
        &format!("{LINK}rsoo-allow = [66]\n"),
        "link[0].rsoo-allow[0]",
        "never sent to a client",
    );
}

#[test]
fn rsoo_allow_twice() {
    assert_error(
        &format!("{LINK}rsoo-allow = [99, 99]\n"),
        "link[0].rsoo-allow[1]",
        "appears twice",
    );
}

#[test]
fn reference_file_shows_always_send_and_rsoo_allow() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/reference.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config = Config::from_toml_str(&text, path).unwrap_or_else(|error| panic!("{error}"));
    let link = &config.links[0];
    assert_eq!(link.rsoo_allow, [99]);
    assert_eq!(link.options.always_send, [23, 100, 104]);
    assert_eq!(link.options.vendor[0].sub_options.len(), 2);
    round_trip(&config);
}
