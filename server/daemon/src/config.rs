//! Reading the configuration file: the engine validates text, the daemon does the I/O.
//!
//! The engine's [`Config`] is built from text and never touches the file system, the clock or
//! a random source. Here the daemon reads the file, resolves a relative `duid-file` next to it,
//! and reads the server DUID kept there, or generates one from the clock and random bytes and
//! saves it on first start.

use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::time::{Duration, SystemTime};

use xdhcp6_engine::config::{Config, ConfigError, ServerDuid};

/// Reads, parses and validates the file at `path`, creating the server DUID file if the
/// configuration names one that does not exist yet.
pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError::new(&file, "", format!("cannot read: {error}")))?;
    from_text(path, &text)
}

/// [`load`] for the text of the file at `path`, already read (with whatever the caller added
/// to it, such as the runtime reservations).
pub fn from_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let mut config = Config::from_toml_str(text, &file)?;
    // A relative `duid-file` lives next to the configuration, not in the working directory.
    if let (Some(duid_file), Some(folder)) = (&mut config.server.duid_file, path.parent())
        && duid_file.is_relative()
    {
        *duid_file = folder.join(&*duid_file);
    }
    resolve_duid(&mut config, SystemTime::now(), entropy())?;
    Ok(config)
}

/// Fills the server DUID from `server.duid_file`, generating and saving it on first use.
///
/// `now` and `random` feed the generated DUID-LLT (see [`load_or_create_duid`]). Does nothing
/// when the DUID was given in the file.
pub fn resolve_duid(
    config: &mut Config,
    now: SystemTime,
    random: [u8; 6],
) -> Result<(), ConfigError> {
    if !config.server.duid.is_empty() {
        return Ok(());
    }
    let Some(path) = &config.server.duid_file else {
        return Ok(());
    };
    let duid = load_or_create_duid(path, now, random)?;
    config.set_server_duid(duid);
    Ok(())
}

/// Reads the DUID kept at `path`, or generates one from `now` and `random`, writes it there
/// (creating the folder) and returns it. The file holds colon-separated hex.
pub fn load_or_create_duid(
    path: &Path,
    now: SystemTime,
    random: [u8; 6],
) -> Result<ServerDuid, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            ServerDuid::from_text(&text).map_err(|problem| ConfigError::new(&file, "", problem))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let duid = ServerDuid::generate(now, random);
            save(path, &duid)
                .map_err(|e| ConfigError::new(&file, "", format!("cannot save DUID: {e}")))?;
            Ok(duid)
        }
        Err(error) => Err(ConfigError::new(
            &file,
            "",
            format!("cannot read DUID: {error}"),
        )),
    }
}

/// Writes through a temporary file and a rename so a crash never leaves half a DUID.
fn save(path: &Path, duid: &ServerDuid) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, format!("{}\n", duid.to_text()))?;
    std::fs::rename(&temporary, path)
}

/// Six bytes of randomness for a generated DUID, from the per-process random hash keys of std
/// (good enough for a locally administered MAC; no extra dependency).
fn entropy() -> [u8; 6] {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos(),
    );
    let bytes = hasher.finish().to_be_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]]
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xdhcp6d-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn hex(text: &str) -> Vec<u8> {
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn duid_generated_once_and_read_back() {
        let dir = temp_dir("duid");
        let path = dir.join("state/duid");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800 + 0x0102_0304);
        let first = load_or_create_duid(&path, now, [0x01, 2, 3, 4, 5, 6]).unwrap();
        // DUID-LLT, Ethernet, time since 2000, a locally administered unicast MAC.
        assert_eq!(first.as_bytes(), hex("0001 0001 01020304 020203040506"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "00:01:00:01:01:02:03:04:02:02:03:04:05:06\n"
        );
        let later = now + Duration::from_secs(3600);
        let second = load_or_create_duid(&path, later, [9; 6]).unwrap();
        assert_eq!(second, first);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn duid_file_is_resolved_into_the_config() {
        let dir = temp_dir("resolve");
        let path = dir.join("duid");
        let text = format!(
            "[server]\nduid-file = \"{}\"\n[[link]]\nname = \"a\"\ninterfaces = [\"eth1\"]\n",
            path.display()
        );
        let mut config = Config::from_toml_str(&text, "a.toml").unwrap();
        assert!(config.server.duid.is_empty());
        assert_eq!(config.server.duid_file.as_deref(), Some(path.as_path()));
        resolve_duid(&mut config, SystemTime::UNIX_EPOCH, [0; 6]).unwrap();
        let generated = config.server.duid.clone();
        assert_eq!(generated.len(), 14);

        let config_file = dir.join("a.toml");
        std::fs::write(&config_file, &text).unwrap();
        let loaded = load(&config_file).unwrap();
        assert_eq!(loaded.server.duid, generated);

        // A relative duid-file is found next to the configuration file.
        let relative = "[server]\nduid-file = \"duid\"\n";
        std::fs::write(&config_file, relative).unwrap();
        let loaded = load(&config_file).unwrap();
        assert_eq!(loaded.server.duid, generated);
        assert_eq!(loaded.server.duid_file, Some(path.clone()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn duid_file_garbage_is_an_error() {
        let dir = temp_dir("garbage");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("duid");
        std::fs::write(&path, "not hex\n").unwrap();
        let error = load_or_create_duid(&path, SystemTime::UNIX_EPOCH, [0; 6]).unwrap_err();
        assert_eq!(error.file(), path.display().to_string());
        assert!(error.problem().contains("not hex"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_is_an_error() {
        let error = load("/nonexistent/xdhcp6.toml").unwrap_err();
        assert_eq!(error.file(), "/nonexistent/xdhcp6.toml");
        assert!(error.problem().starts_with("cannot read"), "{error}");
    }
}
