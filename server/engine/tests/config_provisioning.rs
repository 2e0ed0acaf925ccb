//! Configuration of provisioning for cable and BNG networks: reservation keys (`remote-id`,
//! `subscriber-id`, `interface-id`, `cm-mac`), reservation options, `reconfigure-accept` and
//! `advertise-delay-ms`: values, errors with their field path, round trip.

use xdhcp6_engine::config::{ClientKey, ClientKeys, Config, ConfigError, LinkId};

const FILE: &str = "/etc/xdhcp6/provisioning.toml";

const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0a"

[[link]]
name = "bng-1"
relay-prefixes = ["2001:db8:ffff:1::/64"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link]]
name = "bng-2"
relay-prefixes = ["2001:db8:ffff:2::/64"]

[[link.pool]]
prefix = "2001:db8:2::/64"
"#;

fn load(text: &str) -> Config {
    Config::from_toml_str(text, FILE).unwrap_or_else(|error| panic!("{error}\n{text}"))
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// Asserts the field path and that the problem mentions `needle`.
fn assert_error(text: &str, field: &str, needle: &str) -> ConfigError {
    let error = match Config::from_toml_str(text, FILE) {
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

const ALL_KEYS: &str = r#"
[[reservation]]
remote-id = "00000de96c696e65"
address = "2001:db8:1::1"

[[reservation]]
subscriber-id = "subscriber 0001"
address = "2001:db8:1::2"

[[reservation]]
subscriber-id = { hex = "00ff" }
address = "2001:db8:1::3"

[[reservation]]
interface-id = "port-7"
link = "bng-2"
address = "2001:db8:2::7"

[[reservation]]
interface-id = { hex = "0001" }
link = "bng-1"
address = "2001:db8:1::4"

[[reservation]]
cm-mac = "00:11:22:aa:bb:cc"

[reservation.options]
dns-servers = ["2001:db8:53::9"]
bootfile-url = "tftp://[2001:db8::69]/erouter.cfg"
always-send = ["dns-servers"]
"#;

#[test]
fn every_reservation_key_loads() {
    let config = load(&with(ALL_KEYS));
    let keys: Vec<&ClientKey> = config.reservations.iter().map(|r| &r.client).collect();
    assert_eq!(
        keys,
        [
            &ClientKey::RemoteId(vec![0, 0, 0x0d, 0xe9, 0x6c, 0x69, 0x6e, 0x65]),
            &ClientKey::SubscriberId(b"subscriber 0001".to_vec()),
            &ClientKey::SubscriberId(vec![0, 0xff]),
            &ClientKey::InterfaceId(b"port-7".to_vec()),
            &ClientKey::InterfaceId(vec![0, 1]),
            &ClientKey::CmMac(vec![0, 0x11, 0x22, 0xaa, 0xbb, 0xcc]),
        ]
    );
    let options = &config.reservations[5].options;
    assert_eq!(options.dns_servers.len(), 1);
    assert_eq!(options.always_send, [23]);
    assert!(config.reservations[5].address.is_none());
    assert!(config.reservations[0].options.encoded.is_empty());

    // Interface-Ids select on their own link only.
    let port_7 = ClientKeys {
        interface_id: Some(b"port-7"),
        ..ClientKeys::default()
    };
    assert_eq!(
        config
            .reservation_for(LinkId(1), &port_7)
            .map(|r| r.address),
        Some(Some("2001:db8:2::7".parse().unwrap()))
    );
    assert!(config.reservation_for(LinkId(0), &port_7).is_none());
}

#[test]
fn provisioning_keys_round_trip() {
    let text = with(ALL_KEYS)
        .replace(
            "[server]\n",
            "[server]\nadvertise-delay-ms = 40\nreconfigure-accept = true\npreference = 10\n",
        )
        .replace(
            "name = \"bng-2\"\n",
            "name = \"bng-2\"\npreference = 255\nadvertise-delay-ms = 0\nreconfigure-accept = false\n",
        );
    let config = load(&text);
    assert_eq!(config.server.advertise_delay_ms, 40);
    assert!(config.server.reconfigure_accept);
    assert_eq!(config.links[0].advertise_delay_ms, 40);
    assert_eq!(config.links[0].advertise_delay(), 40);
    assert!(config.links[0].reconfigure_accept);
    assert_eq!(config.links[1].advertise_delay_ms, 0);
    assert!(!config.links[1].reconfigure_accept);

    let written = config.to_toml_string();
    let again = Config::from_toml_str(&written, "round-trip.toml")
        .unwrap_or_else(|error| panic!("{error}\n{written}"));
    assert_eq!(again, config, "{written}");
    assert_eq!(again.to_toml_string(), written);
}

#[test]
fn defaults_send_no_reconfigure_accept_and_no_delay() {
    let config = load(BASE);
    assert_eq!(config.server.advertise_delay_ms, 0);
    assert!(!config.server.reconfigure_accept);
    assert!(config.links.iter().all(|link| link.advertise_delay() == 0));
    assert!(config.links.iter().all(|link| !link.reconfigure_accept));
}

#[test]
fn the_delay_applies_only_below_preference_255() {
    let config = load(&with("").replace(
        "[server]\n",
        "[server]\npreference = 255\nadvertise-delay-ms = 100\n",
    ));
    assert_eq!(config.links[0].advertise_delay_ms, 100);
    assert_eq!(config.links[0].advertise_delay(), 0);
}

#[test]
fn advertise_delay_over_a_second_names_the_field() {
    assert_error(
        &with("").replace("[server]\n", "[server]\nadvertise-delay-ms = 1001\n"),
        "server.advertise-delay-ms",
        "more than 1000 ms",
    );
    assert_error(
        &with("").replace(
            "name = \"bng-2\"\n",
            "name = \"bng-2\"\nadvertise-delay-ms = 5000\n",
        ),
        "link[1].advertise-delay-ms",
        "more than 1000 ms",
    );
    // The largest accepted.
    load(&with("").replace("[server]\n", "[server]\nadvertise-delay-ms = 1000\n"));
}

#[test]
fn two_keys_in_one_reservation_name_the_second() {
    assert_error(
        &with(
            "[[reservation]]\nremote-id = \"00000de901\"\nsubscriber-id = \"a\"\naddress = \"2001:db8:1::5\"\n",
        ),
        "reservation[0].remote-id",
        "not both subscriber-id and remote-id",
    );
    assert_error(
        &with(
            "[[reservation]]\nduid = \"000300010011\"\ncm-mac = \"001122334455\"\naddress = \"2001:db8:1::5\"\n",
        ),
        "reservation[0].cm-mac",
        "not both duid and cm-mac",
    );
}

#[test]
fn interface_id_needs_a_link() {
    assert_error(
        &with("[[reservation]]\ninterface-id = \"port-1\"\naddress = \"2001:db8:1::5\"\n"),
        "reservation[0].interface-id",
        "needs `link`",
    );
}

#[test]
fn duplicate_keys_name_both_reservations() {
    for (key, value) in [
        ("remote-id", "\"00000de901\""),
        ("subscriber-id", "\"sub\""),
        ("cm-mac", "\"00:11:22:33:44:55\""),
    ] {
        let text = with(&format!(
            "[[reservation]]\n{key} = {value}\naddress = \"2001:db8:1::5\"\n\
             [[reservation]]\n{key} = {value}\naddress = \"2001:db8:1::6\"\n"
        ));
        assert_error(
            &text,
            &format!("reservation[1].{key}"),
            "already reserved by reservation[0]",
        );
    }
    // The same Subscriber-ID as text and as hex is one key.
    assert_error(
        &with(
            "[[reservation]]\nsubscriber-id = \"AB\"\naddress = \"2001:db8:1::5\"\n\
             [[reservation]]\nsubscriber-id = { hex = \"4142\" }\naddress = \"2001:db8:1::6\"\n",
        ),
        "reservation[1].subscriber-id",
        "already reserved by reservation[0]",
    );
    // One Interface-Id on one link twice is an error; on two links it is two keys.
    assert_error(
        &with(
            "[[reservation]]\ninterface-id = \"p\"\nlink = \"bng-1\"\naddress = \"2001:db8:1::5\"\n\
             [[reservation]]\ninterface-id = \"p\"\nlink = \"bng-1\"\naddress = \"2001:db8:1::6\"\n",
        ),
        "reservation[1].interface-id",
        "already reserved by reservation[0]",
    );
    load(&with(
        "[[reservation]]\ninterface-id = \"p\"\nlink = \"bng-1\"\naddress = \"2001:db8:1::5\"\n\
         [[reservation]]\ninterface-id = \"p\"\nlink = \"bng-2\"\naddress = \"2001:db8:2::6\"\n",
    ));
}

#[test]
fn malformed_keys_name_the_field() {
    assert_error(
        &with("[[reservation]]\nremote-id = \"00000de9\"\naddress = \"2001:db8:1::5\"\n"),
        "reservation[0].remote-id",
        "4-byte enterprise number",
    );
    assert_error(
        &with("[[reservation]]\nremote-id = \"zz\"\naddress = \"2001:db8:1::5\"\n"),
        "reservation[0].remote-id",
        "hex",
    );
    assert_error(
        &with("[[reservation]]\ncm-mac = \"\"\naddress = \"2001:db8:1::5\"\n"),
        "reservation[0].cm-mac",
        "empty",
    );
    assert_error(
        &with("[[reservation]]\nsubscriber-id = { hex = \"x\" }\naddress = \"2001:db8:1::5\"\n"),
        "reservation[0].subscriber-id.hex",
        "hex",
    );
}

#[test]
fn reservation_options_errors_name_the_option() {
    assert_error(
        &with(
            "[[reservation]]\nremote-id = \"00000de901\"\n\n[reservation.options]\ndns-servers = [\"nope\"]\n",
        ),
        "reservation[0].options.dns-servers[0]",
        "",
    );
}

#[test]
fn a_reservation_needs_an_address_a_prefix_or_options() {
    assert_error(
        &with("[[reservation]]\nremote-id = \"00000de901\"\n"),
        "reservation[0]",
        "or options",
    );
}
