//! The server DUID: generated once, kept in a file, read back on every start.
//!
//! Pure: time and random bytes are passed in, and the file's text is read and written by the
//! caller (the daemon keeps it next to its configuration).

use std::time::{Duration, SystemTime};

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

    /// A DUID from the text of a DUID file: hex, plain or colon-separated, surrounding
    /// whitespace ignored.
    pub fn from_text(text: &str) -> Result<ServerDuid, String> {
        parse_hex(text).and_then(ServerDuid::from_bytes)
    }

    /// The DUID as colon-separated hex, the form [`ServerDuid::from_text`] reads back.
    pub fn to_text(&self) -> String {
        to_colon_hex(&self.0)
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
    fn text_round_trip() {
        let duid = ServerDuid::generate(SystemTime::UNIX_EPOCH, [1, 2, 3, 4, 5, 6]);
        assert_eq!(
            ServerDuid::from_text(&format!("{}\n", duid.to_text())),
            Ok(duid)
        );
        assert!(ServerDuid::from_text("not hex").is_err());
    }

    #[test]
    fn length_checked() {
        assert!(ServerDuid::from_bytes(vec![0, 1]).is_err());
        assert!(ServerDuid::from_bytes(vec![0; 131]).is_err());
        assert!(ServerDuid::from_bytes(vec![0, 4, 1]).is_ok());
    }
}
