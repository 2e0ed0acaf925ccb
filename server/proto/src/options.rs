//! Options: the borrowing iterator, the typed [`DhcpOption`] views and their re-encoding.

use core::net::Ipv6Addr;

use crate::codes::{MessageType, OptionCode, QueryType, StatusCode};
use crate::duid::Duid;
use crate::error::{ParseError, WriteError};
use crate::message::Packet;
use crate::name::{DnsName, DomainList};
use crate::writer::{MAX_OPTION_DEPTH, MessageWriter};

/// One option as it is on the wire: code and body, not yet typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawOption<'a> {
    /// The option code.
    pub code: u16,
    /// The option body (the bytes after the 4-byte header).
    pub data: &'a [u8],
}

impl<'a> RawOption<'a> {
    /// Types the body according to the code.
    #[inline]
    pub fn parse(&self) -> Result<DhcpOption<'a>, ParseError> {
        DhcpOption::parse(self.code, self.data)
    }
}

/// Splits the first option off `buf` (RFC 9915 §21.1 layout: code, length, body).
#[inline]
fn split_option(buf: &[u8]) -> Result<(RawOption<'_>, &[u8]), ParseError> {
    let Some((hdr, rest)) = buf.split_first_chunk::<4>() else {
        return Err(ParseError::OptionTruncated { code: 0 });
    };
    let code = u16::from_be_bytes([hdr[0], hdr[1]]);
    let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    match rest.split_at_checked(len) {
        Some((data, rest)) => Ok((RawOption { code, data }, rest)),
        None => Err(ParseError::OptionTruncated { code }),
    }
}

/// Borrowing iterator over untyped options; stops after the first framing error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawOptions<'a> {
    rest: &'a [u8],
}

impl<'a> RawOptions<'a> {
    /// Iterates the options in `buf`, an options area.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        RawOptions { rest: buf }
    }

    /// The bytes not yet iterated.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for RawOptions<'a> {
    type Item = Result<RawOption<'a>, ParseError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match split_option(self.rest) {
            Ok((opt, rest)) => {
                self.rest = rest;
                Some(Ok(opt))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Borrowing iterator over typed options; stops after the first error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Options<'a> {
    raw: RawOptions<'a>,
}

impl<'a> Options<'a> {
    /// Iterates the options in `buf`, an options area.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Options {
            raw: RawOptions::new(buf),
        }
    }

    /// The bytes not yet iterated.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw.rest
    }

    /// The same options, untyped.
    #[inline]
    pub fn raw(&self) -> RawOptions<'a> {
        self.raw.clone()
    }

    /// The body of the first option with `code`, skipping others without typing them.
    #[inline]
    pub fn find_raw(&self, code: OptionCode) -> Result<Option<&'a [u8]>, ParseError> {
        let code = u16::from(code);
        let mut rest = self.raw.rest;
        while !rest.is_empty() {
            let (opt, tail) = split_option(rest)?;
            if opt.code == code {
                return Ok(Some(opt.data));
            }
            rest = tail;
        }
        Ok(None)
    }

    /// The first option with `code`, typed; other options are skipped without typing them.
    #[inline]
    pub fn find(&self, code: OptionCode) -> Result<Option<DhcpOption<'a>>, ParseError> {
        match self.find_raw(code)? {
            Some(data) => DhcpOption::parse(code.into(), data).map(Some),
            None => Ok(None),
        }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<DhcpOption<'a>, ParseError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let raw = match self.raw.next()? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        let opt = raw.parse();
        if opt.is_err() {
            self.raw.rest = &[];
        }
        Some(opt)
    }
}

/// Splits a fixed header off an option body or reports the option's length as wrong.
#[inline]
fn head<const N: usize>(data: &[u8], code: u16) -> Result<(&[u8; N], &[u8]), ParseError> {
    data.split_first_chunk::<N>()
        .ok_or(ParseError::OptionLength { code })
}

/// Reads an option body that must be exactly `N` bytes.
#[inline]
fn exact<const N: usize>(data: &[u8], code: u16) -> Result<[u8; N], ParseError> {
    <[u8; N]>::try_from(data).map_err(|_| ParseError::OptionLength { code })
}

#[inline]
fn be32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

macro_rules! ia_view {
    ($(#[$m:meta])* $name:ident, $code:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name<'a> {
            hdr: &'a [u8; 12],
            opts: &'a [u8],
        }

        impl<'a> $name<'a> {
            /// Checks the fixed 12-byte header.
            pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
                let (hdr, opts) = head::<12>(data, $code)?;
                Ok($name { hdr, opts })
            }

            /// IAID, the client's identifier for this IA.
            #[inline]
            pub fn iaid(&self) -> u32 {
                be32([self.hdr[0], self.hdr[1], self.hdr[2], self.hdr[3]])
            }

            /// T1 in seconds.
            #[inline]
            pub fn t1(&self) -> u32 {
                be32([self.hdr[4], self.hdr[5], self.hdr[6], self.hdr[7]])
            }

            /// T2 in seconds.
            #[inline]
            pub fn t2(&self) -> u32 {
                be32([self.hdr[8], self.hdr[9], self.hdr[10], self.hdr[11]])
            }

            /// The IA's own options.
            #[inline]
            pub fn options(&self) -> Options<'a> {
                Options::new(self.opts)
            }
        }
    };
}

ia_view!(
    /// OPTION_IA_NA body: IAID, T1, T2, options (RFC 9915 §21.4).
    IaNa,
    3
);
ia_view!(
    /// OPTION_IA_PD body: IAID, T1, T2, options (RFC 9915 §21.21).
    IaPd,
    25
);

/// OPTION_IA_TA body: IAID, options (RFC 8415 §21.5; deprecated by RFC 9915, parse only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IaTa<'a> {
    hdr: &'a [u8; 4],
    opts: &'a [u8],
}

impl<'a> IaTa<'a> {
    /// Checks the fixed 4-byte header.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        let (hdr, opts) = head::<4>(data, 4)?;
        Ok(IaTa { hdr, opts })
    }

    /// IAID.
    #[inline]
    pub fn iaid(&self) -> u32 {
        be32(*self.hdr)
    }

    /// The IA's own options.
    #[inline]
    pub fn options(&self) -> Options<'a> {
        Options::new(self.opts)
    }
}

/// OPTION_IAADDR body: address, lifetimes, options (RFC 9915 §21.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IaAddress<'a> {
    hdr: &'a [u8; 24],
    opts: &'a [u8],
}

impl<'a> IaAddress<'a> {
    /// Checks the fixed 24-byte header.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        let (hdr, opts) = head::<24>(data, 5)?;
        Ok(IaAddress { hdr, opts })
    }

    /// The address.
    #[inline]
    pub fn addr(&self) -> Ipv6Addr {
        let (a, _) = self
            .hdr
            .split_first_chunk::<16>()
            .unwrap_or((&[0; 16], &[]));
        Ipv6Addr::from(*a)
    }

    /// Preferred lifetime in seconds.
    #[inline]
    pub fn preferred_lifetime(&self) -> u32 {
        let h = self.hdr;
        be32([h[16], h[17], h[18], h[19]])
    }

    /// Valid lifetime in seconds.
    #[inline]
    pub fn valid_lifetime(&self) -> u32 {
        let h = self.hdr;
        be32([h[20], h[21], h[22], h[23]])
    }

    /// The address's own options (a Status Code, typically).
    #[inline]
    pub fn options(&self) -> Options<'a> {
        Options::new(self.opts)
    }
}

/// OPTION_IAPREFIX body: lifetimes, prefix length, prefix, options (RFC 9915 §21.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IaPrefix<'a> {
    hdr: &'a [u8; 25],
    opts: &'a [u8],
}

impl<'a> IaPrefix<'a> {
    /// Checks the fixed 25-byte header.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        let (hdr, opts) = head::<25>(data, 26)?;
        Ok(IaPrefix { hdr, opts })
    }

    /// Preferred lifetime in seconds.
    #[inline]
    pub fn preferred_lifetime(&self) -> u32 {
        let h = self.hdr;
        be32([h[0], h[1], h[2], h[3]])
    }

    /// Valid lifetime in seconds.
    #[inline]
    pub fn valid_lifetime(&self) -> u32 {
        let h = self.hdr;
        be32([h[4], h[5], h[6], h[7]])
    }

    /// Prefix length in bits (a client may send any value as a hint).
    #[inline]
    pub fn prefix_len(&self) -> u8 {
        self.hdr[8]
    }

    /// The prefix.
    #[inline]
    pub fn prefix(&self) -> Ipv6Addr {
        let (_, p) = self.hdr.split_last_chunk::<16>().unwrap_or((&[], &[0; 16]));
        Ipv6Addr::from(*p)
    }

    /// The prefix's own options (Status Code, Prefix Exclude).
    #[inline]
    pub fn options(&self) -> Options<'a> {
        Options::new(self.opts)
    }
}

/// OPTION_AUTH body (RFC 9915 §21.11); parse only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Auth<'a> {
    hdr: &'a [u8; 11],
    info: &'a [u8],
}

impl<'a> Auth<'a> {
    /// Checks the fixed 11-byte header.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        let (hdr, info) = head::<11>(data, 11)?;
        Ok(Auth { hdr, info })
    }

    /// Authentication protocol.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.hdr[0]
    }

    /// Authentication algorithm.
    #[inline]
    pub fn algorithm(&self) -> u8 {
        self.hdr[1]
    }

    /// Replay detection method.
    #[inline]
    pub fn rdm(&self) -> u8 {
        self.hdr[2]
    }

    /// Replay detection value.
    #[inline]
    pub fn replay_detection(&self) -> u64 {
        let (_, r) = self.hdr.split_last_chunk::<8>().unwrap_or((&[], &[0; 8]));
        u64::from_be_bytes(*r)
    }

    /// Authentication information.
    #[inline]
    pub fn info(&self) -> &'a [u8] {
        self.info
    }
}

/// OPTION_LQ_QUERY body: query type, link address, query options (RFC 5007 §4.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LqQuery<'a> {
    hdr: &'a [u8; 17],
    opts: &'a [u8],
}

impl<'a> LqQuery<'a> {
    /// Checks the fixed 17-byte header.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        let (hdr, opts) = head::<17>(data, 44)?;
        Ok(LqQuery { hdr, opts })
    }

    /// The query type.
    #[inline]
    pub fn query_type(&self) -> QueryType {
        QueryType::from(self.hdr[0])
    }

    /// The link the query is about (`::` for any link).
    #[inline]
    pub fn link_address(&self) -> Ipv6Addr {
        let (_, a) = self.hdr.split_last_chunk::<16>().unwrap_or((&[], &[0; 16]));
        Ipv6Addr::from(*a)
    }

    /// The query options (IA Address, Client ID, Relay ID, Remote ID, ORO).
    #[inline]
    pub fn options(&self) -> Options<'a> {
        Options::new(self.opts)
    }
}

/// OPTION_ORO body: requested option codes (RFC 9915 §21.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Oro<'a> {
    data: &'a [u8],
}

impl<'a> Oro<'a> {
    /// The requested codes in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = OptionCode> + 'a {
        self.data
            .as_chunks::<2>()
            .0
            .iter()
            .map(|c| OptionCode::from(u16::from_be_bytes(*c)))
    }

    /// True when `code` was requested.
    #[inline]
    pub fn contains(&self, code: OptionCode) -> bool {
        let raw = u16::from(code).to_be_bytes();
        self.data.as_chunks::<2>().0.contains(&raw)
    }

    /// Number of codes.
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len() / 2
    }

    /// True when no code was requested.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The body bytes.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }
}

/// OPTION_CLIENT_ARCH_TYPE body: architecture types (RFC 5970 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArchTypes<'a> {
    data: &'a [u8],
}

impl<'a> ArchTypes<'a> {
    /// The architecture types in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        self.data
            .as_chunks::<2>()
            .0
            .iter()
            .map(|c| u16::from_be_bytes(*c))
    }

    /// The body bytes.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }
}

/// A list of IPv6 addresses (DNS servers, SNTP servers, LQ client links).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressList<'a> {
    data: &'a [u8],
}

impl<'a> AddressList<'a> {
    fn new_checked(data: &'a [u8], code: u16) -> Result<Self, ParseError> {
        if !data.len().is_multiple_of(16) {
            return Err(ParseError::OptionLength { code });
        }
        Ok(AddressList { data })
    }

    /// The addresses in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = Ipv6Addr> + 'a {
        self.data
            .as_chunks::<16>()
            .0
            .iter()
            .map(|a| Ipv6Addr::from(*a))
    }

    /// Number of addresses.
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len() / 16
    }

    /// True when the list is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The body bytes.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }
}

/// A validated list of 16-bit-length-prefixed opaque items (User Class, Vendor Class, Boot File Parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpaqueList<'a> {
    data: &'a [u8],
}

impl<'a> OpaqueList<'a> {
    fn new_checked(data: &'a [u8], code: u16) -> Result<Self, ParseError> {
        let mut rest = data;
        while let Some((len, tail)) = rest.split_first_chunk::<2>() {
            let len = usize::from(u16::from_be_bytes(*len));
            rest = tail.get(len..).ok_or(ParseError::OptionLength { code })?;
        }
        if !rest.is_empty() {
            return Err(ParseError::OptionLength { code });
        }
        Ok(OpaqueList { data })
    }

    /// The items in order.
    #[inline]
    pub fn iter(&self) -> OpaqueListIter<'a> {
        OpaqueListIter { rest: self.data }
    }

    /// The body bytes.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }
}

impl<'a> IntoIterator for OpaqueList<'a> {
    type Item = &'a [u8];
    type IntoIter = OpaqueListIter<'a>;

    fn into_iter(self) -> OpaqueListIter<'a> {
        self.iter()
    }
}

/// Iterator over an [`OpaqueList`].
#[derive(Debug, Clone)]
pub struct OpaqueListIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for OpaqueListIter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, tail) = self.rest.split_first_chunk::<2>()?;
        let Some((item, rest)) = tail.split_at_checked(usize::from(u16::from_be_bytes(*len)))
        else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        Some(item)
    }
}

/// Validated vendor sub-options: 16-bit code, 16-bit length, data (RFC 9915 §21.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VendorSubOptions<'a> {
    data: &'a [u8],
}

impl<'a> VendorSubOptions<'a> {
    fn new_checked(data: &'a [u8], code: u16) -> Result<Self, ParseError> {
        let mut rest = data;
        while !rest.is_empty() {
            let (_, tail) = split_option(rest).map_err(|_| ParseError::OptionLength { code })?;
            rest = tail;
        }
        Ok(VendorSubOptions { data })
    }

    /// The sub-options as (code, data) in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = RawOption<'a>> + 'a {
        RawOptions::new(self.data).map_while(Result::ok)
    }

    /// The body bytes.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }
}

/// One NTP server sub-option (RFC 5908 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NtpSuboption<'a> {
    /// NTP_SUBOPTION_SRV_ADDR (1).
    ServerAddress(Ipv6Addr),
    /// NTP_SUBOPTION_MC_ADDR (2).
    MulticastAddress(Ipv6Addr),
    /// NTP_SUBOPTION_SRV_FQDN (3).
    ServerFqdn(DnsName<'a>),
    /// A sub-option this crate does not type.
    Unknown {
        /// Sub-option code.
        code: u16,
        /// Sub-option data.
        data: &'a [u8],
    },
}

impl<'a> NtpSuboption<'a> {
    fn parse(raw: RawOption<'a>) -> Result<Self, ParseError> {
        let err = ParseError::OptionValue { code: 56 };
        Ok(match raw.code {
            1 => NtpSuboption::ServerAddress(Ipv6Addr::from(exact::<16>(raw.data, 56)?)),
            2 => NtpSuboption::MulticastAddress(Ipv6Addr::from(exact::<16>(raw.data, 56)?)),
            3 => NtpSuboption::ServerFqdn(DnsName::new_checked(raw.data, false).map_err(|_| err)?),
            code => NtpSuboption::Unknown {
                code,
                data: raw.data,
            },
        })
    }
}

/// OPTION_NTP_SERVER body: validated sub-options (RFC 5908 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NtpServer<'a> {
    data: &'a [u8],
}

impl<'a> NtpServer<'a> {
    fn new_checked(data: &'a [u8]) -> Result<Self, ParseError> {
        for raw in RawOptions::new(data) {
            let raw = raw.map_err(|_| ParseError::OptionLength { code: 56 })?;
            NtpSuboption::parse(raw)?;
        }
        Ok(NtpServer { data })
    }

    /// The sub-options in order.
    #[inline]
    pub fn suboptions(&self) -> NtpSuboptions<'a> {
        NtpSuboptions {
            raw: RawOptions::new(self.data),
        }
    }

    /// The body bytes.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }
}

/// Iterator over [`NtpSuboption`]s.
#[derive(Debug, Clone)]
pub struct NtpSuboptions<'a> {
    raw: RawOptions<'a>,
}

impl<'a> Iterator for NtpSuboptions<'a> {
    type Item = NtpSuboption<'a>;

    fn next(&mut self) -> Option<NtpSuboption<'a>> {
        self.raw
            .next()?
            .ok()
            .and_then(|r| NtpSuboption::parse(r).ok())
    }
}

/// A typed option view; every length was checked when it was built.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DhcpOption<'a> {
    /// OPTION_CLIENTID (1).
    ClientId(Duid<'a>),
    /// OPTION_SERVERID (2).
    ServerId(Duid<'a>),
    /// OPTION_IA_NA (3).
    IaNa(IaNa<'a>),
    /// OPTION_IA_TA (4), parse only.
    IaTa(IaTa<'a>),
    /// OPTION_IAADDR (5).
    IaAddr(IaAddress<'a>),
    /// OPTION_ORO (6).
    Oro(Oro<'a>),
    /// OPTION_PREFERENCE (7).
    Preference(u8),
    /// OPTION_ELAPSED_TIME (8), hundredths of a second.
    ElapsedTime(u16),
    /// OPTION_RELAY_MSG (9): the relayed message, to parse with [`Packet::parse`].
    RelayMsg(&'a [u8]),
    /// OPTION_AUTH (11), parse only.
    Auth(Auth<'a>),
    /// OPTION_UNICAST (12), parse only.
    Unicast(Ipv6Addr),
    /// OPTION_STATUS_CODE (13).
    StatusCode {
        /// The status.
        code: StatusCode,
        /// UTF-8 text for a human (not checked).
        message: &'a [u8],
    },
    /// OPTION_RAPID_COMMIT (14).
    RapidCommit,
    /// OPTION_USER_CLASS (15).
    UserClass(OpaqueList<'a>),
    /// OPTION_VENDOR_CLASS (16).
    VendorClass {
        /// IANA enterprise number.
        enterprise: u32,
        /// Vendor class data items.
        data: OpaqueList<'a>,
    },
    /// OPTION_VENDOR_OPTS (17).
    VendorOpts {
        /// IANA enterprise number.
        enterprise: u32,
        /// Vendor sub-options.
        options: VendorSubOptions<'a>,
    },
    /// OPTION_INTERFACE_ID (18).
    InterfaceId(&'a [u8]),
    /// OPTION_RECONF_MSG (19).
    ReconfMsg(MessageType),
    /// OPTION_RECONF_ACCEPT (20).
    ReconfAccept,
    /// OPTION_DNS_SERVERS (23, RFC 3646).
    DnsServers(AddressList<'a>),
    /// OPTION_DOMAIN_LIST (24, RFC 3646).
    DomainList(DomainList<'a>),
    /// OPTION_IA_PD (25).
    IaPd(IaPd<'a>),
    /// OPTION_IAPREFIX (26).
    IaPrefix(IaPrefix<'a>),
    /// OPTION_SNTP_SERVERS (31, RFC 4075).
    SntpServers(AddressList<'a>),
    /// OPTION_INFORMATION_REFRESH_TIME (32), seconds.
    InformationRefreshTime(u32),
    /// OPTION_REMOTE_ID (37, RFC 4649).
    RemoteId {
        /// IANA enterprise number of the relay vendor.
        enterprise: u32,
        /// The remote identifier.
        id: &'a [u8],
    },
    /// OPTION_SUBSCRIBER_ID (38, RFC 4580).
    SubscriberId(&'a [u8]),
    /// OPTION_CLIENT_FQDN (39, RFC 4704).
    ClientFqdn {
        /// Flags: S (0x01), O (0x02), N (0x04).
        flags: u8,
        /// The name, possibly partial or empty.
        name: DnsName<'a>,
    },
    /// OPTION_LQ_QUERY (44, RFC 5007).
    LqQuery(LqQuery<'a>),
    /// OPTION_CLIENT_DATA (45, RFC 5007): the client's options.
    ClientData(Options<'a>),
    /// OPTION_CLT_TIME (46, RFC 5007), seconds since last client contact.
    CltTime(u32),
    /// OPTION_LQ_RELAY_DATA (47, RFC 5007).
    LqRelayData {
        /// Peer address of the relay closest to the client.
        peer_address: Ipv6Addr,
        /// The last Relay-forward message received, to parse with [`Packet::parse`].
        message: &'a [u8],
    },
    /// OPTION_LQ_CLIENT_LINK (48, RFC 5007).
    LqClientLink(AddressList<'a>),
    /// OPTION_RELAY_ID (53, RFC 5460).
    RelayId(Duid<'a>),
    /// OPTION_NTP_SERVER (56, RFC 5908).
    NtpServer(NtpServer<'a>),
    /// OPTION_BOOTFILE_URL (59, RFC 5970).
    BootFileUrl(&'a [u8]),
    /// OPTION_BOOTFILE_PARAM (60, RFC 5970).
    BootFileParams(OpaqueList<'a>),
    /// OPTION_CLIENT_ARCH_TYPE (61, RFC 5970).
    ClientArchTypes(ArchTypes<'a>),
    /// OPTION_NII (62, RFC 5970).
    Nii {
        /// Interface type.
        nii_type: u8,
        /// Major revision.
        major: u8,
        /// Minor revision.
        minor: u8,
    },
    /// OPTION_PD_EXCLUDE (67, RFC 6603 §4.2).
    PdExclude {
        /// Length of the excluded prefix.
        prefix_len: u8,
        /// The excluded prefix's bits after the delegated prefix, left-aligned.
        subnet_id: &'a [u8],
    },
    /// OPTION_CLIENT_LINKLAYER_ADDR (79, RFC 6939).
    ClientLinkLayerAddr {
        /// Hardware type.
        hw_type: u16,
        /// Link-layer address.
        addr: &'a [u8],
    },
    /// OPTION_SOL_MAX_RT (82), seconds.
    SolMaxRt(u32),
    /// OPTION_INF_MAX_RT (83), seconds.
    InfMaxRt(u32),
    /// OPTION_RELAY_SOURCE_PORT (135, RFC 8357).
    RelaySourcePort(u16),
    /// Any other option, passed through untyped.
    Unknown {
        /// Option code.
        code: u16,
        /// Option body.
        data: &'a [u8],
    },
}

impl<'a> DhcpOption<'a> {
    /// Types an option body; the single door for option bytes.
    #[inline]
    pub fn parse(code: u16, data: &'a [u8]) -> Result<Self, ParseError> {
        // Hot/cold split: the options of every Solicit/Request/Renew are typed here, inline,
        // so the caller's `match` on the result folds into this one; the rest out of line.
        match code {
            1 => Ok(DhcpOption::ClientId(Duid::new_checked(data)?)),
            2 => Ok(DhcpOption::ServerId(Duid::new_checked(data)?)),
            3 => Ok(DhcpOption::IaNa(IaNa::new_checked(data)?)),
            5 => Ok(DhcpOption::IaAddr(IaAddress::new_checked(data)?)),
            8 => Ok(DhcpOption::ElapsedTime(u16::from_be_bytes(exact(
                data, code,
            )?))),
            9 => Ok(DhcpOption::RelayMsg(data)),
            18 => Ok(DhcpOption::InterfaceId(data)),
            25 => Ok(DhcpOption::IaPd(IaPd::new_checked(data)?)),
            26 => Ok(DhcpOption::IaPrefix(IaPrefix::new_checked(data)?)),
            6 if data.len().is_multiple_of(2) => Ok(DhcpOption::Oro(Oro { data })),
            39 => match data.split_first() {
                Some((flags, name)) => Ok(DhcpOption::ClientFqdn {
                    flags: *flags,
                    name: DnsName::new_checked(name, true)?,
                }),
                None => Err(ParseError::OptionLength { code }),
            },
            _ => Self::parse_cold(code, data),
        }
    }

    /// Types any option; [`Self::parse`] sends the less common codes here.
    #[inline(never)]
    fn parse_cold(code: u16, data: &'a [u8]) -> Result<Self, ParseError> {
        let len_err = ParseError::OptionLength { code };
        // Matching the raw code skips a second table lookup through `OptionCode`; each arm
        // names its option through the variant it builds.
        Ok(match code {
            1 => DhcpOption::ClientId(Duid::new_checked(data)?),
            2 => DhcpOption::ServerId(Duid::new_checked(data)?),
            3 => DhcpOption::IaNa(IaNa::new_checked(data)?),
            4 => DhcpOption::IaTa(IaTa::new_checked(data)?),
            5 => DhcpOption::IaAddr(IaAddress::new_checked(data)?),
            6 => {
                if !data.len().is_multiple_of(2) {
                    return Err(len_err);
                }
                DhcpOption::Oro(Oro { data })
            }
            7 => DhcpOption::Preference(u8::from_be_bytes(exact(data, code)?)),
            8 => DhcpOption::ElapsedTime(u16::from_be_bytes(exact(data, code)?)),
            9 => DhcpOption::RelayMsg(data),
            11 => DhcpOption::Auth(Auth::new_checked(data)?),
            12 => DhcpOption::Unicast(Ipv6Addr::from(exact::<16>(data, code)?)),
            13 => {
                let (c, message) = head::<2>(data, code)?;
                DhcpOption::StatusCode {
                    code: StatusCode::from(u16::from_be_bytes(*c)),
                    message,
                }
            }
            14 => {
                exact::<0>(data, code)?;
                DhcpOption::RapidCommit
            }
            15 => DhcpOption::UserClass(OpaqueList::new_checked(data, code)?),
            16 => {
                let (e, rest) = head::<4>(data, code)?;
                DhcpOption::VendorClass {
                    enterprise: be32(*e),
                    data: OpaqueList::new_checked(rest, code)?,
                }
            }
            17 => {
                let (e, rest) = head::<4>(data, code)?;
                DhcpOption::VendorOpts {
                    enterprise: be32(*e),
                    options: VendorSubOptions::new_checked(rest, code)?,
                }
            }
            18 => DhcpOption::InterfaceId(data),
            19 => DhcpOption::ReconfMsg(MessageType::from(u8::from_be_bytes(exact(data, code)?))),
            20 => {
                exact::<0>(data, code)?;
                DhcpOption::ReconfAccept
            }
            23 => DhcpOption::DnsServers(AddressList::new_checked(data, code)?),
            24 => DhcpOption::DomainList(DomainList::new_checked(data)?),
            25 => DhcpOption::IaPd(IaPd::new_checked(data)?),
            26 => DhcpOption::IaPrefix(IaPrefix::new_checked(data)?),
            31 => DhcpOption::SntpServers(AddressList::new_checked(data, code)?),
            32 => DhcpOption::InformationRefreshTime(be32(exact(data, code)?)),
            37 => {
                let (e, id) = head::<4>(data, code)?;
                DhcpOption::RemoteId {
                    enterprise: be32(*e),
                    id,
                }
            }
            38 => DhcpOption::SubscriberId(data),
            39 => {
                let (flags, name) = data.split_first().ok_or(len_err)?;
                // RFC 4704 §4.1: the name may be partial (no root label) or empty.
                DhcpOption::ClientFqdn {
                    flags: *flags,
                    name: DnsName::new_checked(name, true)?,
                }
            }
            44 => DhcpOption::LqQuery(LqQuery::new_checked(data)?),
            45 => DhcpOption::ClientData(Options::new(data)),
            46 => DhcpOption::CltTime(be32(exact(data, code)?)),
            47 => {
                let (peer, message) = head::<16>(data, code)?;
                DhcpOption::LqRelayData {
                    peer_address: Ipv6Addr::from(*peer),
                    message,
                }
            }
            48 => DhcpOption::LqClientLink(AddressList::new_checked(data, code)?),
            53 => DhcpOption::RelayId(Duid::new_checked(data)?),
            56 => DhcpOption::NtpServer(NtpServer::new_checked(data)?),
            59 => DhcpOption::BootFileUrl(data),
            60 => DhcpOption::BootFileParams(OpaqueList::new_checked(data, code)?),
            61 => {
                if !data.len().is_multiple_of(2) {
                    return Err(len_err);
                }
                DhcpOption::ClientArchTypes(ArchTypes { data })
            }
            62 => {
                let [nii_type, major, minor] = exact::<3>(data, code)?;
                DhcpOption::Nii {
                    nii_type,
                    major,
                    minor,
                }
            }
            67 => {
                let (prefix_len, subnet_id) = data.split_first().ok_or(len_err)?;
                // RFC 6603 §4.2: the IPv6 subnet ID is at least one octet.
                if subnet_id.is_empty() {
                    return Err(len_err);
                }
                DhcpOption::PdExclude {
                    prefix_len: *prefix_len,
                    subnet_id,
                }
            }
            79 => {
                let (hw, addr) = head::<2>(data, code)?;
                DhcpOption::ClientLinkLayerAddr {
                    hw_type: u16::from_be_bytes(*hw),
                    addr,
                }
            }
            82 => DhcpOption::SolMaxRt(be32(exact(data, code)?)),
            83 => DhcpOption::InfMaxRt(be32(exact(data, code)?)),
            135 => DhcpOption::RelaySourcePort(u16::from_be_bytes(exact(data, code)?)),
            _ => DhcpOption::Unknown { code, data },
        })
    }

    /// The option code.
    pub fn code(&self) -> OptionCode {
        match self {
            DhcpOption::ClientId(_) => OptionCode::ClientId,
            DhcpOption::ServerId(_) => OptionCode::ServerId,
            DhcpOption::IaNa(_) => OptionCode::IaNa,
            DhcpOption::IaTa(_) => OptionCode::IaTa,
            DhcpOption::IaAddr(_) => OptionCode::IaAddr,
            DhcpOption::Oro(_) => OptionCode::Oro,
            DhcpOption::Preference(_) => OptionCode::Preference,
            DhcpOption::ElapsedTime(_) => OptionCode::ElapsedTime,
            DhcpOption::RelayMsg(_) => OptionCode::RelayMsg,
            DhcpOption::Auth(_) => OptionCode::Auth,
            DhcpOption::Unicast(_) => OptionCode::Unicast,
            DhcpOption::StatusCode { .. } => OptionCode::StatusCode,
            DhcpOption::RapidCommit => OptionCode::RapidCommit,
            DhcpOption::UserClass(_) => OptionCode::UserClass,
            DhcpOption::VendorClass { .. } => OptionCode::VendorClass,
            DhcpOption::VendorOpts { .. } => OptionCode::VendorOpts,
            DhcpOption::InterfaceId(_) => OptionCode::InterfaceId,
            DhcpOption::ReconfMsg(_) => OptionCode::ReconfMsg,
            DhcpOption::ReconfAccept => OptionCode::ReconfAccept,
            DhcpOption::DnsServers(_) => OptionCode::DnsServers,
            DhcpOption::DomainList(_) => OptionCode::DomainList,
            DhcpOption::IaPd(_) => OptionCode::IaPd,
            DhcpOption::IaPrefix(_) => OptionCode::IaPrefix,
            DhcpOption::SntpServers(_) => OptionCode::SntpServers,
            DhcpOption::InformationRefreshTime(_) => OptionCode::InformationRefreshTime,
            DhcpOption::RemoteId { .. } => OptionCode::RemoteId,
            DhcpOption::SubscriberId(_) => OptionCode::SubscriberId,
            DhcpOption::ClientFqdn { .. } => OptionCode::ClientFqdn,
            DhcpOption::LqQuery(_) => OptionCode::LqQuery,
            DhcpOption::ClientData(_) => OptionCode::ClientData,
            DhcpOption::CltTime(_) => OptionCode::CltTime,
            DhcpOption::LqRelayData { .. } => OptionCode::LqRelayData,
            DhcpOption::LqClientLink(_) => OptionCode::LqClientLink,
            DhcpOption::RelayId(_) => OptionCode::RelayId,
            DhcpOption::NtpServer(_) => OptionCode::NtpServer,
            DhcpOption::BootFileUrl(_) => OptionCode::BootFileUrl,
            DhcpOption::BootFileParams(_) => OptionCode::BootFileParams,
            DhcpOption::ClientArchTypes(_) => OptionCode::ClientArchType,
            DhcpOption::Nii { .. } => OptionCode::Nii,
            DhcpOption::PdExclude { .. } => OptionCode::PdExclude,
            DhcpOption::ClientLinkLayerAddr { .. } => OptionCode::ClientLinkLayerAddr,
            DhcpOption::SolMaxRt(_) => OptionCode::SolMaxRt,
            DhcpOption::InfMaxRt(_) => OptionCode::InfMaxRt,
            DhcpOption::RelaySourcePort(_) => OptionCode::RelaySourcePort,
            DhcpOption::Unknown { code, .. } => OptionCode::from(*code),
        }
    }

    /// The two body pieces of an option that nests others, to copy it verbatim.
    fn nested_body(&self) -> Option<(&'a [u8], &'a [u8])> {
        match self {
            DhcpOption::IaNa(v) => Some((v.hdr.as_slice(), v.opts)),
            DhcpOption::IaPd(v) => Some((v.hdr.as_slice(), v.opts)),
            DhcpOption::IaTa(v) => Some((v.hdr.as_slice(), v.opts)),
            DhcpOption::IaAddr(v) => Some((v.hdr.as_slice(), v.opts)),
            DhcpOption::IaPrefix(v) => Some((v.hdr.as_slice(), v.opts)),
            DhcpOption::LqQuery(v) => Some((v.hdr.as_slice(), v.opts)),
            DhcpOption::ClientData(o) => Some((&[], o.as_bytes())),
            DhcpOption::RelayMsg(m) => Some((&[], m)),
            _ => None,
        }
    }

    /// Re-encodes this view through the writer's typed helpers.
    ///
    /// Nested options are re-encoded too, as deep as the writer's mark stack allows
    /// ([`MAX_OPTION_DEPTH`]); deeper ones, and relayed messages that do not parse, are copied
    /// verbatim, so the output always equals the parsed input.
    pub fn write(&self, w: &mut MessageWriter<'_>) -> Result<(), WriteError> {
        let checkpoint = w.checkpoint();
        match self.write_typed(w) {
            Err(WriteError::TooDeep) => {
                w.rollback(checkpoint);
                match self.nested_body() {
                    Some((hdr, rest)) => w.raw_parts(self.code().into(), hdr, rest),
                    None => Err(WriteError::TooDeep),
                }
            }
            other => other,
        }
    }

    fn write_typed(&self, w: &mut MessageWriter<'_>) -> Result<(), WriteError> {
        match *self {
            DhcpOption::ClientId(d) => w.client_id(d.as_bytes()),
            DhcpOption::ServerId(d) => w.server_id(d.as_bytes()),
            DhcpOption::RelayId(d) => w.relay_id(d.as_bytes()),
            DhcpOption::IaNa(ia) => {
                let m = w.begin_ia_na(ia.iaid(), ia.t1(), ia.t2())?;
                write_options(w, ia.opts)?;
                w.end_option(m)
            }
            DhcpOption::IaPd(ia) => {
                let m = w.begin_ia_pd(ia.iaid(), ia.t1(), ia.t2())?;
                write_options(w, ia.opts)?;
                w.end_option(m)
            }
            DhcpOption::IaTa(ia) => {
                let m = w.begin_option(OptionCode::IaTa)?;
                w.put_u32(ia.iaid())?;
                write_options(w, ia.opts)?;
                w.end_option(m)
            }
            DhcpOption::IaAddr(a) => {
                let m = w.begin_ia_address(a.addr(), a.preferred_lifetime(), a.valid_lifetime())?;
                write_options(w, a.opts)?;
                w.end_option(m)
            }
            DhcpOption::IaPrefix(p) => {
                let m = w.begin_ia_prefix(
                    p.preferred_lifetime(),
                    p.valid_lifetime(),
                    p.prefix_len(),
                    p.prefix(),
                )?;
                write_options(w, p.opts)?;
                w.end_option(m)
            }
            DhcpOption::Oro(oro) => {
                let m = w.begin_option(OptionCode::Oro)?;
                for c in oro.iter() {
                    w.put_u16(c.into())?;
                }
                w.end_option(m)
            }
            DhcpOption::Preference(p) => w.preference(p),
            DhcpOption::ElapsedTime(t) => w.elapsed_time(t),
            DhcpOption::RelayMsg(msg) => match Packet::parse(msg) {
                Ok(p) if w.depth() + 1 < MAX_OPTION_DEPTH => {
                    let m = w.begin_option(OptionCode::RelayMsg)?;
                    p.write(w)?;
                    w.end_option(m)
                }
                _ => w.relay_msg(msg),
            },
            DhcpOption::Auth(a) => {
                let m = w.begin_option(OptionCode::Auth)?;
                w.put_bytes(&[a.protocol(), a.algorithm(), a.rdm()])?;
                w.put_bytes(&a.replay_detection().to_be_bytes())?;
                w.put_bytes(a.info())?;
                w.end_option(m)
            }
            DhcpOption::Unicast(a) => w.option(OptionCode::Unicast, &a.octets()),
            DhcpOption::StatusCode { code, message } => w.status_code_bytes(code, message),
            DhcpOption::RapidCommit => w.rapid_commit(),
            DhcpOption::UserClass(l) => {
                let m = w.begin_option(OptionCode::UserClass)?;
                write_opaque(w, l)?;
                w.end_option(m)
            }
            DhcpOption::VendorClass { enterprise, data } => {
                let m = w.begin_option(OptionCode::VendorClass)?;
                w.put_u32(enterprise)?;
                write_opaque(w, data)?;
                w.end_option(m)
            }
            DhcpOption::VendorOpts {
                enterprise,
                options,
            } => {
                let m = w.begin_vendor_opts(enterprise)?;
                for sub in options.iter() {
                    w.raw(sub.code, sub.data)?;
                }
                w.end_option(m)
            }
            DhcpOption::InterfaceId(id) => w.interface_id(id),
            DhcpOption::ReconfMsg(t) => w.reconf_msg(t),
            DhcpOption::ReconfAccept => w.reconf_accept(),
            DhcpOption::DnsServers(l) => write_addresses(w, OptionCode::DnsServers, l),
            DhcpOption::SntpServers(l) => write_addresses(w, OptionCode::SntpServers, l),
            DhcpOption::LqClientLink(l) => write_addresses(w, OptionCode::LqClientLink, l),
            DhcpOption::DomainList(l) => {
                let m = w.begin_option(OptionCode::DomainList)?;
                for name in l.iter() {
                    w.put_bytes(name.as_bytes())?;
                }
                w.end_option(m)
            }
            DhcpOption::InformationRefreshTime(t) => w.information_refresh_time(t),
            DhcpOption::RemoteId { enterprise, id } => w.remote_id(enterprise, id),
            DhcpOption::SubscriberId(id) => w.subscriber_id(id),
            DhcpOption::ClientFqdn { flags, name } => {
                let m = w.begin_option(OptionCode::ClientFqdn)?;
                w.put_bytes(&[flags])?;
                w.put_bytes(name.as_bytes())?;
                w.end_option(m)
            }
            DhcpOption::LqQuery(q) => {
                let m = w.begin_lq_query(q.query_type(), q.link_address())?;
                write_options(w, q.opts)?;
                w.end_option(m)
            }
            DhcpOption::ClientData(ref o) => {
                let m = w.begin_option(OptionCode::ClientData)?;
                write_options(w, o.as_bytes())?;
                w.end_option(m)
            }
            DhcpOption::CltTime(t) => w.clt_time(t),
            DhcpOption::LqRelayData {
                peer_address,
                message,
            } => w.lq_relay_data(peer_address, message),
            DhcpOption::NtpServer(n) => {
                let m = w.begin_option(OptionCode::NtpServer)?;
                for sub in n.suboptions() {
                    match sub {
                        NtpSuboption::ServerAddress(a) => w.ntp_server_address(a)?,
                        NtpSuboption::MulticastAddress(a) => w.ntp_multicast_address(a)?,
                        NtpSuboption::ServerFqdn(name) => w.raw(3, name.as_bytes())?,
                        NtpSuboption::Unknown { code, data } => w.raw(code, data)?,
                    }
                }
                w.end_option(m)
            }
            DhcpOption::BootFileUrl(url) => w.boot_file_url(url),
            DhcpOption::BootFileParams(l) => {
                let m = w.begin_option(OptionCode::BootFileParams)?;
                write_opaque(w, l)?;
                w.end_option(m)
            }
            DhcpOption::ClientArchTypes(a) => {
                let m = w.begin_option(OptionCode::ClientArchType)?;
                for t in a.iter() {
                    w.put_u16(t)?;
                }
                w.end_option(m)
            }
            DhcpOption::Nii {
                nii_type,
                major,
                minor,
            } => w.nii(nii_type, major, minor),
            DhcpOption::PdExclude {
                prefix_len,
                subnet_id,
            } => {
                let m = w.begin_option(OptionCode::PdExclude)?;
                w.put_bytes(&[prefix_len])?;
                w.put_bytes(subnet_id)?;
                w.end_option(m)
            }
            DhcpOption::ClientLinkLayerAddr { hw_type, addr } => {
                w.client_link_layer_addr(hw_type, addr)
            }
            DhcpOption::SolMaxRt(t) => w.sol_max_rt(t),
            DhcpOption::InfMaxRt(t) => w.inf_max_rt(t),
            DhcpOption::RelaySourcePort(p) => w.relay_source_port(p),
            DhcpOption::Unknown { code, data } => w.raw(code, data),
        }
    }
}

fn write_opaque(w: &mut MessageWriter<'_>, list: OpaqueList<'_>) -> Result<(), WriteError> {
    for item in list.iter() {
        let len = u16::try_from(item.len()).map_err(|_| WriteError::OptionTooLong)?;
        w.put_u16(len)?;
        w.put_bytes(item)?;
    }
    Ok(())
}

fn write_addresses(
    w: &mut MessageWriter<'_>,
    code: OptionCode,
    list: AddressList<'_>,
) -> Result<(), WriteError> {
    let m = w.begin_option(code)?;
    for a in list.iter() {
        w.put_bytes(&a.octets())?;
    }
    w.end_option(m)
}

/// Re-encodes an options area: typed where an option types, verbatim where it does not.
///
/// An option whose body fails to type is copied as (code, bytes); trailing bytes that do not
/// frame as an option are copied as they are. The output therefore equals the input.
pub(crate) fn write_options(w: &mut MessageWriter<'_>, area: &[u8]) -> Result<(), WriteError> {
    let mut rest = area;
    while !rest.is_empty() {
        let Ok((raw, tail)) = split_option(rest) else {
            return w.put_bytes(rest);
        };
        match raw.parse() {
            Ok(opt) => opt.write(w)?,
            Err(_) => w.raw(raw.code, raw.data)?,
        }
        rest = tail;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_and_cold_paths_agree() {
        // Bodies of many lengths and shapes, including valid ones for every hot code.
        let mut bodies: std::vec::Vec<std::vec::Vec<u8>> =
            (0..40).map(|n| std::vec![1u8; n]).collect();
        bodies.push(std::vec![0, 1, 0, 1, 0, 0, 0, 0, 1]);
        bodies.push(std::vec![1, 4, b'h', b'o', b's', b't', 0]);
        bodies.push(std::vec![0; 25]);
        for code in 0..=140u16 {
            for body in &bodies {
                assert_eq!(
                    DhcpOption::parse(code, body),
                    DhcpOption::parse_cold(code, body),
                    "code {code} body {body:?}"
                );
            }
        }
    }

    #[test]
    fn find_and_iterate() {
        let area = [0, 8, 0, 2, 0, 100, 0, 14, 0, 0, 0, 7, 0, 1];
        let opts = Options::new(&area);
        assert_eq!(
            opts.find(OptionCode::RapidCommit),
            Ok(Some(DhcpOption::RapidCommit))
        );
        assert_eq!(
            opts.find(OptionCode::ElapsedTime),
            Ok(Some(DhcpOption::ElapsedTime(100)))
        );
        assert_eq!(
            opts.find(OptionCode::Preference),
            Err(ParseError::OptionTruncated { code: 7 })
        );
        let all: std::vec::Vec<_> = opts.clone().collect();
        assert_eq!(all.len(), 3);
        assert!(all[2].is_err());
        assert_eq!(opts.raw().count(), 3);
    }
}
