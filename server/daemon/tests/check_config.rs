//! `xdhcp6d check-config` checks what start-up reads besides the file: the runtime
//! reservations file (merged the way start-up merges it) and the Bulk Leasequery listeners;
//! each error names the file, the field and the problem.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{DAEMON, scratch_dir};

const CONFIG: &str = r#"
[server]
duid = "00:03:00:01:02:00:00:00:00:01"

[[link]]
name = "access"
interfaces = ["eth0"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[reservation]]
duid = "00:03:00:01:02:00:00:00:00:aa"
address = "2001:db8:1::aa"
"#;

fn check(config: &Path, args: &[&str]) -> (Output, String) {
    let output = Command::new(DAEMON)
        .arg("check-config")
        .arg(config)
        .args(args)
        .output()
        .expect("xdhcp6d starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

#[test]
fn runtime_reservations_are_merged_and_their_errors_name_the_reservations_file() {
    let dir = scratch_dir("check-config", "reservations");
    let config = dir.join("server.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let reservations = dir.join("reservations.toml");
    let reservations_arg = reservations.to_str().unwrap();

    // A valid runtime reservation is counted.
    std::fs::write(
        &reservations,
        "[[reservation]]\nduid = \"00:03:00:01:02:00:00:00:00:bb\"\naddress = \"2001:db8:1::bb\"\n",
    )
    .unwrap();
    let (output, text) = check(&config, &["--reservations", reservations_arg]);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("runtime reservations: 1"), "{text}");

    // Found by default next to the journal.
    let journal = dir.join("leases.journal");
    let (output, text) = check(&config, &["--journal", journal.to_str().unwrap()]);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(&format!("runtime reservations: 1 ({reservations_arg})")),
        "{text}"
    );

    // An address outside every pool of the link: the runtime file's field.
    std::fs::write(
        &reservations,
        "[[reservation]]\nduid = \"00:03:00:01:02:00:00:00:00:bb\"\naddress = \"2001:db8:9::bb\"\n",
    )
    .unwrap();
    let (output, text) = check(&config, &["--reservations", reservations_arg]);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains(reservations_arg), "{text}");
    assert!(text.contains("reservation[0].address"), "{text}");

    // The same client reserved in both files: named in both.
    std::fs::write(
        &reservations,
        "[[reservation]]\nduid = \"00:03:00:01:02:00:00:00:00:aa\"\naddress = \"2001:db8:1::cc\"\n",
    )
    .unwrap();
    let (output, text) = check(&config, &["--reservations", reservations_arg]);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains(reservations_arg), "{text}");
    assert!(text.contains("reservation[0].duid"), "{text}");
    assert!(text.contains(config.to_str().unwrap()), "{text}");

    // A field the syntax does not have.
    std::fs::write(
        &reservations,
        "[[reservation]]\nmac = \"02:00:00:00:00:01\"\n",
    )
    .unwrap();
    let (output, text) = check(&config, &["--reservations", reservations_arg]);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains(reservations_arg), "{text}");
    assert!(text.contains("mac"), "{text}");
}

#[test]
fn bulk_leasequery_settings_are_shown_and_an_address_the_host_lacks_is_refused() {
    let dir = scratch_dir("check-config", "bulk");
    let config = dir.join("server.toml");
    let none = dir.join("none.toml");
    let none = none.to_str().unwrap();

    std::fs::write(
        &config,
        format!(
            "{CONFIG}\n[leasequery]\nbulk-listen = [\"[::1]:547\"]\nbulk-max-connections = 4\n"
        ),
    )
    .unwrap();
    let (output, text) = check(&config, &["--reservations", none]);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("bulk leasequery: listen [::1]:547, 4 connections"),
        "{text}"
    );

    // An address of no host (TEST-NET-1): start-up could not bind it.
    std::fs::write(
        &config,
        format!("{CONFIG}\n[leasequery]\nbulk-listen = [\"[::1]:547\", \"192.0.2.7:547\"]\n"),
    )
    .unwrap();
    let (output, text) = check(&config, &["--reservations", none]);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains(config.to_str().unwrap()), "{text}");
    assert!(text.contains("leasequery.bulk-listen[1]"), "{text}");
    assert!(text.contains("cannot listen on 192.0.2.7"), "{text}");

    // A limit of zero.
    std::fs::write(
        &config,
        format!("{CONFIG}\n[leasequery]\nbulk-max-queries = 0\n"),
    )
    .unwrap();
    let (output, text) = check(&config, &["--reservations", none]);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("leasequery.bulk-max-queries"), "{text}");
    assert!(text.contains("must be at least 1"), "{text}");
}
