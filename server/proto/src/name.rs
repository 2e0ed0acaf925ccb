//! Domain names in uncompressed DNS wire format (RFC 1035 §3.1, as RFC 9915 §10 requires).

use core::fmt;

use crate::error::ParseError;

/// Longest label (RFC 1035 §2.3.4).
pub(crate) const MAX_LABEL: usize = 63;
/// Longest name in wire format, length bytes and root included (RFC 1035 §2.3.4).
pub(crate) const MAX_NAME: usize = 255;

/// A validated domain name in wire format; possibly partial (no root label, RFC 4704 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DnsName<'a> {
    wire: &'a [u8],
}

/// Walks one name from the start of `buf`, returning its wire length.
///
/// With `partial` the name may end at the end of `buf` without a root label; otherwise it
/// must end with one. Compression pointers (top bits set) are rejected: RFC 9915 §10 says
/// names "MUST NOT be stored in compressed form".
fn scan_name(buf: &[u8], partial: bool) -> Result<usize, ParseError> {
    let mut pos = 0usize;
    loop {
        let Some(&len) = buf.get(pos) else {
            return if partial {
                Ok(pos)
            } else {
                Err(ParseError::Name)
            };
        };
        let len = usize::from(len);
        if len > MAX_LABEL {
            return Err(ParseError::Name);
        }
        pos += 1 + len;
        if pos > buf.len() || pos > MAX_NAME {
            return Err(ParseError::Name);
        }
        if len == 0 {
            return Ok(pos);
        }
    }
}

impl<'a> DnsName<'a> {
    /// Checks that `wire` is exactly one name, fully qualified or (with `partial`) not.
    pub fn new_checked(wire: &'a [u8], partial: bool) -> Result<Self, ParseError> {
        let len = scan_name(wire, partial)?;
        if len != wire.len() {
            return Err(ParseError::Name);
        }
        Ok(DnsName { wire })
    }

    /// The name in wire format.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.wire
    }

    /// True when the name ends with the root label.
    #[inline]
    pub fn is_fully_qualified(&self) -> bool {
        self.wire.last() == Some(&0)
    }

    /// The labels, root excluded.
    #[inline]
    pub fn labels(&self) -> Labels<'a> {
        Labels { rest: self.wire }
    }
}

impl fmt::Display for DnsName<'_> {
    /// Dotted text without a trailing dot; bytes outside `[A-Za-z0-9-_]` as `\DDD` (RFC 4343 §2.1).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for label in self.labels() {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            for &b in label {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                    fmt::Write::write_char(f, char::from(b))?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
        }
        if first && self.is_fully_qualified() {
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// Iterator over the labels of a [`DnsName`].
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        if len == 0 {
            self.rest = &[];
            return None;
        }
        let Some((label, rest)) = tail.split_at_checked(usize::from(len)) else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        Some(label)
    }
}

/// A validated sequence of fully qualified names (OPTION_DOMAIN_LIST, RFC 3646 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DomainList<'a> {
    wire: &'a [u8],
}

impl<'a> DomainList<'a> {
    /// Checks that `wire` is zero or more fully qualified names back to back.
    pub fn new_checked(wire: &'a [u8]) -> Result<Self, ParseError> {
        let mut rest = wire;
        while !rest.is_empty() {
            let len = scan_name(rest, false)?;
            rest = rest.get(len..).unwrap_or_default();
        }
        Ok(DomainList { wire })
    }

    /// The names in wire format, back to back.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.wire
    }

    /// The names.
    #[inline]
    pub fn iter(&self) -> DomainListIter<'a> {
        DomainListIter { rest: self.wire }
    }
}

impl<'a> IntoIterator for DomainList<'a> {
    type Item = DnsName<'a>;
    type IntoIter = DomainListIter<'a>;

    fn into_iter(self) -> DomainListIter<'a> {
        self.iter()
    }
}

/// Iterator over the names of a [`DomainList`].
#[derive(Debug, Clone)]
pub struct DomainListIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for DomainListIter<'a> {
    type Item = DnsName<'a>;

    fn next(&mut self) -> Option<DnsName<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let Ok(len) = scan_name(self.rest, false) else {
            self.rest = &[];
            return None;
        };
        let (wire, rest) = self.rest.split_at_checked(len)?;
        self.rest = rest;
        Some(DnsName { wire })
    }
}

/// Encodes dotted `text` into `out` in wire format and returns the bytes used.
///
/// A trailing dot is ignored; `fully_qualified` decides whether the root label is written.
/// Escapes are not interpreted. Errors on an empty or over-long label, or a name over 255 bytes.
pub(crate) fn encode_name(
    text: &str,
    fully_qualified: bool,
    out: &mut [u8],
) -> Result<usize, NameError> {
    let text = text.strip_suffix('.').unwrap_or(text).as_bytes();
    // Wire form: each label's length byte stands where the text has a dot, plus one in front.
    let len = if text.is_empty() { 0 } else { text.len() + 1 };
    let total = len + usize::from(fully_qualified);
    if total > MAX_NAME {
        return Err(NameError::Invalid);
    }
    let dst = out.get_mut(..total).ok_or(NameError::Full)?;
    if let Some(body) = dst.get_mut(1..=text.len()) {
        body.copy_from_slice(text);
    }
    let mut len_at = 0usize;
    let mut label = 0usize;
    for (i, &b) in text.iter().enumerate() {
        if b == b'.' {
            set_label_len(dst, len_at, label)?;
            len_at = i + 1;
            label = 0;
        } else {
            label += 1;
        }
    }
    if !text.is_empty() {
        set_label_len(dst, len_at, label)?;
    }
    if fully_qualified && let Some(root) = dst.last_mut() {
        *root = 0;
    }
    Ok(total)
}

/// Stores a label length, refusing empty and over-long labels (RFC 1035 §2.3.4).
#[inline]
fn set_label_len(dst: &mut [u8], at: usize, len: usize) -> Result<(), NameError> {
    if len == 0 || len > MAX_LABEL {
        return Err(NameError::Invalid);
    }
    *dst.get_mut(at).ok_or(NameError::Invalid)? = len as u8;
    Ok(())
}

/// Why [`encode_name`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameError {
    /// The text is not a valid name.
    Invalid,
    /// The output buffer is too small.
    Full,
}

#[cfg(test)]
mod tests {
    use std::string::ToString;

    use super::*;

    #[test]
    fn names() {
        let w = b"\x07example\x03com\x00";
        let n = DnsName::new_checked(w, false).unwrap();
        assert!(n.is_fully_qualified());
        assert_eq!(n.to_string(), "example.com");
        assert_eq!(n.labels().count(), 2);
        let p = DnsName::new_checked(b"\x04host", true).unwrap();
        assert!(!p.is_fully_qualified());
        assert_eq!(p.to_string(), "host");
        assert!(DnsName::new_checked(b"\x04host", false).is_err());
        assert!(DnsName::new_checked(b"\xc0\x0c", true).is_err());
        assert!(DnsName::new_checked(b"\x00\x00", true).is_err());
        assert_eq!(
            DnsName::new_checked(b"\x00", false).unwrap().to_string(),
            "."
        );
        assert_eq!(
            DnsName::new_checked(b"\x01a\x01.\x00", false)
                .unwrap()
                .to_string(),
            "a.\\046"
        );
    }

    #[test]
    fn long_names() {
        let mut buf = [0u8; 300];
        let label = "a".repeat(63);
        let ok = [label.as_str(); 3].join(".") + "." + &"b".repeat(61);
        assert_eq!(encode_name(&ok, true, &mut buf), Ok(255));
        assert!(DnsName::new_checked(&buf[..255], false).is_ok());
        let too_long = ok.clone() + "b";
        assert_eq!(
            encode_name(&too_long, true, &mut buf),
            Err(NameError::Invalid)
        );
        assert_eq!(
            encode_name(&"a".repeat(64), true, &mut buf),
            Err(NameError::Invalid)
        );
        assert_eq!(encode_name("a..b", true, &mut buf), Err(NameError::Invalid));
        assert_eq!(
            encode_name("example.com", true, &mut buf[..5]),
            Err(NameError::Full)
        );
    }

    #[test]
    fn domain_list() {
        let w = b"\x07example\x03com\x00\x03lan\x00";
        let l = DomainList::new_checked(w).unwrap();
        let v: std::vec::Vec<_> = l.iter().map(|n| n.to_string()).collect();
        assert_eq!(v, ["example.com", "lan"]);
        assert!(DomainList::new_checked(b"\x03lan").is_err());
        assert!(DomainList::new_checked(b"").is_ok());
    }
}
