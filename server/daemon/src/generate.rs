//! `xdhcp6d generate`: the man pages and shell completions, written from the command-line
//! definition itself so they never drift from it (the package build calls it).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap_complete::Shell;

/// What `xdhcp6d generate` writes.
#[derive(Debug, clap::Subcommand)]
pub enum Generate {
    /// Man pages in section 8: xdhcp6d.8 and one per subcommand (xdhcp6d-run.8, ...), into DIR.
    Man {
        /// The folder to write into (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// The completion script for SHELL into DIR (xdhcp6d.bash, _xdhcp6d, xdhcp6d.fish, ...).
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_name = "SHELL")]
        shell: Shell,
        /// The folder to write into (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// The man page section of a system daemon.
pub const MAN_SECTION: &str = "8";

impl Generate {
    /// Writes what was asked for `command` (the daemon's `Cli::command()`), printing each path.
    pub fn write(&self, command: clap::Command) -> anyhow::Result<()> {
        let written = match self {
            Generate::Man { dir } => {
                create(dir)?;
                man_pages(command, dir)
                    .with_context(|| format!("writing the man pages into {}", dir.display()))?
            }
            Generate::Completions { shell, dir } => {
                create(dir)?;
                vec![completions(command, *shell, dir).with_context(|| {
                    format!("writing the {shell} completions into {}", dir.display())
                })?]
            }
        };
        let mut stdout = io::stdout().lock();
        for path in written {
            writeln!(stdout, "{}", path.display())?;
        }
        Ok(())
    }
}

fn create(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes one page for `command` and one for each of its visible subcommands, all in section
/// [`MAN_SECTION`]; returns their paths.
pub fn man_pages(command: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fn generate(command: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> io::Result<()> {
        for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
            generate(sub.clone(), dir, written)?;
        }
        let page = clap_mangen::Man::new(command)
            .section(MAN_SECTION)
            .manual("System Administration");
        written.push(page.generate_to(dir)?);
        Ok(())
    }
    let mut command = command.disable_help_subcommand(true);
    // Gives each subcommand its display name (`xdhcp6d-run`), which names its page.
    command.build();
    let mut written = Vec::new();
    generate(command, dir, &mut written)?;
    Ok(written)
}

/// Writes the completion script of `shell` for `command`, without its hidden subcommands (the
/// generators would offer them); returns its path.
pub fn completions(command: clap::Command, shell: Shell, dir: &Path) -> io::Result<PathBuf> {
    let name = command.get_name().to_owned();
    let mut command = without_hidden_subcommands(command);
    clap_complete::generate_to(shell, &mut command, name, dir)
}

/// `command` rebuilt with its visible subcommands only (clap has no way to remove one).
fn without_hidden_subcommands(command: clap::Command) -> clap::Command {
    // clap's names and versions are `&'static str` (without its `string` feature); this runs
    // once, in a short-lived process.
    let leak = |text: &str| -> &'static str { Box::leak(text.to_owned().into_boxed_str()) };
    let mut pruned = clap::Command::new(leak(command.get_name()))
        .args(command.get_arguments().cloned())
        .subcommands(
            command
                .get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .cloned(),
        )
        .propagate_version(command.is_propagate_version_set());
    if let Some(version) = command.get_version() {
        pruned = pruned.version(leak(version));
    }
    if let Some(about) = command.get_about() {
        pruned = pruned.about(about.clone());
    }
    pruned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("xdhcp6d")
            .about("A daemon")
            .subcommand(
                clap::Command::new("run")
                    .about("Run it")
                    .arg(clap::Arg::new("config").long("config")),
            )
            .subcommand(clap::Command::new("generate").hide(true))
    }

    #[test]
    fn one_page_per_visible_subcommand_in_section_8() {
        let dir = std::env::temp_dir().join(format!("xdhcp6-man-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut pages = man_pages(command(), &dir).unwrap();
        pages.sort();
        let names: Vec<_> = pages
            .iter()
            .map(|page| page.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["xdhcp6d-run.8", "xdhcp6d.8"]);
        let run = fs::read_to_string(&pages[0]).unwrap();
        assert!(run.starts_with(".ie"), "{run}");
        assert!(run.contains(".TH xdhcp6d-run 8"), "{run}");
        assert!(run.contains("config"), "{run}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn completions_name_the_subcommands_and_their_flags_but_not_the_hidden_ones() {
        let dir = std::env::temp_dir().join(format!("xdhcp6-completion-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for (shell, file, flag) in [
            (Shell::Bash, "xdhcp6d.bash", "--config"),
            (Shell::Zsh, "_xdhcp6d", "--config"),
            (Shell::Fish, "xdhcp6d.fish", "-l config"),
        ] {
            let path = completions(command(), shell, &dir).unwrap();
            assert_eq!(path, dir.join(file));
            let script = fs::read_to_string(&path).unwrap();
            assert!(script.contains("run"), "{shell}: {script}");
            assert!(script.contains(flag), "{shell}: {script}");
            assert!(!script.contains("generate"), "{shell}: {script}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
