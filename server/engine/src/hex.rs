//! Hexadecimal bytes as operators write them: DUIDs, MACs, Remote-IDs and option bodies.
//!
//! The configuration, the control API, the journal's side files, `xdhcp6d query` and the Kea
//! migration all read and write bytes through these three functions, so one form written by
//! one of them is read back by every other.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Bytes from hex, either plain (`000100010a0b`) or octets separated by `:` or `-`
/// (`00:01:00:01`, `00-1a-2b`; one or two digits per octet). The error says what is wrong
/// with `text`, for the caller to prefix with the field it came from.
pub fn parse(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let not_hex = || format!("`{text}` is not hex");
    if text.contains([':', '-']) {
        return text
            .split([':', '-'])
            .map(|octet| {
                if octet.is_empty() || octet.len() > 2 {
                    return Err(format!(
                        "`{text}` is not hex: with separators, write one or two hex digits per \
                         octet (00:1a:...)"
                    ));
                }
                u8::from_str_radix(octet, 16).map_err(|_| not_hex())
            })
            .collect();
    }
    if !text.len().is_multiple_of(2) {
        return Err(format!("`{text}` is not hex: odd number of hex digits"));
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| match (digit(pair[0]), digit(pair[1])) {
            (Some(high), Some(low)) => Ok(high << 4 | low),
            _ => Err(not_hex()),
        })
        .collect()
}

/// Colon-separated lowercase octets (`00:03:00:01:...`), the form DUIDs and MACs are written
/// in everywhere; [`parse`] reads it back.
pub fn colon(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 3);
    for (index, byte) in bytes.iter().enumerate() {
        if index > 0 {
            text.push(':');
        }
        push_octet(&mut text, *byte);
    }
    text
}

/// Lowercase hex without separators (`000300...`); [`parse`] reads it back.
pub fn plain(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        push_octet(&mut text, *byte);
    }
    text
}

fn push_octet(text: &mut String, byte: u8) {
    text.push(char::from(DIGITS[usize::from(byte >> 4)]));
    text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
}

fn digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_written_forms_read_back_to_the_same_bytes() {
        let bytes = [0x00, 0x03, 0x00, 0x01, 0x0a, 0xbc, 0xff];
        assert_eq!(colon(&bytes), "00:03:00:01:0a:bc:ff");
        assert_eq!(plain(&bytes), "000300010abcff");
        assert_eq!(parse(&colon(&bytes)).unwrap(), bytes);
        assert_eq!(parse(&plain(&bytes)).unwrap(), bytes);
        assert_eq!(parse(" 00-03-0:1 ").unwrap(), [0, 3, 0, 1]);
        assert_eq!(parse("AbCd").unwrap(), [0xab, 0xcd]);
        assert_eq!(parse("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn bad_hex_is_refused_with_the_reason() {
        assert!(parse("abc").unwrap_err().contains("odd number"));
        assert!(parse("zz").unwrap_err().contains("not hex"));
        assert!(
            parse("00::01")
                .unwrap_err()
                .contains("one or two hex digits")
        );
        assert!(
            parse("001:02")
                .unwrap_err()
                .contains("one or two hex digits")
        );
        assert!(parse("+1").is_err(), "a sign is no hex digit");
        assert!(parse("é0").is_err(), "non-ASCII text never panics");
        assert!(parse("0é").is_err());
    }
}
