//! Parse and write errors.

use core::fmt;

/// Why untrusted bytes were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The buffer is shorter than the fixed message header.
    Truncated,
    /// An option header or body runs past the end of its enclosing buffer.
    OptionTruncated {
        /// The option code (0 when even the header was cut short).
        code: u16,
    },
    /// An option body has a length its definition does not allow.
    OptionLength {
        /// The option code.
        code: u16,
    },
    /// An option body has a value its definition does not allow.
    OptionValue {
        /// The option code.
        code: u16,
    },
    /// A DUID is shorter or longer than RFC 9915 §11.1 allows, or too short for its type.
    Duid,
    /// A domain name is not valid uncompressed wire format (RFC 1035 §3.1).
    Name,
    /// The message type does not use the layout that was asked for.
    MessageType(u8),
    /// A Relay message carries no OPTION_RELAY_MSG (RFC 9915 §9).
    MissingRelayMessage,
    /// A relay chain is nested deeper than [`crate::MAX_RELAY_HOPS`].
    RelayTooDeep,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated => f.write_str("message shorter than its header"),
            ParseError::OptionTruncated { code } => write!(f, "option {code} truncated"),
            ParseError::OptionLength { code } => write!(f, "option {code} has an invalid length"),
            ParseError::OptionValue { code } => write!(f, "option {code} has an invalid value"),
            ParseError::Duid => f.write_str("invalid DUID"),
            ParseError::Name => f.write_str("invalid domain name"),
            ParseError::MessageType(t) => write!(f, "message type {t} has another layout"),
            ParseError::MissingRelayMessage => {
                f.write_str("relay message without OPTION_RELAY_MSG")
            }
            ParseError::RelayTooDeep => f.write_str("relay chain nested too deep"),
        }
    }
}

impl core::error::Error for ParseError {}

/// Why the writer could not encode what it was asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteError {
    /// The caller's buffer has no room for the next bytes.
    BufferFull,
    /// More options are open at once than the fixed mark stack holds.
    TooDeep,
    /// `end_option` got a mark that is not the innermost open option, or `finish` found one open.
    Unbalanced,
    /// An option body grew past 65535 bytes.
    OptionTooLong,
    /// A domain name could not be encoded (empty or over-long label, name over 255 bytes).
    InvalidName,
    /// A value is outside what the option allows (for example a DUID longer than 130 bytes).
    InvalidValue,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteError::BufferFull => "buffer full",
            WriteError::TooDeep => "options nested too deep",
            WriteError::Unbalanced => "unbalanced begin_option/end_option",
            WriteError::OptionTooLong => "option longer than 65535 bytes",
            WriteError::InvalidName => "invalid domain name",
            WriteError::InvalidValue => "invalid option value",
        })
    }
}

impl core::error::Error for WriteError {}
