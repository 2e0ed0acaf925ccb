//! DHCP Unique Identifier view (RFC 9915 §11).

use crate::codes::DuidType;
use crate::error::ParseError;

/// A validated DUID: 2-byte type plus 1..=128 bytes (RFC 9915 §11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duid<'a> {
    bytes: &'a [u8],
}

/// A DUID decoded by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DuidKind<'a> {
    /// DUID-LLT (RFC 9915 §11.2).
    Llt {
        /// Hardware type (IANA ARP hardware type).
        hw_type: u16,
        /// Seconds since midnight 2000-01-01 UTC, modulo 2^32.
        time: u32,
        /// Link-layer address.
        ll_addr: &'a [u8],
    },
    /// DUID-EN (RFC 9915 §11.3).
    En {
        /// Vendor's IANA enterprise number.
        enterprise: u32,
        /// Vendor-assigned identifier.
        id: &'a [u8],
    },
    /// DUID-LL (RFC 9915 §11.4).
    Ll {
        /// Hardware type.
        hw_type: u16,
        /// Link-layer address.
        ll_addr: &'a [u8],
    },
    /// DUID-UUID (RFC 9915 §11.5).
    Uuid([u8; 16]),
    /// A DUID type this crate does not decode.
    Unknown {
        /// The type code.
        duid_type: u16,
        /// The bytes after the type code.
        data: &'a [u8],
    },
}

impl<'a> Duid<'a> {
    /// Shortest DUID: type code plus one byte.
    pub const MIN_LEN: usize = 3;
    /// Longest DUID: "no more than 128 octets long (not including the type code)" (RFC 9915 §11.1).
    pub const MAX_LEN: usize = 130;

    /// Checks length bounds, and for the known types the fixed fields, so accessors cannot fail.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            return Err(ParseError::Duid);
        }
        let duid = Duid { bytes };
        let ok = match duid.duid_type() {
            DuidType::Llt => bytes.len() >= 8,
            DuidType::En => bytes.len() >= 6,
            DuidType::Ll => bytes.len() >= 4,
            // RFC 9915 §11.5: the UUID is exactly 16 octets.
            DuidType::Uuid => bytes.len() == 18,
            DuidType::Unknown(_) => true,
        };
        if !ok {
            return Err(ParseError::Duid);
        }
        Ok(duid)
    }

    /// The whole DUID, type code included (what a lease table keys on).
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The DUID type code.
    #[inline]
    pub fn duid_type(&self) -> DuidType {
        match self.bytes.first_chunk::<2>() {
            Some(t) => DuidType::from(u16::from_be_bytes(*t)),
            None => DuidType::Unknown(0),
        }
    }

    /// The DUID decoded by type.
    pub fn kind(&self) -> DuidKind<'a> {
        let rest = self.bytes.get(2..).unwrap_or_default();
        match self.duid_type() {
            DuidType::Llt => {
                if let Some((h, ll_addr)) = rest.split_first_chunk::<6>() {
                    return DuidKind::Llt {
                        hw_type: u16::from_be_bytes([h[0], h[1]]),
                        time: u32::from_be_bytes([h[2], h[3], h[4], h[5]]),
                        ll_addr,
                    };
                }
            }
            DuidType::En => {
                if let Some((h, id)) = rest.split_first_chunk::<4>() {
                    return DuidKind::En {
                        enterprise: u32::from_be_bytes(*h),
                        id,
                    };
                }
            }
            DuidType::Ll => {
                if let Some((h, ll_addr)) = rest.split_first_chunk::<2>() {
                    return DuidKind::Ll {
                        hw_type: u16::from_be_bytes(*h),
                        ll_addr,
                    };
                }
            }
            DuidType::Uuid => {
                if let Ok(u) = <[u8; 16]>::try_from(rest) {
                    return DuidKind::Uuid(u);
                }
            }
            DuidType::Unknown(_) => {}
        }
        DuidKind::Unknown {
            duid_type: self.duid_type().into(),
            data: rest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llt() {
        let b = [
            0, 1, 0, 1, 0x2a, 0x3b, 0x4c, 0x5d, 0, 0x11, 0x22, 0x33, 0x44, 0x55,
        ];
        let d = Duid::new_checked(&b).unwrap();
        assert_eq!(d.duid_type(), DuidType::Llt);
        assert_eq!(
            d.kind(),
            DuidKind::Llt {
                hw_type: 1,
                time: 0x2a3b4c5d,
                ll_addr: &b[8..]
            }
        );
    }

    #[test]
    fn en_ll_uuid_unknown() {
        let en = [0, 2, 0, 0, 0x0d, 0xe9, 1, 2];
        assert_eq!(
            Duid::new_checked(&en).unwrap().kind(),
            DuidKind::En {
                enterprise: 3561,
                id: &[1, 2]
            }
        );
        let ll = [0, 3, 0, 1, 1, 2, 3, 4, 5, 6];
        assert_eq!(
            Duid::new_checked(&ll).unwrap().kind(),
            DuidKind::Ll {
                hw_type: 1,
                ll_addr: &[1, 2, 3, 4, 5, 6]
            }
        );
        let mut uuid = [7u8; 18];
        uuid[0] = 0;
        uuid[1] = 4;
        assert_eq!(
            Duid::new_checked(&uuid).unwrap().kind(),
            DuidKind::Uuid([7; 16])
        );
        assert_eq!(Duid::new_checked(&uuid[..17]), Err(ParseError::Duid));
        let unk = [0, 9, 1];
        assert_eq!(
            Duid::new_checked(&unk).unwrap().kind(),
            DuidKind::Unknown {
                duid_type: 9,
                data: &[1]
            }
        );
    }

    #[test]
    fn bounds() {
        assert!(Duid::new_checked(&[0, 9]).is_err());
        assert!(Duid::new_checked(&[0u8; 131]).is_err());
        assert!(Duid::new_checked(&[0u8; 130]).is_ok());
        assert!(Duid::new_checked(&[0, 1, 0, 1, 0, 0, 0]).is_err());
        assert!(Duid::new_checked(&[0, 2, 0, 0, 0]).is_err());
    }
}
