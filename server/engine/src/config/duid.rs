//! The server DUID: generated once, kept in a file, read back on every start.
//!
//! The generator is pure (time and link-layer bytes are passed in); only
//! `ServerDuid::load_or_create` touches the file system.

use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::ConfigError;
use super::text::{parse_hex, to_colon_hex};

/// Seconds from the Unix epoch to 2000-01-01T00:00:00Z, the DUID-LLT epoch.
const DUID_EPOCH: u64 = 946_684_800;

/// Shortest and longest DUIDs (RFC 9915 §11.1: a 2-octet type and at most 128 octets).
const DUID_MIN_LEN: usize = 3;
const DUID_MAX_LEN: usize = 130;

/// A server DUID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerDuid(Vec<u8>);

/// A DUID-LLT (RFC 9915 §11.2): type 1, hardware type, time, link-layer address.
pub fn duid_llt(now: SystemTime, hw_type: u16, link_layer: &[u8]) -> Vec<u8> {
    // RFC 9915 §11.2, in substance:
    // The time value is the time that the DUID is generated, represented in seconds since
    // midnight (UTC), January 1, 2000, modulo 2^32.
    let since_unix = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let time = (since_unix.saturating_sub(DUID_EPOCH) & 0xffff_ffff) as u32;
    let mut duid = Vec::with_capacity(8 + link_layer.len());
    duid.extend_from_slice(&1u16.to_be_bytes());
    duid.extend_from_slice(&hw_type.to_be_bytes());
    duid.extend_from_slice(&time.to_be_bytes());
    duid.extend_from_slice(link_layer);
    duid
}

impl ServerDuid {
    /// A DUID-LLT over an Ethernet address made from `random`: a locally administered
    /// unicast MAC, since the appliance's NICs may be swapped while the DUID must stay.
    pub fn generate(now: SystemTime, random: [u8; 6]) -> ServerDuid {
        let mut mac = random;
        mac[0] = (mac[0] | 0x02) & !0x01;
        ServerDuid(duid_llt(now, 1, &mac))
    }

    /// A DUID from its bytes, checked for length (3..=130 octets).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ServerDuid, String> {
        if (DUID_MIN_LEN..=DUID_MAX_LEN).contains(&bytes.len()) {
            Ok(ServerDuid(bytes))
        } else {
            Err(format!(
                "a DUID is {DUID_MIN_LEN} to {DUID_MAX_LEN} octets, this one has {}",
                bytes.len()
            ))
        }
    }

    /// Reads the DUID kept at `path`, or generates one from `now` and `random`, writes it
    /// there (creating the folder) and returns it. The file holds colon-separated hex.
    pub fn load_or_create(
        path: &Path,
        now: SystemTime,
        random: [u8; 6],
    ) -> Result<ServerDuid, ConfigError> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => parse_hex(&text)
                .and_then(ServerDuid::from_bytes)
                .map_err(|problem| ConfigError::new(&file, "", problem)),
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

    /// The DUID bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The DUID bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Writes through a temporary file and a rename so a crash never leaves half a DUID.
fn save(path: &Path, duid: &ServerDuid) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, format!("{}\n", to_colon_hex(&duid.0)))?;
    std::fs::rename(&temporary, path)
}

/// Six bytes of randomness for `Config::load`, from the per-process random hash keys of std
/// (good enough for a locally administered MAC; no extra dependency).
pub(crate) fn entropy() -> [u8; 6] {
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
    use super::*;

    #[test]
    fn duid_llt_layout() {
        // 2000-01-01T00:00:10Z.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(DUID_EPOCH + 10);
        let duid = duid_llt(now, 1, &[0, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(
            duid,
            [0, 1, 0, 1, 0, 0, 0, 10, 0, 0x11, 0x22, 0x33, 0x44, 0x55]
        );
    }

    #[test]
    fn generated_mac_is_local_unicast() {
        let duid = ServerDuid::generate(SystemTime::UNIX_EPOCH, [0xff; 6]);
        assert_eq!(duid.as_bytes()[8], 0xfe);
        assert_eq!(duid.as_bytes().len(), 14);
    }

    #[test]
    fn length_checked() {
        assert!(ServerDuid::from_bytes(vec![0, 1]).is_err());
        assert!(ServerDuid::from_bytes(vec![0; 131]).is_err());
        assert!(ServerDuid::from_bytes(vec![0, 4, 1]).is_ok());
    }
}
