//! Configuration: every validation rule with its exact field path, encoded options against
//! hand-written hex, link selection, reservations, round trip, DUID persistence, examples.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use xdhcp6_engine::config::{
    ClientKey, Config, ConfigError, LinkId, NtpServer, PdExclude, RebindForeign, Timers,
};
use xdhcp6_engine::prefix::Prefix;

const FILE: &str = "/etc/xdhcp6/a.toml";

/// A valid configuration to which tests append.
const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0a"
"#;

fn load(text: &str) -> Config {
    match Config::from_toml_str(text, FILE) {
        Ok(config) => config,
        Err(error) => panic!("{error}"),
    }
}

fn error(text: &str) -> ConfigError {
    match Config::from_toml_str(text, FILE) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(error) => error,
    }
}

/// Asserts the field path and that the problem mentions `needle`.
fn assert_error(text: &str, field: &str, needle: &str) -> ConfigError {
    let error = error(text);
    assert_eq!(error.file(), FILE, "{error}");
    assert_eq!(error.field(), field, "{error}");
    assert!(
        error.problem().contains(needle),
        "`{needle}` not in: {error}"
    );
    error
}

fn with_base(rest: &str) -> String {
    format!("{BASE}\n{rest}")
}

fn prefix(text: &str) -> Prefix {
    text.parse().unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Reads and validates an example file (the engine takes text; reading is the caller's).
fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::new(
            &path.display().to_string(),
            "",
            format!("cannot read: {error}"),
        )
    })?;
    Config::from_toml_str(&text, &path.display().to_string())
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

// ---- syntax and serde-level errors ----

#[test]
fn syntax_error_has_line_and_column() {
    let error = error("[server]\nduid = \"00:01\"\npreference = = 3\n");
    assert_eq!(error.field(), "");
    assert_eq!(error.line_column(), Some((3, 14)), "{error}");
    assert!(
        error.to_string().starts_with("/etc/xdhcp6/a.toml: "),
        "{error}"
    );
    assert!(
        error.to_string().ends_with("(line 3, column 14)"),
        "{error}"
    );
}

#[test]
fn unknown_key_is_rejected() {
    let text = with_base(
        r#"
[[link]]
name = "a"
interfaces = ["eth1"]
[[link.pool]]
prefix = "2001:db8:1::/64"
rnage = "2001:db8:1::/65"
"#,
    );
    let error = assert_error(&text, "link[0].pool[0].rnage", "unknown field `rnage`");
    assert_eq!(error.line_column(), Some((11, 1)));
}

#[test]
fn unknown_top_level_key_is_rejected() {
    assert_error(&with_base("[sever]\n"), "sever", "unknown field `sever`");
}

#[test]
fn wrong_type_names_the_field() {
    let text = BASE.replace("[server]", "[server]\npreference = 256");
    assert_error(&text, "server.preference", "256");
}

#[test]
fn bad_duration_names_the_field() {
    let text = with_base("[[link]]\nname = \"a\"\ninterfaces = [\"eth1\"]\nt1 = \"5x\"\n");
    assert_error(&text, "link[0].t1", "is not a duration");
}

#[test]
fn missing_required_key_names_the_table() {
    let text = with_base("[[link]]\ninterfaces = [\"eth1\"]\n");
    assert_error(&text, "link[0]", "missing field `name`");
}

// ---- server ----

#[test]
fn duid_missing() {
    assert_error("[server]\npreference = 1\n", "server.duid", "duid-file");
}

#[test]
fn duid_and_duid_file_both() {
    let text = BASE.replace("[server]", "[server]\nduid-file = \"/tmp/x\"");
    assert_error(&text, "server.duid-file", "not both");
}

#[test]
fn duid_not_hex() {
    assert_error("[server]\nduid = \"00:01:zz\"\n", "server.duid", "not hex");
}

#[test]
fn duid_too_short() {
    assert_error(
        "[server]\nduid = \"0001\"\n",
        "server.duid",
        "3 to 130 octets",
    );
}

#[test]
fn timers_t1_greater_than_t2() {
    let text = BASE.replace("[server]", "[server]\nt1 = \"1h\"\nt2 = \"30m\"");
    assert_error(
        &text,
        "server.t1",
        "T1 (3600 s) is greater than T2 (1800 s)",
    );
}

#[test]
fn timers_t2_greater_than_preferred() {
    let text =
        with_base("[[link]]\nname = \"a\"\ninterfaces = [\"eth1\"]\npreferred-lifetime = 100\n");
    assert_error(
        &text,
        "link[0].t2",
        "greater than the preferred lifetime (100 s)",
    );
}

#[test]
fn timers_preferred_greater_than_valid() {
    let text = BASE.replace("[server]", "[server]\nvalid-lifetime = \"50m\"");
    assert_error(
        &text,
        "server.preferred-lifetime",
        "greater than the valid lifetime",
    );
}

#[test]
fn timers_valid_lifetime_zero() {
    let text = BASE.replace(
        "[server]",
        "[server]\nt1 = 0\nt2 = 0\npreferred-lifetime = 0\nvalid-lifetime = 0",
    );
    assert_error(&text, "server.valid-lifetime", "more than 0");
}

// ---- links ----

#[test]
fn link_name_duplicate() {
    let text = with_base(
        "[[link]]\nname = \"a\"\ninterfaces = [\"eth1\"]\n[[link]]\nname = \"a\"\ninterfaces = [\"eth2\"]\n",
    );
    assert_error(
        &text,
        "link[1].name",
        "\"a\" is already the name of link[0]",
    );
}

#[test]
fn link_name_empty() {
    let text = with_base("[[link]]\nname = \" \"\ninterfaces = [\"eth1\"]\n");
    assert_error(&text, "link[0].name", "is empty");
}

#[test]
fn link_without_selection() {
    let text = with_base(
        "[[link]]\nname = \"a\"\n[[link.pd-pool]]\nprefix = \"2001:db8:100::/48\"\ndelegated-length = 56\n",
    );
    assert_error(&text, "link[0]", "no way to select this link");
}

#[test]
fn interface_duplicate_across_links() {
    let text = with_base(
        r#"
[[link]]
name = "a"
interfaces = [{ name = "eth1", vlan = 7 }]
[[link]]
name = "b"
interfaces = ["eth1", { name = "eth1", vlan = 7 }]
"#,
    );
    assert_error(
        &text,
        "link[1].interfaces[1]",
        "eth1 (VLAN 7) already selects link[0] \"a\"",
    );
}

#[test]
fn interface_vlan_out_of_range() {
    let text =
        with_base("[[link]]\nname = \"a\"\ninterfaces = [{ name = \"eth1\", vlan = 4095 }]\n");
    assert_error(&text, "link[0].interfaces[0].vlan", "4095 is not a VLAN id");
}

#[test]
fn interface_name_too_long() {
    let text = with_base("[[link]]\nname = \"a\"\ninterfaces = [\"a-very-long-interface\"]\n");
    assert_error(
        &text,
        "link[0].interfaces[0].name",
        "is not an interface name",
    );
}

#[test]
fn interface_id_duplicate() {
    let text = with_base(
        r#"
[[link]]
name = "a"
interface-ids = ["cmts1:1/0"]
[[link]]
name = "b"
interface-ids = [{ hex = "636d7473313a312f30" }]
"#,
    );
    assert_error(
        &text,
        "link[1].interface-ids[0]",
        "already selects link[0] \"a\"",
    );
}

#[test]
fn interface_id_text_and_hex() {
    let text =
        with_base("[[link]]\nname = \"a\"\ninterface-ids = [{ text = \"x\", hex = \"01\" }]\n");
    assert_error(&text, "link[0].interface-ids[0]", "exactly one");
}

#[test]
fn relay_prefix_on_two_links() {
    let text = with_base(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
[[link]]
name = "b"
relay-prefixes = ["2001:db8:1::/64"]
"#,
    );
    assert_error(
        &text,
        "link[1].relay-prefixes[0]",
        "already selects link[0] \"a\"",
    );
}

#[test]
fn relay_prefix_not_a_prefix() {
    let text = with_base("[[link]]\nname = \"a\"\nrelay-prefixes = [\"2001:db8::1/64\"]\n");
    assert_error(&text, "link[0].relay-prefixes[0]", "host bits are set");
}

// ---- pools ----

fn one_pool(pool: &str) -> String {
    with_base(&format!("[[link]]\nname = \"a\"\n[[link.pool]]\n{pool}\n"))
}

fn one_pd_pool(pool: &str) -> String {
    with_base(&format!(
        "[[link]]\nname = \"a\"\ninterfaces = [\"eth1\"]\n[[link.pd-pool]]\n{pool}\n"
    ))
}

#[test]
fn range_not_inside_prefix() {
    let text = with_base(
        r#"
[[link]]
name = "a"
interfaces = ["eth0"]
[[link]]
name = "b"
[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:2::/65"
"#,
    );
    let error = error(&text);
    assert_eq!(
        error.to_string(),
        "/etc/xdhcp6/a.toml: link[1].pool[0].range: 2001:db8:2::/65 is not inside prefix 2001:db8:1::/64"
    );
}

#[test]
fn range_and_split_both() {
    let text =
        one_pool("prefix = \"2001:db8:1::/64\"\nrange = \"2001:db8:1::/65\"\nsplit = \"1/2\"");
    assert_error(&text, "link[0].pool[0].split", "not both");
}

#[test]
fn split_not_power_of_two() {
    let text = one_pool("prefix = \"2001:db8:1::/64\"\nsplit = \"1/3\"");
    assert_error(&text, "link[0].pool[0].split", "power of two");
}

#[test]
fn split_part_out_of_bounds() {
    let text = one_pool("prefix = \"2001:db8:1::/64\"\nsplit = \"0/2\"");
    assert_error(&text, "link[0].pool[0].split", "numbered from 1 to 2");
    let text = one_pool("prefix = \"2001:db8:1::/64\"\nsplit = \"3/2\"");
    assert_error(&text, "link[0].pool[0].split", "numbered from 1 to 2");
}

#[test]
fn split_not_a_fraction() {
    let text = one_pool("prefix = \"2001:db8:1::/64\"\nsplit = \"half\"");
    assert_error(&text, "link[0].pool[0].split", "PART/PARTS");
}

#[test]
fn pool_prefix_invalid() {
    let text = one_pool("prefix = \"2001:db8:1::\"");
    assert_error(&text, "link[0].pool[0].prefix", "ADDRESS/LENGTH");
}

#[test]
fn pool_prefix_on_two_links() {
    let text = with_base(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
split = "1/2"
[[link]]
name = "b"
[[link.pool]]
prefix = "2001:db8:1::/64"
split = "2/2"
"#,
    );
    assert_error(
        &text,
        "link[1].pool[0].prefix",
        "2001:db8:1::/64 is already a pool of link[0] \"a\" (link[0].pool[0])",
    );
}

#[test]
fn ranges_overlap() {
    let text = with_base(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
[[link]]
name = "b"
interfaces = ["eth2"]
[[link.pd-pool]]
prefix = "2001:db8:1::/56"
delegated-length = 60
"#,
    );
    assert_error(
        &text,
        "link[1].pd-pool[0].range",
        "2001:db8:1::/56 overlaps 2001:db8:1::/64 (link[0].pool[0].range)",
    );
}

#[test]
fn delegated_length_shorter_than_prefix() {
    let text = one_pd_pool("prefix = \"2001:db8:100::/48\"\ndelegated-length = 40");
    assert_error(
        &text,
        "link[0].pd-pool[0].delegated-length",
        "/40 is shorter than the pool prefix 2001:db8:100::/48",
    );
}

#[test]
fn delegated_length_shorter_than_range() {
    let text =
        one_pd_pool("prefix = \"2001:db8:100::/48\"\ndelegated-length = 48\nsplit = \"1/2\"");
    assert_error(
        &text,
        "link[0].pd-pool[0].delegated-length",
        "shorter than this server's range",
    );
}

#[test]
fn delegated_length_over_128() {
    let text = one_pd_pool("prefix = \"2001:db8:100::/48\"\ndelegated-length = 129");
    assert_error(
        &text,
        "link[0].pd-pool[0].delegated-length",
        "longer than 128",
    );
}

#[test]
fn excluded_prefix_length_not_longer_than_delegated() {
    let text = one_pd_pool(
        "prefix = \"2001:db8:100::/48\"\ndelegated-length = 56\nexcluded-prefix-length = 56",
    );
    assert_error(
        &text,
        "link[0].pd-pool[0].excluded-prefix-length",
        "greater than delegated-length 56",
    );
}

#[test]
fn excluded_subnet_out_of_range() {
    let text = one_pd_pool(
        "prefix = \"2001:db8:100::/48\"\ndelegated-length = 56\nexcluded-prefix-length = 64\nexcluded-subnet = 256",
    );
    assert_error(&text, "link[0].pd-pool[0].excluded-subnet", "0 to 255");
}

#[test]
fn excluded_subnet_without_length() {
    let text =
        one_pd_pool("prefix = \"2001:db8:100::/48\"\ndelegated-length = 56\nexcluded-subnet = 1");
    assert_error(
        &text,
        "link[0].pd-pool[0].excluded-subnet",
        "needs excluded-prefix-length",
    );
}

// ---- options ----

fn with_options(options: &str) -> String {
    with_base(&format!(
        "[[link]]\nname = \"a\"\ninterfaces = [\"eth1\"]\n[link.options]\n{options}\n"
    ))
}

#[test]
fn option_bad_address() {
    let text = with_options("dns-servers = [\"2001:db8::1\", \"nope\"]");
    assert_error(
        &text,
        "link[0].options.dns-servers[1]",
        "`nope` is not an IPv6 address",
    );
}

#[test]
fn option_bad_domain_name() {
    let text = with_options("domain-search = [\"ok.example\", \"bad..example\"]");
    assert_error(&text, "link[0].options.domain-search[1]", "empty label");
}

#[test]
fn option_bad_ntp_server() {
    let text = with_options("ntp-servers = [\"not a name\"]");
    assert_error(
        &text,
        "link[0].options.ntp-servers[0]",
        "neither an IPv6 address",
    );
}

#[test]
fn option_sol_max_rt_out_of_range() {
    let text = with_options("sol-max-rt = 30");
    assert_error(&text, "link[0].options.sol-max-rt", "outside 60..=86400");
}

#[test]
fn option_inf_max_rt_out_of_range() {
    let text = with_options("inf-max-rt = \"2d\"");
    assert_error(&text, "link[0].options.inf-max-rt", "outside 60..=86400");
}

#[test]
fn option_information_refresh_time_below_minimum() {
    let text = with_options("information-refresh-time = \"5m\"");
    assert_error(
        &text,
        "link[0].options.information-refresh-time",
        "600 s minimum",
    );
}

#[test]
fn option_bootfile_url_invalid() {
    let text = with_options("bootfile-url = \"boot.efi\"");
    assert_error(&text, "link[0].options.bootfile-url", "is not a URL");
}

#[test]
fn option_bootfile_param_empty() {
    let text = with_options("bootfile-params = [\"a\", \"\"]");
    assert_error(
        &text,
        "link[0].options.bootfile-params[1]",
        "1 to 65535 bytes",
    );
}

#[test]
fn option_vendor_enterprise_duplicate() {
    let text = with_options("vendor = [{ enterprise = 9 }, { enterprise = 9 }]");
    assert_error(
        &text,
        "link[0].options.vendor[1].enterprise",
        "appears twice",
    );
}

#[test]
fn option_vendor_sub_option_bad_hex() {
    let text = with_options(
        "vendor = [{ enterprise = 9, sub-options = [{ code = 1, text = \"x\" }, { code = 2, hex = \"0\" }] }]",
    );
    assert_error(
        &text,
        "link[0].options.vendor[0].sub-options[1].hex",
        "odd number",
    );
}

#[test]
fn option_custom_reserved_code() {
    let text = with_options("custom = [{ code = 23, hex = \"00\" }]");
    assert_error(&text, "link[0].options.custom[0].code", "use `dns-servers`");
    let text = with_options("custom = [{ code = 2, hex = \"00\" }]");
    assert_error(
        &text,
        "link[0].options.custom[0].code",
        "builds this option itself",
    );
}

#[test]
fn option_custom_duplicate_code() {
    let text = with_options("custom = [{ code = 100, u8 = 1 }, { code = 100, u8 = 2 }]");
    assert_error(&text, "link[0].options.custom[1].code", "appears twice");
}

#[test]
fn option_custom_two_values() {
    let text = with_options("custom = [{ code = 100, u8 = 1, text = \"a\" }]");
    assert_error(
        &text,
        "link[0].options.custom[0]",
        "give one value, not text and u8",
    );
}

#[test]
fn option_custom_no_value() {
    let text = with_options("custom = [{ code = 100 }]");
    assert_error(&text, "link[0].options.custom[0]", "give a value");
}

#[test]
fn option_server_wide_error_names_options_table() {
    let text = with_base("[options]\ndns-servers = [\"x\"]\n");
    assert_error(&text, "options.dns-servers[0]", "not an IPv6 address");
}

// ---- reservations ----

const RESERVATION_LINKS: &str = r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56
[[link]]
name = "b"
[[link.pool]]
prefix = "2001:db8:2::/64"
"#;

fn with_reservations(reservations: &str) -> String {
    with_base(&format!("{RESERVATION_LINKS}\n{reservations}"))
}

#[test]
fn reservation_without_client() {
    let text = with_reservations("[[reservation]]\naddress = \"2001:db8:1::5\"\n");
    assert_error(&text, "reservation[0]", "duid or hw-address");
}

#[test]
fn reservation_duid_and_hw_address_both() {
    let text = with_reservations(
        "[[reservation]]\nduid = \"000300010011\"\nhw-address = \"00:11:22:33:44:55\"\naddress = \"2001:db8:1::5\"\n",
    );
    assert_error(&text, "reservation[0].hw-address", "not both");
}

#[test]
fn reservation_hw_type_without_hw_address() {
    let text = with_reservations(
        "[[reservation]]\nduid = \"000300010011\"\nhw-type = 1\naddress = \"2001:db8:1::5\"\n",
    );
    assert_error(&text, "reservation[0].hw-type", "only goes with hw-address");
}

#[test]
fn reservation_without_address_or_prefix() {
    let text = with_reservations("[[reservation]]\nduid = \"000300010011\"\n");
    assert_error(&text, "reservation[0]", "address, a prefix, or both");
}

#[test]
fn reservation_duid_duplicate() {
    let text = with_reservations(
        r#"
[[reservation]]
duid = "00:03:00:01:00:11"
address = "2001:db8:1::5"
[[reservation]]
duid = "000300010011"
address = "2001:db8:1::6"
"#,
    );
    assert_error(
        &text,
        "reservation[1].duid",
        "already reserved by reservation[0]",
    );
}

#[test]
fn reservation_hw_address_duplicate() {
    let text = with_reservations(
        r#"
[[reservation]]
hw-address = "00:11:22:33:44:55"
address = "2001:db8:1::5"
[[reservation]]
hw-address = "001122334455"
hw-type = 1
address = "2001:db8:1::6"
"#,
    );
    assert_error(
        &text,
        "reservation[1].hw-address",
        "already reserved by reservation[0]",
    );
}

#[test]
fn reservation_unknown_link() {
    let text = with_reservations(
        "[[reservation]]\nduid = \"000300010011\"\naddress = \"2001:db8:1::5\"\nlink = \"c\"\n",
    );
    assert_error(&text, "reservation[0].link", "no link is named \"c\"");
}

#[test]
fn reservation_address_outside_pools() {
    let text = with_reservations(
        "[[reservation]]\nduid = \"000300010011\"\naddress = \"2001:db8:9::5\"\n",
    );
    assert_error(
        &text,
        "reservation[0].address",
        "2001:db8:9::5 is not inside a pool prefix of any link",
    );
}

#[test]
fn reservation_address_outside_its_link() {
    let text = with_reservations(
        "[[reservation]]\nduid = \"000300010011\"\naddress = \"2001:db8:1::5\"\nlink = \"b\"\n",
    );
    assert_error(
        &text,
        "reservation[0].address",
        "not inside a pool prefix of link[1] \"b\"",
    );
}

#[test]
fn reservation_address_collision() {
    let text = with_reservations(
        r#"
[[reservation]]
duid = "000300010011"
address = "2001:db8:1::5"
[[reservation]]
duid = "000300010022"
address = "2001:db8:1:0::5"
"#,
    );
    assert_error(
        &text,
        "reservation[1].address",
        "2001:db8:1::5 is already reserved by reservation[0]",
    );
}

#[test]
fn reservation_prefix_not_delegated_length() {
    let text = with_reservations(
        "[[reservation]]\nduid = \"000300010011\"\nprefix = \"2001:db8:100::/60\"\n",
    );
    assert_error(
        &text,
        "reservation[0].prefix",
        "not a delegated-length prefix",
    );
}

#[test]
fn reservation_prefix_collision() {
    let text = with_reservations(
        r#"
[[reservation]]
duid = "000300010011"
prefix = "2001:db8:100:100::/56"
[[reservation]]
duid = "000300010022"
prefix = "2001:db8:100:100::/56"
"#,
    );
    assert_error(
        &text,
        "reservation[1].prefix",
        "already reserved by reservation[0]",
    );
}

// ---- what valid files produce ----

#[test]
fn defaults() {
    let config = load(&with_base(
        "[[link]]\nname = \"a\"\ninterfaces = [\"eth1\"]\n",
    ));
    let server = &config.server;
    assert_eq!(server.duid, hex("0001 0001 2e000001 02000000000a"));
    assert_eq!(server.preference, 0);
    assert_eq!(server.salt, "");
    assert_eq!(server.rebind_foreign, RebindForeign::Zero);
    assert_eq!(server.decline_probation, 86_400);
    assert_eq!(server.expected_leases, 65_536);
    assert_eq!(server.timers, Timers::default());
    let link = &config.links[0];
    assert_eq!(link.timers, Timers::default());
    assert!(!link.rapid_commit);
    assert!(link.options.encoded.is_empty());
}

#[test]
fn durations_in_every_form() {
    let text = BASE.replace(
        "[server]",
        "[server]\nt1 = 600\nt2 = \"15m\"\npreferred-lifetime = \"1h30m\"\nvalid-lifetime = \"infinite\"\ndecline-probation = \"2d\"",
    );
    let config = load(&text);
    assert_eq!(
        config.server.timers,
        Timers {
            t1: 600,
            t2: 900,
            preferred: 5400,
            valid: u32::MAX
        }
    );
    assert_eq!(config.server.decline_probation, 172_800);
}

#[test]
fn link_timers_fall_back_to_server_defaults() {
    let text = BASE.replace(
        "[server]",
        "[server]\nt1 = 10\nt2 = 16\npreferred-lifetime = 20\nvalid-lifetime = 30",
    ) + "[[link]]\nname = \"a\"\ninterfaces = [\"eth1\"]\nvalid-lifetime = 60\n";
    let config = load(&text);
    assert_eq!(
        config.links[0].timers,
        Timers {
            t1: 10,
            t2: 16,
            preferred: 20,
            valid: 60
        }
    );
}

#[test]
fn pools_range_split_and_whole() {
    let config = load(&with_base(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1:0:4000::/66"
[[link.pool]]
prefix = "2001:db8:2::/64"
split = "4/4"
[[link.pool]]
prefix = "2001:db8:3::/64"
[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56
split = "2/2"
excluded-prefix-length = 64
excluded-subnet = 3
"#,
    ));
    let link = &config.links[0];
    assert_eq!(link.na_pools[0].range, prefix("2001:db8:1:0:4000::/66"));
    assert_eq!(link.na_pools[1].range, prefix("2001:db8:2:0:c000::/66"));
    assert_eq!(link.na_pools[2].range, prefix("2001:db8:3::/64"));
    let pd = &link.pd_pools[0];
    assert_eq!(pd.range, prefix("2001:db8:100:8000::/49"));
    assert_eq!(pd.delegated_len, 56);
    assert_eq!(pd.exclude, Some(PdExclude { len: 64, subnet: 3 }));
    assert_eq!(
        pd.exclude
            .unwrap()
            .prefix_in(prefix("2001:db8:100:8100::/56")),
        Some(prefix("2001:db8:100:8103::/64"))
    );
}

#[test]
fn encoded_options_match_hand_written_hex() {
    let config = load(&with_options(
        r#"
dns-servers = ["2001:db8::1", "2001:db8::2"]
domain-search = ["example.com", "a.example.net."]
ntp-servers = ["2001:db8::123", "ff05::101", "ntp.example"]
sntp-servers = ["2001:db8::7b"]
sol-max-rt = "1h"
inf-max-rt = 3600
information-refresh-time = "1d"
bootfile-url = "tftp://[2001:db8::69]/boot.efi"
bootfile-params = ["root=/dev/sda", "ro"]
vendor = [{ enterprise = 4491, sub-options = [{ code = 32, text = "ab" }, { code = 33, u16 = 258 }] }]
custom = [
    { code = 200, hex = "0a:0b" },
    { code = 100, text = "hi" },
    { code = 101, addresses = ["2001:db8::1"] },
    { code = 102, address = "::1" },
    { code = 103, u32 = 5 },
    { code = 104, u8 = 7 },
    { code = 105, domains = ["x.y"] },
]
"#,
    ));
    let options = &config.links[0].options;
    let encoded: Vec<(u16, String)> = options
        .encoded
        .iter()
        .map(|o| (o.code, o.body.iter().map(|b| format!("{b:02x}")).collect()))
        .collect();
    let expected: Vec<(u16, &str)> = vec![
        // Vendor-specific Information: enterprise 4491, sub-option 32 "ab", 33 = 0x0102.
        (17, "0000118b 0020 0002 6162 0021 0002 0102"),
        (
            23,
            "20010db8000000000000000000000001 20010db8000000000000000000000002",
        ),
        (
            24,
            "076578616d706c6503636f6d00 0161076578616d706c65036e657400",
        ),
        (31, "20010db800000000000000000000007b"),
        (32, "00015180"),
        // NTP: sub-option 1 (address), 2 (multicast), 3 (FQDN).
        (
            56,
            "0001 0010 20010db8000000000000000000000123 \
             0002 0010 ff050000000000000000000000000101 \
             0003 000d 036e7470076578616d706c6500",
        ),
        (
            59,
            "746674703a2f2f5b323030313a6462383a3a36395d2f626f6f742e656669",
        ),
        (60, "000d 726f6f743d2f6465762f736461 0002 726f"),
        (82, "00000e10"),
        (83, "00000e10"),
        (100, "6869"),
        (101, "20010db8000000000000000000000001"),
        (102, "00000000000000000000000000000001"),
        (103, "00000005"),
        (104, "07"),
        (105, "0178017900"),
        (200, "0a0b"),
    ];
    assert_eq!(encoded.len(), expected.len());
    for ((code, body), (want_code, want_body)) in encoded.iter().zip(&expected) {
        assert_eq!(code, want_code);
        assert_eq!(hex(body), hex(want_body), "option {code}");
    }
    assert_eq!(options.encoded_with_code(56).len(), 1);
    assert_eq!(
        options.ntp_servers,
        [
            NtpServer::Address("2001:db8::123".parse().unwrap()),
            NtpServer::Multicast("ff05::101".parse().unwrap()),
            NtpServer::Fqdn("ntp.example".into()),
        ]
    );
    assert_eq!(options.sol_max_rt, Some(3600));
    assert_eq!(options.information_refresh_time, Some(86_400));
    assert_eq!(options.vendor[0].sub_options[1].body, [1, 2]);
}

#[test]
fn server_options_are_inherited_and_overridden() {
    let config = load(&with_base(
        r#"
[options]
dns-servers = ["2001:db8::1"]
sol-max-rt = 600
custom = [{ code = 100, u8 = 1 }, { code = 101, u8 = 2 }]
[[link]]
name = "inherits"
interfaces = ["eth1"]
[[link]]
name = "overrides"
interfaces = ["eth2"]
[link.options]
dns-servers = ["2001:db8::2"]
custom = [{ code = 101, u8 = 9 }]
"#,
    ));
    let inherits = &config.links[0].options;
    assert_eq!(
        inherits.dns_servers,
        ["2001:db8::1".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(inherits.sol_max_rt, Some(600));
    let overrides = &config.links[1].options;
    assert_eq!(
        overrides.dns_servers,
        ["2001:db8::2".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(overrides.sol_max_rt, Some(600));
    assert_eq!(overrides.encoded_with_code(100)[0].body, [1]);
    assert_eq!(overrides.encoded_with_code(101)[0].body, [9]);
}

#[test]
fn empty_lists_send_no_option() {
    let config = load(&with_options("dns-servers = []\ndomain-search = []"));
    assert!(config.links[0].options.encoded.is_empty());
}

#[test]
fn link_selection() {
    let config = load(&with_base(
        r#"
[[link]]
name = "direct"
interfaces = ["eth1", { name = "eth1", vlan = 100 }]
[[link]]
name = "relayed"
relay-prefixes = ["2001:db8:ff00::/40"]
interface-ids = ["cmts1:2/0", { hex = "0102" }]
[[link.pool]]
prefix = "2001:db8:1::/64"
[[link]]
name = "inner"
relay-prefixes = ["2001:db8:ff01::/48"]
"#,
    ));
    assert_eq!(config.link_for_interface("eth1", None), Some(LinkId(0)));
    assert_eq!(
        config.link_for_interface("eth1", Some(100)),
        Some(LinkId(0))
    );
    assert_eq!(config.link_for_interface("eth1", Some(101)), None);
    assert_eq!(config.link_for_interface("eth2", None), None);

    let addr = |text: &str| text.parse::<Ipv6Addr>().unwrap();
    assert_eq!(
        config.link_for_relay(addr("2001:db8:1::1"), None),
        Some(LinkId(1))
    );
    assert_eq!(
        config.link_for_relay(addr("2001:db8:ff02::1"), None),
        Some(LinkId(1))
    );
    // Longest prefix wins.
    assert_eq!(
        config.link_for_relay(addr("2001:db8:ff01::1"), None),
        Some(LinkId(2))
    );
    // A configured Interface-Id wins over the link-address.
    assert_eq!(
        config.link_for_relay(addr("2001:db8:ff01::1"), Some(b"cmts1:2/0")),
        Some(LinkId(1))
    );
    assert_eq!(
        config.link_for_relay(Ipv6Addr::UNSPECIFIED, Some(&[1, 2])),
        Some(LinkId(1))
    );
    assert_eq!(
        config.link_for_relay(Ipv6Addr::UNSPECIFIED, Some(b"other")),
        None
    );
    assert_eq!(config.link_for_relay(addr("2001:db8:9::1"), None), None);
    assert_eq!(
        config.links[1].relay_prefixes,
        [prefix("2001:db8:1::/64"), prefix("2001:db8:ff00::/40")]
    );
    assert_eq!(config.link(LinkId(2)).name, "inner");
}

#[test]
fn links_are_found_by_name() {
    let text = with_base(
        r#"
[[link]]
name = "a"
interfaces = ["eth1"]
[[link]]
name = "b"
interfaces = ["eth2"]
"#,
    );
    let config = load(&text);
    for (index, name) in ["a", "b"].into_iter().enumerate() {
        let id = config.link_by_name(name).unwrap();
        assert_eq!(id, LinkId(index as u16));
        assert_eq!(config.link(id).name, name);
    }
    assert_eq!(config.link_by_name("c"), None);
}

#[test]
fn reservation_lookups() {
    let config = load(&with_reservations(
        r#"
[[reservation]]
duid = "00:03:00:01:00:11:22:33:44:55"
address = "2001:db8:1::100"
prefix = "2001:db8:100:100::/56"
link = "a"
[[reservation]]
hw-address = "00:11:22:33:44:66"
address = "2001:db8:2::100"
"#,
    ));
    let duid = hex("0003000100112233 4455");
    let first = config.reservation_for_duid(&duid).unwrap();
    assert_eq!(first.client, ClientKey::Duid(duid.clone()));
    assert_eq!(first.link, Some(LinkId(0)));
    assert!(first.applies_to(LinkId(0)));
    assert!(!first.applies_to(LinkId(1)));
    let second = config
        .reservation_for_link_layer(1, &hex("001122334466"))
        .unwrap();
    assert_eq!(second.address, Some("2001:db8:2::100".parse().unwrap()));
    assert!(second.applies_to(LinkId(1)));
    assert!(
        config
            .reservation_for_link_layer(6, &hex("001122334466"))
            .is_none()
    );
    assert!(config.reservation_for_duid(&[0, 3, 0]).is_none());
    assert_eq!(
        config.reservation_for_address("2001:db8:1::100".parse().unwrap()),
        Some(first)
    );
    assert_eq!(
        config.reservation_for_prefix(prefix("2001:db8:100:100::/56")),
        Some(first)
    );
}

const FULL: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0a"
preference = 200
salt = "east"
rebind-foreign = "extend"
decline-probation = "12h"
expected-leases = 2000000
t1 = "30m"
t2 = "48m"
preferred-lifetime = "1h"
valid-lifetime = "2h"
relay-interfaces = ["uplink0", "uplink1"]
relay-sources = ["2001:db8:ffff::/48"]

[options]
dns-servers = ["2001:db8:53::1"]
domain-search = ["example.net"]

[[link]]
name = "cmts-1"
interfaces = [{ name = "eth1", vlan = 100 }, "eth3"]
relay-prefixes = ["2001:db8:ffff::/48"]
interface-ids = ["cmts-1:cable1/0", { hex = "00ff" }]
t1 = 10
t2 = 16
preferred-lifetime = 20
valid-lifetime = "infinite"
rapid-commit = true
[[link.pool]]
prefix = "2001:db8:1::/64"
split = "1/2"
[[link.pool]]
prefix = "2001:db8:2::/64"
range = "2001:db8:2::/80"
[[link.pd-pool]]
prefix = "2001:db8:100::/40"
delegated-length = 56
split = "1/4"
excluded-prefix-length = 64
excluded-subnet = 1
[link.options]
ntp-servers = ["2001:db8::123", "ntp.example.net"]
sntp-servers = ["2001:db8::124"]
sol-max-rt = "1h"
inf-max-rt = "1h"
information-refresh-time = "1d"
bootfile-url = "http://boot.example.net/ipxe"
bootfile-params = ["a", "b=c"]
vendor = [{ enterprise = 4491, sub-options = [{ code = 1, hex = "0102" }] }]
custom = [{ code = 100, text = "hello" }, { code = 101, domains = ["a.b"] }]

[[link]]
name = "bng-2"
interface-ids = ["bng-2"]

[[reservation]]
duid = "00:03:00:01:00:11:22:33:44:55"
address = "2001:db8:1::100"
prefix = "2001:db8:100:200::/56"
link = "cmts-1"

[[reservation]]
hw-address = "00:11:22:33:44:66"
hw-type = 1
address = "2001:db8:2::abcd"
"#;

#[test]
fn full_config_round_trips() {
    let config = load(FULL);
    assert_eq!(config.server.preference, 200);
    assert_eq!(config.server.rebind_foreign, RebindForeign::Extend);
    assert_eq!(config.server.expected_leases, 2_000_000);
    assert_eq!(config.links.len(), 2);
    assert_eq!(config.links[0].timers.valid, u32::MAX);
    assert!(config.links[0].rapid_commit);
    assert_eq!(config.links[0].interface_ids[1], [0, 255]);
    assert_eq!(config.links[1].options.dns_servers.len(), 1);
    assert_eq!(config.reservations.len(), 2);
    assert_eq!(config.server.relay_interfaces, ["uplink0", "uplink1"]);
    assert_eq!(config.server.relay_sources, [prefix("2001:db8:ffff::/48")]);

    let text = config.to_toml_string();
    let again = Config::from_toml_str(&text, "round-trip.toml")
        .unwrap_or_else(|error| panic!("{error}\n{text}"));
    assert_eq!(again, config, "{text}");
    assert_eq!(again.to_toml_string(), text);
}

#[test]
fn every_example_loads() {
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(examples())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    entries.sort();
    for path in entries {
        let config = load_file(&path).unwrap_or_else(|error| panic!("{error}"));
        assert!(!config.server.duid.is_empty());
        let text = config.to_toml_string();
        assert_eq!(Config::from_toml_str(&text, "again").unwrap(), config);
        seen += 1;
    }
    assert_eq!(seen, 9);
}

fn example(name: &str) -> Config {
    load_file(&examples().join(name)).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn split_examples_take_the_two_halves() {
    let (a, b) = (example("split-a.toml"), example("split-b.toml"));
    assert_eq!((a.server.preference, b.server.preference), (255, 0));
    assert_ne!(a.server.duid, b.server.duid);
    let (na_a, na_b) = (a.links[0].na_pools[0], b.links[0].na_pools[0]);
    assert_eq!(na_a.prefix, na_b.prefix);
    assert_eq!(na_a.range, prefix("2001:db8:1::/65"));
    assert_eq!(na_b.range, prefix("2001:db8:1:0:8000::/65"));
    let (pd_a, pd_b) = (a.links[0].pd_pools[0], b.links[0].pd_pools[0]);
    assert_eq!(pd_a.prefix, pd_b.prefix);
    assert!(!pd_a.range.overlaps(&pd_b.range));
    assert_eq!(
        a.links[0].timers,
        Timers {
            t1: 10,
            t2: 16,
            preferred: 20,
            valid: 30
        }
    );
}

#[test]
fn unique_examples_share_nothing() {
    let servers = [
        example("unique-a.toml"),
        example("unique-b.toml"),
        example("unique-c.toml"),
    ];
    let preferences: Vec<u8> = servers.iter().map(|s| s.server.preference).collect();
    assert_eq!(preferences, [255, 128, 64]);
    for (i, a) in servers.iter().enumerate() {
        for b in &servers[i + 1..] {
            assert_ne!(a.server.duid, b.server.duid);
            assert!(
                !a.links[0].na_pools[0]
                    .prefix
                    .overlaps(&b.links[0].na_pools[0].prefix)
            );
            assert!(
                !a.links[0].pd_pools[0]
                    .prefix
                    .overlaps(&b.links[0].pd_pools[0].prefix)
            );
        }
    }
}

#[test]
fn identical_examples_agree_on_allocation() {
    let a = example("identical-a.toml");
    for other in ["identical-b.toml", "identical-c.toml"] {
        let b = example(other);
        assert_ne!(a.server.duid, b.server.duid, "{other}");
        assert_eq!(a.server.salt, b.server.salt, "{other}");
        assert_eq!(a.links[0].na_pools, b.links[0].na_pools, "{other}");
        assert_eq!(a.links[0].pd_pools, b.links[0].pd_pools, "{other}");
    }
    assert_ne!(
        example("identical-b.toml").server.duid,
        example("identical-c.toml").server.duid
    );
    assert_eq!(a.links[0].na_pools[0].range, prefix("2001:db8:1::/64"));
}

#[test]
fn pd_pool_overlaps_address_pool() {
    let text = with_base(
        r#"
[[link]]
name = "a"
[[link.pool]]
prefix = "2001:db8:1::/64"
split = "1/2"
[[link]]
name = "b"
interfaces = ["eth2"]
[[link.pd-pool]]
prefix = "2001:db8:1::/56"
delegated-length = 60
split = "2/2"
"#,
    );
    assert_error(
        &text,
        "link[1].pd-pool[0].prefix",
        "2001:db8:1::/56 overlaps 2001:db8:1::/64 (link[0].pool[0].prefix)",
    );
}

#[test]
fn relays_are_admitted_where_the_server_section_says() {
    // Neither key: relay agents on any interface, from any source.
    let open = load(BASE);
    assert!(open.relays_on("eth9"));
    assert!(open.relay_source_allowed(Ipv6Addr::LOCALHOST));

    let text = BASE.replacen(
        "[server]\n",
        "[server]\nrelay-interfaces = [\"uplink0\"]\nrelay-sources = [\"2001:db8:ffff::/48\"]\n",
        1,
    );
    let config = load(&text);
    assert!(config.relays_on("uplink0"));
    assert!(!config.relays_on("mgmt0"));
    assert!(config.relay_source_allowed("2001:db8:ffff:1::1".parse().unwrap()));
    assert!(!config.relay_source_allowed("2001:db8:1::1".parse().unwrap()));
    // A relay interface is no link of direct clients.
    assert_eq!(config.link_for_interface("uplink0", None), None);
}

#[test]
fn bad_relay_interfaces_and_sources_name_the_field() {
    let with = |line: &str| BASE.replacen("[server]\n", &format!("[server]\n{line}\n"), 1);
    assert_error(
        &with(r#"relay-interfaces = ["up0", "up0"]"#),
        "server.relay-interfaces[1]",
        "twice",
    );
    assert_error(
        &with(r#"relay-interfaces = [" "]"#),
        "server.relay-interfaces[0]",
        "empty",
    );
    assert_error(
        &with(r#"relay-sources = ["2001:db8::/32", "nonsense"]"#),
        "server.relay-sources[1]",
        "",
    );
}

#[test]
fn qinq_link_is_chosen_by_the_whole_vlan_stack() {
    let text = with_base(
        r#"
[[link]]
name = "customer-a"
interfaces = [{ name = "eth1", vlan = 101, outer-vlan = 100 }]

[[link]]
name = "customer-b"
interfaces = [{ name = "eth1", vlan = 101, outer-vlan = 200 }]

[[link]]
name = "single-tag"
interfaces = [{ name = "eth1", vlan = 101 }]
"#,
    );
    let config = load(&text);
    let link = |vlans: &[u16]| {
        config
            .link_for_vlans("eth1", vlans)
            .map(|id| config.link(id).name.as_str())
    };
    // The same C-tag inside two S-tags: two customers, two links.
    assert_eq!(link(&[100, 101]), Some("customer-a"));
    assert_eq!(link(&[200, 101]), Some("customer-b"));
    assert_eq!(link(&[101]), Some("single-tag"));
    assert_eq!(link(&[300, 101]), None, "an S-tag no link names");
    assert_eq!(link(&[]), None);
    assert_eq!(
        config.link_for_interface("eth1", Some(101)),
        config.link_for_vlans("eth1", &[101])
    );

    let text2 = config.to_toml_string();
    assert_eq!(Config::from_toml_str(&text2, "again").unwrap(), config);
}

#[test]
fn outer_vlan_needs_an_inner_vlan() {
    assert_error(
        &with_base(
            "[[link]]\nname = \"a\"\ninterfaces = [{ name = \"eth1\", outer-vlan = 100 }]\n",
        ),
        "link[0].interfaces[0].outer-vlan",
        "needs `vlan`",
    );
    assert_error(
        &with_base(
            "[[link]]\nname = \"a\"\ninterfaces = [{ name = \"eth1\", vlan = 1, outer-vlan = 4095 }]\n",
        ),
        "link[0].interfaces[0].outer-vlan",
        "not a VLAN id",
    );
}
