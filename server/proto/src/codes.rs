//! Registry codes: message types, option codes, status codes, DUID types and query types.

/// Declares a code enum with an `Unknown(n)` catch-all and `From` conversions both ways.
macro_rules! enum_with_unknown {
    (
        $(#[$enum_meta:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$variant_meta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$enum_meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
            /// A code this crate does not name; `From` never builds it for a named code.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            #[inline]
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            #[inline]
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

enum_with_unknown! {
    /// DHCPv6 message type (RFC 9915 §7.3, Leasequery: RFC 5007 §4.2, RFC 5460 §5.2).
    pub enum MessageType(u8) {
        /// SOLICIT (1).
        Solicit = 1,
        /// ADVERTISE (2).
        Advertise = 2,
        /// REQUEST (3).
        Request = 3,
        /// CONFIRM (4).
        Confirm = 4,
        /// RENEW (5).
        Renew = 5,
        /// REBIND (6).
        Rebind = 6,
        /// REPLY (7).
        Reply = 7,
        /// RELEASE (8).
        Release = 8,
        /// DECLINE (9).
        Decline = 9,
        /// RECONFIGURE (10).
        Reconfigure = 10,
        /// INFORMATION-REQUEST (11).
        InformationRequest = 11,
        /// RELAY-FORW (12).
        RelayForw = 12,
        /// RELAY-REPL (13).
        RelayRepl = 13,
        /// LEASEQUERY (14, RFC 5007).
        Leasequery = 14,
        /// LEASEQUERY-REPLY (15, RFC 5007).
        LeasequeryReply = 15,
        /// LEASEQUERY-DONE (16, RFC 5460).
        LeasequeryDone = 16,
        /// LEASEQUERY-DATA (17, RFC 5460).
        LeasequeryData = 17,
    }
}

impl MessageType {
    /// True for the two relay-agent message types, which use the relay header layout.
    #[inline]
    pub fn is_relay(self) -> bool {
        matches!(self, MessageType::RelayForw | MessageType::RelayRepl)
    }

    /// True for types a server sends; a server drops these on the first byte (RFC 9915 §16).
    #[inline]
    pub fn is_server_to_client(self) -> bool {
        matches!(
            self,
            MessageType::Advertise
                | MessageType::Reply
                | MessageType::Reconfigure
                | MessageType::RelayRepl
                | MessageType::LeasequeryReply
                | MessageType::LeasequeryDone
                | MessageType::LeasequeryData
        )
    }
}

enum_with_unknown! {
    /// DHCPv6 option code (IANA "DHCPv6 Option Codes" registry).
    pub enum OptionCode(u16) {
        /// OPTION_CLIENTID (RFC 9915 §21.2).
        ClientId = 1,
        /// OPTION_SERVERID (RFC 9915 §21.3).
        ServerId = 2,
        /// OPTION_IA_NA (RFC 9915 §21.4).
        IaNa = 3,
        /// OPTION_IA_TA (RFC 9915 §21.5, deprecated).
        IaTa = 4,
        /// OPTION_IAADDR (RFC 9915 §21.6).
        IaAddr = 5,
        /// OPTION_ORO (RFC 9915 §21.7).
        Oro = 6,
        /// OPTION_PREFERENCE (RFC 9915 §21.8).
        Preference = 7,
        /// OPTION_ELAPSED_TIME (RFC 9915 §21.9).
        ElapsedTime = 8,
        /// OPTION_RELAY_MSG (RFC 9915 §21.10).
        RelayMsg = 9,
        /// OPTION_AUTH (RFC 9915 §21.11).
        Auth = 11,
        /// OPTION_UNICAST (RFC 8415 §21.12, removed by RFC 9915).
        Unicast = 12,
        /// OPTION_STATUS_CODE (RFC 9915 §21.13).
        StatusCode = 13,
        /// OPTION_RAPID_COMMIT (RFC 9915 §21.14).
        RapidCommit = 14,
        /// OPTION_USER_CLASS (RFC 9915 §21.15).
        UserClass = 15,
        /// OPTION_VENDOR_CLASS (RFC 9915 §21.16).
        VendorClass = 16,
        /// OPTION_VENDOR_OPTS (RFC 9915 §21.17).
        VendorOpts = 17,
        /// OPTION_INTERFACE_ID (RFC 9915 §21.18).
        InterfaceId = 18,
        /// OPTION_RECONF_MSG (RFC 9915 §21.19).
        ReconfMsg = 19,
        /// OPTION_RECONF_ACCEPT (RFC 9915 §21.20).
        ReconfAccept = 20,
        /// OPTION_DNS_SERVERS (RFC 3646 §3).
        DnsServers = 23,
        /// OPTION_DOMAIN_LIST (RFC 3646 §4).
        DomainList = 24,
        /// OPTION_IA_PD (RFC 9915 §21.21).
        IaPd = 25,
        /// OPTION_IAPREFIX (RFC 9915 §21.22).
        IaPrefix = 26,
        /// OPTION_SNTP_SERVERS (RFC 4075).
        SntpServers = 31,
        /// OPTION_INFORMATION_REFRESH_TIME (RFC 9915 §21.23).
        InformationRefreshTime = 32,
        /// OPTION_REMOTE_ID (RFC 4649).
        RemoteId = 37,
        /// OPTION_SUBSCRIBER_ID (RFC 4580).
        SubscriberId = 38,
        /// OPTION_CLIENT_FQDN (RFC 4704).
        ClientFqdn = 39,
        /// OPTION_LQ_QUERY (RFC 5007 §4.1.2.1).
        LqQuery = 44,
        /// OPTION_CLIENT_DATA (RFC 5007 §4.1.2.2).
        ClientData = 45,
        /// OPTION_CLT_TIME (RFC 5007 §4.1.2.3).
        CltTime = 46,
        /// OPTION_LQ_RELAY_DATA (RFC 5007 §4.1.2.4).
        LqRelayData = 47,
        /// OPTION_LQ_CLIENT_LINK (RFC 5007 §4.1.2.5).
        LqClientLink = 48,
        /// OPTION_RELAY_ID (RFC 5460 §5.4.1).
        RelayId = 53,
        /// OPTION_NTP_SERVER (RFC 5908).
        NtpServer = 56,
        /// OPTION_BOOTFILE_URL (RFC 5970 §3.1).
        BootFileUrl = 59,
        /// OPTION_BOOTFILE_PARAM (RFC 5970 §3.2).
        BootFileParams = 60,
        /// OPTION_CLIENT_ARCH_TYPE (RFC 5970 §3.3).
        ClientArchType = 61,
        /// OPTION_NII (RFC 5970 §3.4).
        Nii = 62,
        /// OPTION_ERP_LOCAL_DOMAIN_NAME (RFC 6440).
        ErpLocalDomainName = 65,
        /// OPTION_RSOO, Relay-Supplied Options (RFC 6422 §3).
        RelaySuppliedOptions = 66,
        /// OPTION_PD_EXCLUDE (RFC 6603).
        PdExclude = 67,
        /// OPTION_CLIENT_LINKLAYER_ADDR (RFC 6939).
        ClientLinkLayerAddr = 79,
        /// OPTION_SOL_MAX_RT (RFC 9915 §21.24).
        SolMaxRt = 82,
        /// OPTION_INF_MAX_RT (RFC 9915 §21.25).
        InfMaxRt = 83,
        /// OPTION_RELAY_SOURCE_PORT (RFC 8357).
        RelaySourcePort = 135,
    }
}

enum_with_unknown! {
    /// Status code carried in OPTION_STATUS_CODE (RFC 9915 §21.13, RFC 5007, RFC 5460).
    pub enum StatusCode(u16) {
        /// Success.
        Success = 0,
        /// Failure, reason unspecified.
        UnspecFail = 1,
        /// The server has no addresses available to assign.
        NoAddrsAvail = 2,
        /// Client record (binding) unavailable.
        NoBinding = 3,
        /// The prefix for the address is not appropriate for the link.
        NotOnLink = 4,
        /// Sent by a server to force a client to use the multicast address.
        UseMulticast = 5,
        /// The server has no prefixes available to assign.
        NoPrefixAvail = 6,
        /// Leasequery: the query type is not known (RFC 5007).
        UnknownQueryType = 7,
        /// Leasequery: the query is malformed (RFC 5007).
        MalformedQuery = 8,
        /// Leasequery: the server does not have the target address or prefix (RFC 5007).
        NotConfigured = 9,
        /// Leasequery: the requester is not allowed to query (RFC 5007).
        NotAllowed = 10,
        /// Bulk Leasequery: the server ended the query early (RFC 5460).
        QueryTerminated = 11,
        /// Active Leasequery: data missing (RFC 7653).
        DataMissing = 12,
        /// Active Leasequery: catch-up complete (RFC 7653).
        CatchUpComplete = 13,
        /// Active Leasequery: not supported (RFC 7653).
        NotSupported = 14,
    }
}

enum_with_unknown! {
    /// DUID type code (RFC 9915 §11.1).
    pub enum DuidType(u16) {
        /// DUID-LLT: link-layer address plus time (RFC 9915 §11.2).
        Llt = 1,
        /// DUID-EN: assigned by vendor based on enterprise number (RFC 9915 §11.3).
        En = 2,
        /// DUID-LL: link-layer address (RFC 9915 §11.4).
        Ll = 3,
        /// DUID-UUID (RFC 9915 §11.5, RFC 6355).
        Uuid = 4,
    }
}

enum_with_unknown! {
    /// Leasequery query type (RFC 5007 §4.1.2.1, RFC 5460 §5.3).
    pub enum QueryType(u8) {
        /// QUERY_BY_ADDRESS (RFC 5007).
        ByAddress = 1,
        /// QUERY_BY_CLIENTID (RFC 5007).
        ByClientId = 2,
        /// QUERY_BY_RELAY_ID (RFC 5460).
        ByRelayId = 3,
        /// QUERY_BY_LINK_ADDRESS (RFC 5460).
        ByLinkAddress = 4,
        /// QUERY_BY_REMOTE_ID (RFC 5460).
        ByRemoteId = 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for n in 0..=u8::MAX {
            assert_eq!(u8::from(MessageType::from(n)), n);
            assert_eq!(u8::from(QueryType::from(n)), n);
        }
        for n in 0..=u16::MAX {
            assert_eq!(u16::from(OptionCode::from(n)), n);
            assert_eq!(u16::from(StatusCode::from(n)), n);
            assert_eq!(u16::from(DuidType::from(n)), n);
        }
        assert_eq!(MessageType::from(17), MessageType::LeasequeryData);
        assert_eq!(OptionCode::from(135), OptionCode::RelaySourcePort);
        assert_eq!(OptionCode::from(66), OptionCode::RelaySuppliedOptions);
        assert_eq!(StatusCode::from(99), StatusCode::Unknown(99));
    }
}
