//! Small text formats of the configuration: hex strings, durations, DNS names.

pub(crate) use crate::hex::{colon as to_colon_hex, parse as parse_hex, plain as to_hex};

/// Seconds from `"90"`, `"30s"`, `"30m"`, `"1h"`, `"2d"`, `"1w"`, `"1h30m"` or `"infinite"`.
///
/// `"infinite"` is 0xffffffff, the value RFC 9915 §7.7 reserves for an infinite lifetime.
pub(crate) fn parse_duration(text: &str) -> Result<u32, String> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("infinite") || trimmed.eq_ignore_ascii_case("infinity") {
        return Ok(u32::MAX);
    }
    let bad = || {
        format!(
            "`{text}` is not a duration: use seconds (3600) or a number with a unit \
             (30s, 30m, 1h, 2d, 1w, 1h30m) or \"infinite\""
        )
    };
    if trimmed.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in trimmed.chars() {
        if let Some(digit) = c.to_digit(10) {
            let value = number
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(digit)));
            number = Some(value.ok_or_else(too_long(text))?);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let value = number.take().ok_or_else(bad)?;
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(too_long(text))?;
    }
    if let Some(seconds) = number {
        total = total.checked_add(seconds).ok_or_else(too_long(text))?;
    }
    seconds_to_u32(total).map_err(|_| too_long(text)())
}

fn too_long(text: &str) -> impl Fn() -> String + '_ {
    move || format!("`{text}` is longer than 4294967295 seconds (write \"infinite\" for no limit)")
}

/// Seconds as the 32-bit value DHCPv6 carries.
pub(crate) fn seconds_to_u32(seconds: u64) -> Result<u32, String> {
    u32::try_from(seconds).map_err(|_| {
        format!("{seconds} seconds is longer than 4294967295 (write \"infinite\" for no limit)")
    })
}

/// Appends `name` in DNS wire format (RFC 1035 §3.1: length-prefixed labels, a zero octet at the
/// end, no compression; RFC 9915 §10 forbids compression in DHCPv6).
pub(crate) fn encode_dns_name(name: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err(format!("`{name}` is not a domain name"));
    }
    let start = out.len();
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(format!("`{name}` has an empty label"));
        }
        // RFC 1035 §2.3.4, in substance:
        // labels          63 octets or less
        if label.len() > 63 {
            return Err(format!("`{name}` has a label longer than 63 octets"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "`{name}` is not a domain name: labels may hold letters, digits, `-` and `_`"
            ));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    // RFC 1035 §2.3.4, in substance:
    // names           255 octets or less
    if out.len() - start > 255 {
        return Err(format!("`{name}` is longer than 255 octets in wire format"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_with_and_without_colons() {
        assert_eq!(parse_hex("00:01:0a:FF").unwrap(), [0, 1, 10, 255]);
        assert_eq!(parse_hex("00010aff").unwrap(), [0, 1, 10, 255]);
        assert_eq!(
            parse_hex("0:1").unwrap(),
            [0, 1],
            "one digit per octet, as MACs are often written"
        );
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert_eq!(to_colon_hex(&[0, 1, 0xab]), "00:01:ab");
        assert_eq!(to_hex(&[0, 1, 0xab]), "0001ab");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("30s").unwrap(), 30);
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("2d").unwrap(), 172_800);
        assert_eq!(parse_duration("1w").unwrap(), 604_800);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("infinite").unwrap(), u32::MAX);
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("100000d").is_err());
    }

    #[test]
    fn dns_names_in_wire_format() {
        let mut out = Vec::new();
        encode_dns_name("example.com.", &mut out).unwrap();
        assert_eq!(out, b"\x07example\x03com\x00");
        assert!(encode_dns_name("a..b", &mut Vec::new()).is_err());
        assert!(encode_dns_name(&"a".repeat(64), &mut Vec::new()).is_err());
        assert!(encode_dns_name("", &mut Vec::new()).is_err());
        assert!(encode_dns_name("bad name", &mut Vec::new()).is_err());
    }
}
