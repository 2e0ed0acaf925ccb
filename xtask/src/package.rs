//! `cargo xtask package`: the Debian package of the appliance, and the test that installs it.
//!
//! The package tree is laid out here and packed by Debian's own `dpkg-deb --build
//! --root-owner-group`; the shared-library dependencies come from `dpkg-shlibdeps`, as
//! debhelper would compute them. The man pages and shell completions are written by the built
//! binary (`xdhcp6d generate`), from its clap definitions. See docs/packaging.md.

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::net::{SocketAddrV6, UdpSocket};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use xdhcp6_lab::netns::{self, Netns};
use xdhcp6_lab::process::Process;

use crate::{build, cmd};

/// Options of `cargo xtask package`.
#[derive(clap::Args)]
pub struct Options {
    /// The cargo profile of the packaged xdhcp6d: release (default), or dev (unoptimised but
    /// quick to build; the package test in `cargo xtask test` uses it).
    #[arg(long, value_name = "PROFILE", default_value = "release")]
    profile: String,
    /// Then test it on this machine (root): install, verify the units, run the server as
    /// each unit would, remove and purge; what `cargo xtask test` does with it.
    #[arg(long)]
    check: bool,
}

/// The Debian package's name.
pub const PACKAGE: &str = "xdhcp6";

/// The operator's pages shipped under /usr/share/doc/xdhcp6.
const OPERATOR_DOCS: [&str; 6] = [
    "packaging.md",
    "api.md",
    "reload.md",
    "migration.md",
    "observability.md",
    "deployment.md",
];

/// The Grafana dashboard and the Prometheus alert rules: (in the repository, in the package).
const DASHBOARDS: [(&str, &str); 2] = [
    (
        "dist/grafana/xdhcp6.json",
        "usr/share/xdhcp6/grafana/xdhcp6.json",
    ),
    (
        "dist/prometheus/xdhcp6-alerts.yml",
        "usr/share/xdhcp6/prometheus/xdhcp6-alerts.yml",
    ),
];
/// The service user and group the maintainer scripts create.
const USER: &str = "xdhcp6";
/// The installed configuration (a conffile).
const CONFIG: &str = "/etc/xdhcp6/xdhcp6.toml";
/// The runtime folder (`RuntimeDirectory=xdhcp6`): the control socket.
const RUNTIME: &str = "/run/xdhcp6";

/// The state folder (`StateDirectory=xdhcp6`).
const STATE: &str = "/var/lib/xdhcp6";
/// Where the units go (systemd's folder for packaged units).
const UNIT_DIR: &str = "usr/lib/systemd/system";
/// The link `systemctl enable xdhcp6d.service` makes.
const ENABLED_LINK: &str = "/etc/systemd/system/multi-user.target.wants/xdhcp6d.service";
/// The units under dist/systemd, and the datapath each runs.
const UNITS: [(&str, &str); 2] = [("xdhcp6d.service", "udp"), ("xdhcp6d-xdp.service", "xdp")];
/// The completion scripts: shell, the name `xdhcp6d generate` gives the file, where it goes.
const COMPLETIONS: [(&str, &str, &str); 3] = [
    (
        "bash",
        "xdhcp6d.bash",
        "usr/share/bash-completion/completions/xdhcp6d",
    ),
    (
        "zsh",
        "_xdhcp6d",
        "usr/share/zsh/vendor-completions/_xdhcp6d",
    ),
    (
        "fish",
        "xdhcp6d.fish",
        "usr/share/fish/vendor_completions.d/xdhcp6d.fish",
    ),
];

/// `cargo xtask package`: builds the eBPF object and the binary, then the package.
pub fn run(options: &Options) -> Result<()> {
    let ebpf_object = build::ebpf()?;
    let deb = build_deb(&options.profile, &ebpf_object)?;
    println!("{}", deb.display());
    if options.check {
        let started = Instant::now();
        check(&deb)?;
        eprintln!(
            "package: installed, checked and purged in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Builds xdhcp6d with `profile` (the XDP object embedded) and packs it; returns the .deb.
pub fn build_deb(profile: &str, ebpf_object: &Path) -> Result<PathBuf> {
    xdhcp6_lab::cmd::require_tools(&["dpkg-deb", "dpkg-shlibdeps", "strip", "gzip", "md5sum"])?;
    cmd::run(cmd::cargo().env("XDHCP6_EBPF_OBJECT", ebpf_object).args([
        "build",
        "--profile",
        profile,
        "-p",
        "xdhcp6d",
    ]))?;
    let profile_dir = match profile {
        "dev" | "test" => "debug",
        "release" | "bench" => "release",
        other => other,
    };
    let binary = build::target_dir().join(profile_dir).join("xdhcp6d");
    let root = cmd::workspace_root();
    let work = build::target_dir().join("package");
    // dpkg-shlibdeps wants the package tree at debian/PACKAGE under a folder with
    // debian/control, as in a source package.
    let tree = work.join("debian").join(PACKAGE);
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    mkdir(&tree.join("DEBIAN"))?;

    let sbin = tree.join("usr/sbin/xdhcp6d");
    install(&binary, &sbin, 0o755)?;
    // As dh_strip does: the symbols stay in target/, the package ships code only.
    cmd::run(Command::new("strip").args(["--strip-unneeded"]).arg(&sbin))?;
    for (unit, _) in UNITS {
        install(
            &root.join("dist/systemd").join(unit),
            &tree.join(UNIT_DIR).join(unit),
            0o644,
        )?;
    }
    install(
        &root.join("examples/package/xdhcp6.toml"),
        &tree.join(CONFIG.trim_start_matches('/')),
        0o644,
    )?;
    let doc = tree.join("usr/share/doc").join(PACKAGE);
    for page in OPERATOR_DOCS {
        install(&root.join("docs").join(page), &doc.join(page), 0o644)?;
    }
    for (source, target) in DASHBOARDS {
        install(&root.join(source), &tree.join(target), 0o644)?;
    }
    for entry in fs::read_dir(root.join("examples")).context("reading examples/")? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|ext| ext == "toml" || ext == "md")
        {
            let name = path.file_name().context("an example without a name")?;
            install(&path, &doc.join("examples").join(name), 0o644)?;
        }
    }
    write(&doc.join("copyright"), &copyright(&root)?, 0o644)?;

    let generated = work.join("generated");
    cmd::output(
        Command::new(&binary)
            .args(["generate", "man"])
            .arg(generated.join("man")),
    )?;
    let mut pages: Vec<PathBuf> = fs::read_dir(generated.join("man"))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    pages.sort();
    ensure!(!pages.is_empty(), "xdhcp6d generate man wrote no page");
    for page in &pages {
        let name = page.file_name().context("a page without a name")?;
        let target = tree.join("usr/share/man/man8").join(name);
        install(page, &target, 0o644)?;
        // -n: no name or time stamp in the gzip header, so that builds are reproducible.
        cmd::run(Command::new("gzip").args(["-9n"]).arg(&target))?;
    }
    for (shell, file, target) in COMPLETIONS {
        let dir = generated.join(shell);
        cmd::output(
            Command::new(&binary)
                .args(["generate", "completions", shell])
                .arg(&dir),
        )?;
        install(&dir.join(file), &tree.join(target), 0o644)?;
    }

    for script in ["postinst", "prerm", "postrm"] {
        install(
            &root.join("dist/debian").join(script),
            &tree.join("DEBIAN").join(script),
            0o755,
        )?;
    }
    write(
        &tree.join("DEBIAN/conffiles"),
        &format!("{CONFIG}\n"),
        0o644,
    )?;
    write(&tree.join("DEBIAN/md5sums"), &md5sums(&tree)?, 0o644)?;
    let control = control(&work, &tree)?;
    write(&tree.join("DEBIAN/control"), &control, 0o644)?;

    let arch = cmd::output(Command::new("dpkg").arg("--print-architecture"))?;
    let deb = work.join(format!(
        "{PACKAGE}_{}_{}.deb",
        debian_version(),
        arch.trim()
    ));
    // -Zxz -z1: xz (dpkg's default compressor) at its quickest level; the stripped binary is
    // what takes the time.
    cmd::run(
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group", "-Zxz", "-z1"])
            .arg(&tree)
            .arg(&deb),
    )?;
    eprintln!("package: {}", deb.display());
    Ok(deb)
}

/// The package's version: the workspace's, Debian revision 1.
fn debian_version() -> String {
    format!("{}-1", env!("CARGO_PKG_VERSION"))
}

/// DEBIAN/control, with `Depends` from dpkg-shlibdeps and `Installed-Size` from the tree.
fn control(work: &Path, tree: &Path) -> Result<String> {
    fs::write(
        work.join("debian/control"),
        format!("Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n"),
    )?;
    let shlibs = cmd::output(
        Command::new("dpkg-shlibdeps")
            .current_dir(work)
            .args(["-O", "-e"])
            .arg(tree.join("usr/sbin/xdhcp6d")),
    )?;
    let libraries = shlibs
        .lines()
        .find_map(|line| line.strip_prefix("shlibs:Depends="))
        .with_context(|| format!("dpkg-shlibdeps printed no shlibs:Depends: {shlibs:?}"))?
        .trim()
        .to_owned();
    let installed_kib = tree_size(tree)?.div_ceil(1024);
    Ok(format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: The xdhcp6 developers <xdhcp6@example.invalid>\n\
         Installed-Size: {installed_kib}\n\
         Depends: adduser, {libraries}\n\
         Section: net\n\
         Priority: optional\n\
         Homepage: https://example.invalid/xdhcp6\n\
         Description: DHCPv6 server appliance for semi-redundant deployments\n \
         xdhcp6d answers DHCPv6 clients (RFC 9915) directly and behind relays, with\n \
         addresses and delegated prefixes from split, unique or identical pools so that\n \
         several independent servers serve one network (RFC 6853). It answers on the\n \
         kernel UDP socket or on AF_XDP sockets steered by an XDP program, and keeps its\n \
         leases in a journal that is synced before a reply leaves.\n \
         .\n \
         This package installs the daemon, hardened systemd units for both datapaths,\n \
         an example configuration, man pages and bash, zsh and fish completions.\n",
        version = debian_version(),
        arch = cmd::output(Command::new("dpkg").arg("--print-architecture"))?.trim(),
    ))
}

/// usr/share/doc/xdhcp6/copyright in the machine-readable format.
fn copyright(root: &Path) -> Result<String> {
    let mit = fs::read_to_string(root.join("LICENSE-MIT")).context("reading LICENSE-MIT")?;
    let holder = mit
        .lines()
        .find_map(|line| line.strip_prefix("Copyright (c) "))
        .context("LICENSE-MIT names no copyright holder")?;
    let mit_text: String = mit
        .lines()
        .skip_while(|line| !line.starts_with("Permission"))
        .map(|line| {
            if line.trim().is_empty() {
                " .\n".to_owned()
            } else {
                format!(" {line}\n")
            }
        })
        .collect();
    Ok(format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: xdhcp6\n\
         Source: https://example.invalid/xdhcp6\n\
         \n\
         Files: *\n\
         Copyright: {holder}\n\
         License: MIT or Apache-2.0\n\
         \n\
         License: MIT\n{mit_text}\
         \n\
         License: Apache-2.0\n \
         On Debian systems, the full text of the Apache License, Version 2.0 is in\n \
         /usr/share/common-licenses/Apache-2.0.\n"
    ))
}

/// DEBIAN/md5sums: every regular file of the tree but DEBIAN/, as dpkg --verify reads it.
fn md5sums(tree: &Path) -> Result<String> {
    let files: Vec<PathBuf> = files_under(tree)?
        .into_iter()
        .filter(|path| !path.starts_with("DEBIAN"))
        .collect();
    let mut command = Command::new("md5sum");
    command.current_dir(tree).args(&files);
    cmd::output(&mut command)
}

/// The regular files under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in
            fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path.strip_prefix(dir)?.to_path_buf());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Bytes of the regular files under `tree`.
fn tree_size(tree: &Path) -> Result<u64> {
    let mut total = 0;
    for file in files_under(tree)? {
        total += fs::metadata(tree.join(file))?.len();
    }
    Ok(total)
}

fn mkdir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // dpkg-deb refuses group- or world-writable control folders; the others follow suit.
    let mut current = Some(dir);
    while let Some(folder) = current {
        if folder.ends_with("package") {
            break;
        }
        fs::set_permissions(folder, fs::Permissions::from_mode(0o755))?;
        current = folder.parent();
    }
    Ok(())
}

fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    mkdir(to.parent().context("a target without a folder")?)?;
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write(to: &Path, text: &str, mode: u32) -> Result<()> {
    mkdir(to.parent().context("a target without a folder")?)?;
    fs::write(to, text).with_context(|| format!("writing {}", to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The package test: install `deb`, check what it installed, verify the units, run the
/// installed configuration check, run the server as each unit would (user, capabilities)
/// without systemd, then remove and purge it and check that nothing is left.
pub fn check(deb: &Path) -> Result<()> {
    cmd::require_root("installing the package")?;
    xdhcp6_lab::cmd::require_tools(&[
        "dpkg",
        "systemd-analyze",
        "systemctl",
        "setpriv",
        "man",
        "bash",
        "getent",
        "ip",
        "strace",
    ])?;
    if package_installed()? {
        bail!(
            "{PACKAGE} is already installed here; the test installs and purges it: \
             `dpkg --purge {PACKAGE}` first"
        );
    }
    for path in ["/etc/xdhcp6", STATE, "/run/xdhcp6"] {
        ensure!(
            !Path::new(path).exists(),
            "{path} exists before the package is installed; the test would not see whether \
             purge removes it: remove it first"
        );
    }
    let user_before = getent_passwd()?;
    let result = install_check_purge(deb);
    if result.is_err() && package_installed().unwrap_or(true) {
        // Leave the machine as it was, so that the next run starts clean; the error says
        // what failed.
        eprintln!("package: the test failed; purging {PACKAGE}");
        if let Err(error) =
            xdhcp6_lab::cmd::capture(Command::new("dpkg").args(["--purge", PACKAGE]))
        {
            eprintln!("package: dpkg --purge {PACKAGE} failed too: {error:#}");
        }
    }
    result?;
    // The system user stays on purge (Debian's practice: files it owns may remain elsewhere).
    if user_before.is_none() {
        eprintln!("package: the {USER} system user stays after purge, by design");
    }
    Ok(())
}

fn install_check_purge(deb: &Path) -> Result<()> {
    step("dpkg -i", || {
        cmd::run(Command::new("dpkg").arg("-i").arg(deb))
    })?;
    let installed = Installed::list()?;
    step("installed files", || check_files(&installed))?;
    step("service user and permissions", check_user)?;
    step("systemd-analyze verify", verify_units)?;
    step("check-config on the installed example", || {
        let output = cmd::output(Command::new("/usr/sbin/xdhcp6d").args(["check-config", CONFIG]))?;
        ensure!(output.contains(": valid"), "check-config said: {output}");
        // The service user reads it too (mode 0640 root:xdhcp6).
        cmd::output(
            Command::new("setpriv")
                .args(["--reuid", USER, "--regid", USER, "--clear-groups"])
                .args([
                    "--inh-caps=-all",
                    "/usr/sbin/xdhcp6d",
                    "check-config",
                    CONFIG,
                ]),
        )?;
        Ok(())
    })?;
    step("man pages and completions", check_docs)?;
    step("enabled, then dpkg -i again (upgrade path)", || {
        // As an administrator would (systemctl makes the links without a running systemd);
        // purge must take them away again.
        cmd::run(Command::new("systemctl").args(["enable", "xdhcp6d.service"]))?;
        cmd::run(Command::new("dpkg").arg("-i").arg(deb))?;
        ensure!(
            Path::new(ENABLED_LINK).is_symlink(),
            "{ENABLED_LINK} is gone after the upgrade"
        );
        Ok(())
    })?;
    for (unit, datapath) in UNITS {
        step(
            &format!("{unit}: its user and capabilities answer a Solicit ({datapath})"),
            || run_as_unit(unit),
        )?;
    }
    step("dpkg -r keeps the configuration and the leases", || {
        cmd::run(Command::new("dpkg").args(["-r", PACKAGE]))?;
        ensure!(
            Path::new(CONFIG).is_file(),
            "{CONFIG} was removed by dpkg -r"
        );
        ensure!(
            Path::new(STATE).join("leases.journal").is_file(),
            "{STATE}/leases.journal was removed by dpkg -r"
        );
        ensure!(
            !Path::new("/usr/sbin/xdhcp6d").exists(),
            "/usr/sbin/xdhcp6d is still there after dpkg -r"
        );
        Ok(())
    })?;
    step("dpkg --purge leaves nothing", || {
        cmd::run(Command::new("dpkg").args(["--purge", PACKAGE]))?;
        ensure!(
            !package_installed()?,
            "dpkg still knows {PACKAGE} after purge"
        );
        let left: Vec<&str> = installed
            .files
            .iter()
            .chain(&installed.folders)
            .map(String::as_str)
            .chain(["/etc/xdhcp6", STATE, "/run/xdhcp6", ENABLED_LINK])
            .filter(|path| Path::new(path).exists() || Path::new(path).is_symlink())
            .collect();
        for folder in [
            "/etc/systemd/system",
            "/var/lib/systemd/deb-systemd-helper-enabled",
        ] {
            let output = cmd::output(Command::new("find").arg(folder).args(["-name", "xdhcp6d*"]))
                .unwrap_or_default();
            ensure!(output.trim().is_empty(), "left after purge:\n{output}");
        }
        ensure!(left.is_empty(), "left after purge: {left:?}");
        Ok(())
    })
}

fn step(name: &str, action: impl FnOnce() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    action().with_context(|| format!("package test: {name}"))?;
    eprintln!(
        "package: {name}: ok ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn package_installed() -> Result<bool> {
    let output =
        xdhcp6_lab::cmd::capture(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]))?;
    Ok(output.status.success()
        && String::from_utf8_lossy(&output.stdout).contains("install ok installed"))
}

/// What `dpkg -L xdhcp6` lists once it is installed.
struct Installed {
    /// Every file.
    files: Vec<String>,
    /// The folders only this package has (its own, not /usr or /etc).
    folders: Vec<String>,
}

impl Installed {
    fn list() -> Result<Self> {
        let list = cmd::output(Command::new("dpkg").args(["-L", PACKAGE]))?;
        let (mut files, mut folders) = (Vec::new(), Vec::new());
        for path in list.lines().filter(|line| line.starts_with('/')) {
            if !Path::new(path).is_dir() {
                files.push(path.to_owned());
            } else if path.split('/').any(|part| part == PACKAGE) {
                folders.push(path.to_owned());
            }
        }
        Ok(Self { files, folders })
    }
}

fn check_files(installed: &Installed) -> Result<()> {
    let listed: BTreeSet<&str> = installed.files.iter().map(String::as_str).collect();
    let mut expected = vec![
        "/usr/sbin/xdhcp6d".to_owned(),
        CONFIG.to_owned(),
        "/usr/share/doc/xdhcp6/copyright".to_owned(),
        "/usr/share/doc/xdhcp6/examples/reference.toml".to_owned(),
        "/usr/share/man/man8/xdhcp6d.8.gz".to_owned(),
        "/usr/share/man/man8/xdhcp6d-run.8.gz".to_owned(),
        "/usr/share/man/man8/xdhcp6d-check-config.8.gz".to_owned(),
    ];
    expected.extend(UNITS.map(|(unit, _)| format!("/{UNIT_DIR}/{unit}")));
    expected.extend(OPERATOR_DOCS.map(|page| format!("/usr/share/doc/xdhcp6/{page}")));
    expected.extend(DASHBOARDS.map(|(_, target)| format!("/{target}")));
    expected.extend(COMPLETIONS.map(|(_, _, target)| format!("/{target}")));
    for path in &expected {
        ensure!(listed.contains(path.as_str()), "dpkg -L lacks {path}");
        ensure!(
            Path::new(path).is_file(),
            "{path} is listed but not installed"
        );
    }
    let conffiles =
        cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", PACKAGE]))?;
    ensure!(
        conffiles.contains(CONFIG),
        "{CONFIG} is not a conffile: {conffiles:?}"
    );
    let mode = fs::metadata("/usr/sbin/xdhcp6d")?.permissions().mode() & 0o7777;
    ensure!(mode == 0o755, "/usr/sbin/xdhcp6d has mode {mode:o}");
    Ok(())
}

fn getent_passwd() -> Result<Option<String>> {
    let output = xdhcp6_lab::cmd::capture(Command::new("getent").args(["passwd", USER]))?;
    Ok(output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned()))
}

fn check_user() -> Result<()> {
    let entry = getent_passwd()?.context("the postinst created no xdhcp6 user")?;
    // name:x:uid:gid:gecos:home:shell
    let fields: Vec<&str> = entry.split(':').collect();
    ensure!(fields.len() == 7, "odd passwd entry {entry:?}");
    let uid: u32 = fields[2].parse()?;
    ensure!(uid < 1000, "{USER} is not a system user: {entry}");
    ensure!(fields[5] == STATE, "{USER}'s home is not {STATE}: {entry}");
    ensure!(
        fields[6].ends_with("nologin") || fields[6].ends_with("false"),
        "{USER} can log in: {entry}"
    );
    let state = fs::metadata(STATE)?;
    ensure!(state.uid() == uid, "{STATE} is not owned by {USER}");
    ensure!(
        state.permissions().mode() & 0o7777 == 0o750,
        "{STATE} has mode {:o}",
        state.permissions().mode() & 0o7777
    );
    let config = fs::metadata(CONFIG)?;
    ensure!(
        config.uid() == 0 && config.gid() == fields[3].parse::<u32>()?,
        "{CONFIG} is not root:{USER}"
    );
    ensure!(
        config.permissions().mode() & 0o7777 == 0o640,
        "{CONFIG} has mode {:o}",
        config.permissions().mode() & 0o7777
    );
    Ok(())
}

fn verify_units() -> Result<()> {
    let units: Vec<String> = UNITS
        .iter()
        .map(|(unit, _)| format!("/{UNIT_DIR}/{unit}"))
        .collect();
    let output =
        xdhcp6_lab::cmd::capture(Command::new("systemd-analyze").arg("verify").args(&units))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Any remark on our units (a missing binary or man page, an unknown key) fails; remarks
    // on units of the machine itself do not concern the package.
    let ours: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("xdhcp6"))
        .collect();
    ensure!(
        output.status.success() && ours.is_empty(),
        "systemd-analyze verify {units:?}:\n{text}"
    );
    for (unit, _) in UNITS {
        let security = xdhcp6_lab::cmd::capture(
            Command::new("systemd-analyze")
                .args(["security", "--offline=true", "--no-pager"])
                .arg(format!("/{UNIT_DIR}/{unit}")),
        )?;
        let text = String::from_utf8_lossy(&security.stdout);
        if let Some(line) = text.lines().find(|line| line.contains("Overall exposure")) {
            eprintln!("package: {unit}: {}", line.trim().trim_start_matches("→ "));
        }
    }
    Ok(())
}

fn check_docs() -> Result<()> {
    for page in [
        "xdhcp6d",
        "xdhcp6d-run",
        "xdhcp6d-check-config",
        "xdhcp6d-leases",
    ] {
        let path = cmd::output(Command::new("man").args(["-w", "8", page]))?;
        ensure!(
            path.trim() == format!("/usr/share/man/man8/{page}.8.gz"),
            "man -w 8 {page} found {path:?}"
        );
        let text = cmd::output(
            Command::new("man")
                .env("MANWIDTH", "100")
                .env("MAN_KEEP_FORMATTING", "0")
                .args(["-P", "cat", "8", page]),
        )?;
        ensure!(
            text.contains(page),
            "man 8 {page} does not name itself:\n{text}"
        );
    }
    let run = cmd::output(Command::new("man").args(["-P", "cat", "8", "xdhcp6d-run"]))?;
    ensure!(
        run.contains("--config") && run.contains("--datapath"),
        "man 8 xdhcp6d-run lacks the run options:\n{run}"
    );
    // Loading the bash completion defines the completion of xdhcp6d.
    let bash = cmd::output(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/xdhcp6d && complete -p xdhcp6d",
    ]))?;
    ensure!(bash.contains("xdhcp6d"), "bash completion: {bash:?}");
    for (shell, _, target) in COMPLETIONS {
        let text = fs::read_to_string(format!("/{target}"))?;
        ensure!(
            text.contains("check-config") && text.contains("datapath"),
            "the {shell} completion lacks the subcommands or flags"
        );
    }
    Ok(())
}

/// What a unit file says about how the server runs.
#[derive(Debug, Default)]
struct UnitSettings {
    user: String,
    group: String,
    exec_start: Vec<String>,
    ambient: Vec<String>,
    bounding: Vec<String>,
    no_new_privileges: bool,
    working_directory: Option<String>,
    /// `SystemCallFilter=`: system calls and @groups allowed.
    syscall_filter: Vec<String>,
    /// `RestrictAddressFamilies=`.
    address_families: Vec<String>,
}

impl UnitSettings {
    fn read(path: &str) -> Result<Self> {
        let text = fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let mut settings = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let words = || value.split_whitespace().map(str::to_owned);
            match key.trim() {
                "User" => settings.user = value.trim().to_owned(),
                "Group" => settings.group = value.trim().to_owned(),
                "ExecStart" => settings.exec_start = words().collect(),
                "AmbientCapabilities" => settings.ambient.extend(words()),
                "CapabilityBoundingSet" => settings.bounding.extend(words()),
                "NoNewPrivileges" => settings.no_new_privileges = value.trim() == "yes",
                "WorkingDirectory" => settings.working_directory = Some(value.trim().to_owned()),
                "SystemCallFilter" => {
                    ensure!(
                        !value.trim_start().starts_with('~'),
                        "{path}: the test reads allow lists only: {line}"
                    );
                    settings.syscall_filter.extend(words());
                }
                "RestrictAddressFamilies" => settings.address_families.extend(words()),
                _ => {}
            }
        }
        ensure!(
            !settings.user.is_empty() && !settings.exec_start.is_empty(),
            "{path} has no User= or ExecStart="
        );
        Ok(settings)
    }

    /// Every system call `SystemCallFilter=` allows, its @groups expanded by systemd itself.
    fn allowed_syscalls(&self) -> Result<BTreeSet<String>> {
        let mut allowed = BTreeSet::new();
        let mut pending: Vec<String> = self.syscall_filter.clone();
        let mut expanded = BTreeSet::new();
        while let Some(entry) = pending.pop() {
            if !entry.starts_with('@') {
                allowed.insert(entry);
                continue;
            }
            if !expanded.insert(entry.clone()) {
                continue;
            }
            let listing =
                cmd::output(Command::new("systemd-analyze").args(["syscall-filter", &entry]))?;
            for line in listing.lines().skip(1) {
                let word = line.trim();
                if word.is_empty() || word.starts_with('#') {
                    continue;
                }
                pending.push(word.to_owned());
            }
        }
        ensure!(!allowed.is_empty(), "SystemCallFilter= allows nothing");
        Ok(allowed)
    }

    /// The capabilities as setpriv spells them: `-all,+net_bind_service,...`.
    fn setpriv_caps(capabilities: &[String]) -> String {
        let mut text = "-all".to_owned();
        for capability in capabilities {
            text.push_str(",+");
            text.push_str(&capability.trim_start_matches("CAP_").to_lowercase());
        }
        text
    }

    /// The effective set /proc/PID/status should show, as a bit mask.
    fn mask(capabilities: &[String]) -> Result<u64> {
        let mut mask = 0;
        for capability in capabilities {
            let bit = match capability.as_str() {
                "CAP_NET_BIND_SERVICE" => 10,
                "CAP_NET_ADMIN" => 12,
                "CAP_NET_RAW" => 13,
                "CAP_IPC_LOCK" => 14,
                "CAP_PERFMON" => 38,
                "CAP_BPF" => 39,
                other => bail!("the test does not know the bit of {other}"),
            };
            mask |= 1u64 << bit;
        }
        Ok(mask)
    }
}

/// Runs the unit's ExecStart as its User= with its capabilities (setpriv, no systemd) in a
/// network namespace, on the installed configuration pointed at a veth; a client in another
/// namespace must get an Advertise. READY=1 and STOPPING=1 arrive on a notify socket, the
/// process holds the unit's capabilities and no more, and SIGTERM ends it with status 0.
fn run_as_unit(unit: &str) -> Result<()> {
    let settings = UnitSettings::read(&format!("/{UNIT_DIR}/{unit}"))?;
    ensure!(
        settings.ambient == settings.bounding,
        "{unit}: AmbientCapabilities= and CapabilityBoundingSet= differ"
    );
    let id = std::process::id();
    let (server_if, client_if) = ("xd6pkgs", "xd6pkgc");
    let server = Netns::create(&format!("xd6pkgsrv{id}"))?;
    let client = Netns::create(&format!("xd6pkgcli{id}"))?;
    for netns in [&server, &client] {
        netns.disable_dad()?;
    }
    netns::veth_pair(&server, server_if, &client, client_if)?;
    server.wait_for_link_local(server_if)?;
    client.wait_for_link_local(client_if)?;

    // The installed configuration, edited as an operator would: the lab's interface.
    let original = fs::read_to_string(CONFIG)?;
    ensure!(
        original.contains("interfaces = [\"eth1\"]"),
        "{CONFIG} no longer names eth1; update the package test"
    );
    fs::write(
        CONFIG,
        original.replace(
            "interfaces = [\"eth1\"]",
            &format!("interfaces = [\"{server_if}\"]"),
        ),
    )?;
    // RuntimeDirectory=xdhcp6 (the control socket's folder): systemd makes it for the
    // unit's user on start and removes it on stop.
    cmd::run(Command::new("install").args([
        "-d",
        "-m",
        "0750",
        "-o",
        &settings.user,
        "-g",
        &settings.user,
        RUNTIME,
    ]))?;
    let result = serve_and_solicit(&settings, &server, &client, client_if, unit);
    let _ = fs::remove_dir_all(RUNTIME);
    fs::write(CONFIG, original)?;
    result
}

fn serve_and_solicit(
    settings: &UnitSettings,
    server: &Netns,
    client: &Netns,
    client_if: &str,
    unit: &str,
) -> Result<()> {
    let scratch =
        std::env::temp_dir().join(format!("xdhcp6-package-{}-{unit}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch)?;
    fs::set_permissions(&scratch, fs::Permissions::from_mode(0o755))?;
    let notify_path = scratch.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path)?;
    // The service user must be able to connect to it, as to systemd's.
    fs::set_permissions(&notify_path, fs::Permissions::from_mode(0o666))?;
    notify.set_read_timeout(Some(Duration::from_millis(200)))?;

    let caps = UnitSettings::setpriv_caps(&settings.ambient);
    let traces = scratch.join("trace");
    let mut command = server.command("env");
    command
        .arg(format!("NOTIFY_SOCKET={}", notify_path.display()))
        // Every system call and socket family, per thread, to hold against the unit's
        // SystemCallFilter= and RestrictAddressFamilies=, which only systemd enforces.
        .args(["strace", "-f", "-qq", "-ff", "-o"])
        .arg(&traces)
        .arg("setpriv")
        .arg(format!("--reuid={}", settings.user))
        .arg(format!("--regid={}", settings.group))
        .arg("--clear-groups")
        .arg(format!("--inh-caps={caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .arg(format!(
            "--bounding-set={}",
            UnitSettings::setpriv_caps(&settings.bounding)
        ));
    if settings.no_new_privileges {
        command.arg("--no-new-privs");
    }
    command.args(&settings.exec_start);
    if let Some(dir) = &settings.working_directory {
        command.current_dir(dir);
    }
    let mut daemon = Process::start(command, &scratch.join("daemon.log"), "xdhcp6d")?;

    let ready = wait_for_notify(&notify, "READY=1", Duration::from_secs(30), &mut daemon)?;
    ensure!(
        ready.contains("STATUS="),
        "READY=1 came without a STATUS= line: {ready:?}"
    );
    let pid = child_of(daemon.id())?;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |key: &str| -> Result<String> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|value| value.trim().to_owned())
            .with_context(|| format!("no {key} in /proc/{pid}/status"))
    };
    let effective = u64::from_str_radix(&field("CapEff:")?, 16)?;
    let expected = UnitSettings::mask(&settings.ambient)?;
    ensure!(
        effective == expected,
        "{unit}: the server runs with capabilities {effective:#x}, the unit grants {expected:#x}"
    );
    let uid = field("Uid:")?;
    ensure!(
        !uid.split_whitespace().any(|id| id == "0"),
        "{unit}: the server runs with uid {uid}"
    );

    let answered = client.run(|| solicit(client_if))??;
    ensure!(
        answered,
        "{unit}: no Advertise within 10 s:\n{}",
        daemon.log_text()
    );
    cmd::output(Command::new("kill").args(["-TERM", &pid.to_string()]))?;
    wait_for_notify(&notify, "STOPPING=1", Duration::from_secs(10), &mut daemon)?;
    let exit = daemon.wait(Duration::from_secs(20))?;
    ensure!(
        exit.success(),
        "{unit}: the server exited with {exit}:\n{}",
        daemon.log_text()
    );
    check_traces(settings, &scratch, unit)?;
    let _ = fs::remove_dir_all(&scratch);
    Ok(())
}

/// The process whose parent is `parent` (the server under strace).
fn child_of(parent: u32) -> Result<u32> {
    for entry in fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let ppid = status
            .lines()
            .find_map(|line| line.strip_prefix("PPid:"))
            .and_then(|value| value.trim().parse::<u32>().ok());
        if ppid == Some(parent) {
            return Ok(pid);
        }
    }
    bail!("no child of pid {parent} (strace) found")
}

/// Holds what the server did under strace against the unit's SystemCallFilter= and
/// RestrictAddressFamilies=: the system calls from the exec of xdhcp6d on, in every thread.
fn check_traces(settings: &UnitSettings, scratch: &Path, unit: &str) -> Result<()> {
    let allowed = settings.allowed_syscalls()?;
    let mut used = BTreeSet::new();
    let mut families = BTreeSet::new();
    for entry in fs::read_dir(scratch)? {
        let path = entry?.path();
        if !path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("trace."))
        {
            continue;
        }
        let text = fs::read_to_string(&path)?;
        // The process file starts with setpriv's own calls, which systemd would make before
        // the filter applies: keep what follows the exec of the server.
        let lines: Vec<&str> = text.lines().collect();
        let start = lines
            .iter()
            .rposition(|line| line.starts_with("execve("))
            .unwrap_or(0);
        for line in &lines[start..] {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.is_empty() || !line[name.len()..].starts_with('(') {
                continue;
            }
            if name == "socket"
                && let Some(family) = line["socket(".len()..].split([',', ')']).next()
            {
                families.insert(family.trim().to_owned());
            }
            used.insert(name);
        }
    }
    ensure!(
        used.contains("recvmmsg") || used.contains("recvfrom") || used.contains("poll"),
        "{unit}: the traces show no receive at all: {used:?}"
    );
    let refused: Vec<&String> = used.difference(&allowed).collect();
    ensure!(
        refused.is_empty(),
        "{unit}: the server called {refused:?}, which SystemCallFilter= {:?} refuses",
        settings.syscall_filter
    );
    let unlisted: Vec<&String> = families
        .iter()
        .filter(|family| !settings.address_families.contains(family))
        .collect();
    ensure!(
        unlisted.is_empty(),
        "{unit}: the server opened {unlisted:?} sockets, which RestrictAddressFamilies= {:?} \
         refuses",
        settings.address_families
    );
    eprintln!(
        "package: {unit}: {} system calls, families {families:?}, all allowed by the unit",
        used.len()
    );
    Ok(())
}

/// Reads notifications until one contains `wanted`; fails if the daemon exits first.
fn wait_for_notify(
    socket: &UnixDatagram,
    wanted: &str,
    limit: Duration,
    daemon: &mut Process,
) -> Result<String> {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match socket.recv(&mut buf) {
            Ok(len) => {
                let message = String::from_utf8_lossy(&buf[..len]).into_owned();
                if message.lines().any(|line| line == wanted) {
                    return Ok(message);
                }
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(error) => return Err(error.into()),
        }
        if let Some(status) = daemon.try_wait()? {
            bail!(
                "the server exited with {status} before {wanted}:\n{}",
                daemon.log_text()
            );
        }
        ensure!(
            Instant::now() < deadline,
            "no {wanted} in {limit:?}:\n{}",
            daemon.log_text()
        );
    }
}

/// Sends a Solicit to ff02::1:2 on `interface` until an Advertise with its transaction id
/// comes back (true) or 10 s pass (false). Runs inside the client's namespace.
fn solicit(interface: &str) -> Result<bool> {
    let index = netns::if_index(interface)?;
    let socket = UdpSocket::bind("[::]:546")?;
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    let servers = SocketAddrV6::new("ff02::1:2".parse()?, 547, 0, index);
    let xid = [0x5a, 0x0c, 0x01];
    let mut message = vec![1u8];
    message.extend_from_slice(&xid);
    // Client Identifier: a DUID-LL of a made-up MAC.
    message.extend_from_slice(&[0, 1, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 0x42]);
    // IA_NA, IAID 1, T1 and T2 left to the server.
    message.extend_from_slice(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Elapsed Time 0.
    message.extend_from_slice(&[0, 8, 0, 2, 0, 0]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        socket.send_to(&message, servers)?;
        while let Ok((len, _)) = socket.recv_from(&mut buf) {
            // Advertise (2) with our transaction id.
            if len >= 4 && buf[0] == 2 && buf[1..4] == xid {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_spelled_for_setpriv_and_proc() {
        let caps = vec!["CAP_NET_BIND_SERVICE".to_owned(), "CAP_BPF".to_owned()];
        assert_eq!(
            UnitSettings::setpriv_caps(&caps),
            "-all,+net_bind_service,+bpf"
        );
        assert_eq!(UnitSettings::mask(&caps).unwrap(), (1 << 10) | (1 << 39));
        assert!(UnitSettings::mask(&["CAP_SYS_ADMIN".to_owned()]).is_err());
    }

    #[test]
    fn the_units_give_the_capabilities_each_datapath_needs() {
        let root = cmd::workspace_root();
        let read = |unit: &str| {
            UnitSettings::read(&root.join("dist/systemd").join(unit).display().to_string()).unwrap()
        };
        let udp = read("xdhcp6d.service");
        assert_eq!(udp.user, USER);
        assert_eq!(udp.ambient, ["CAP_NET_BIND_SERVICE"]);
        assert_eq!(udp.bounding, udp.ambient);
        assert!(udp.exec_start.iter().any(|word| word == CONFIG));
        let xdp = read("xdhcp6d-xdp.service");
        assert_eq!(xdp.user, USER);
        for capability in [
            "CAP_NET_BIND_SERVICE",
            "CAP_BPF",
            "CAP_PERFMON",
            "CAP_NET_ADMIN",
            "CAP_NET_RAW",
        ] {
            assert!(xdp.ambient.iter().any(|c| c == capability), "{capability}");
        }
        assert_eq!(xdp.bounding, xdp.ambient);
        assert!(
            xdp.exec_start
                .windows(2)
                .any(|w| w == ["--datapath", "xdp"])
        );
    }
}
