//! Writer into a caller's buffer with back-patched option lengths.

use core::net::Ipv6Addr;

use crate::codes::{MessageType, OptionCode, QueryType, StatusCode};
use crate::duid::Duid;
use crate::error::WriteError;
use crate::name::{DnsName, NameError, encode_name};

/// Most options open at once: 32 relay hops plus an IA and an address inside the innermost.
pub const MAX_OPTION_DEPTH: usize = 34;

/// A handle to an open option, returned by `begin_*` and consumed by [`MessageWriter::end_option`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an open option must be closed with end_option"]
pub struct OptionMark {
    start: usize,
    level: usize,
}

/// Saved writer position for [`MessageWriter::rollback`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checkpoint {
    len: usize,
    depth: usize,
}

/// Encodes a message into a caller's `&mut [u8]`; never allocates, never panics.
///
/// Options that contain options are opened with `begin_option` (or a `begin_*` helper),
/// filled, and closed with `end_option`, which back-patches the length. A Relay-reply chain
/// is written outermost first: relay header, Interface-Id, `begin_option(RelayMsg)`, the next
/// header, ..., the client message, then the `end_option`s.
#[derive(Debug)]
pub struct MessageWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    marks: [u16; MAX_OPTION_DEPTH],
    depth: usize,
}

impl<'b> MessageWriter<'b> {
    /// A writer with nothing written yet; write a header next.
    #[inline]
    pub fn new(buf: &'b mut [u8]) -> Self {
        MessageWriter {
            buf,
            len: 0,
            marks: [0; MAX_OPTION_DEPTH],
            depth: 0,
        }
    }

    /// Starts a client/server message (RFC 9915 §8); only the low 24 bits of `xid` are used.
    #[inline]
    pub fn client(buf: &'b mut [u8], msg_type: MessageType, xid: u32) -> Result<Self, WriteError> {
        let mut w = Self::new(buf);
        w.client_header(msg_type, xid)?;
        Ok(w)
    }

    /// Starts a relay message (RFC 9915 §9).
    #[inline]
    pub fn relay(
        buf: &'b mut [u8],
        msg_type: MessageType,
        hop_count: u8,
        link_address: Ipv6Addr,
        peer_address: Ipv6Addr,
    ) -> Result<Self, WriteError> {
        let mut w = Self::new(buf);
        w.relay_header(msg_type, hop_count, link_address, peer_address)?;
        Ok(w)
    }

    /// Writes a client/server header here, e.g. inside an OPTION_RELAY_MSG.
    #[inline]
    pub fn client_header(&mut self, msg_type: MessageType, xid: u32) -> Result<(), WriteError> {
        let x = xid.to_be_bytes();
        self.put_bytes(&[msg_type.into(), x[1], x[2], x[3]])
    }

    /// Writes a relay header here, e.g. inside an OPTION_RELAY_MSG.
    #[inline]
    pub fn relay_header(
        &mut self,
        msg_type: MessageType,
        hop_count: u8,
        link_address: Ipv6Addr,
        peer_address: Ipv6Addr,
    ) -> Result<(), WriteError> {
        let dst = self.reserve(34)?;
        let (head, addrs) = dst.split_at_mut(2);
        head.copy_from_slice(&[msg_type.into(), hop_count]);
        let (link, peer) = addrs.split_at_mut(16);
        link.copy_from_slice(&link_address.octets());
        peer.copy_from_slice(&peer_address.octets());
        Ok(())
    }

    /// Bytes written so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was written yet.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of options open now.
    #[inline]
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Checks that every option was closed and returns the message length.
    #[inline]
    pub fn finish(self) -> Result<usize, WriteError> {
        if self.depth != 0 {
            return Err(WriteError::Unbalanced);
        }
        Ok(self.len)
    }

    pub(crate) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            len: self.len,
            depth: self.depth,
        }
    }

    pub(crate) fn rollback(&mut self, cp: Checkpoint) {
        self.len = cp.len;
        self.depth = cp.depth;
    }

    /// Claims the next `n` bytes.
    #[inline]
    fn reserve(&mut self, n: usize) -> Result<&mut [u8], WriteError> {
        let end = self.len.checked_add(n).ok_or(WriteError::BufferFull)?;
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(WriteError::BufferFull)?;
        self.len = end;
        Ok(dst)
    }

    /// Appends bytes to the open option (or the message).
    #[inline]
    pub fn put_bytes(&mut self, data: &[u8]) -> Result<(), WriteError> {
        self.reserve(data.len())?.copy_from_slice(data);
        Ok(())
    }

    /// Appends a big-endian u16.
    #[inline]
    pub fn put_u16(&mut self, v: u16) -> Result<(), WriteError> {
        self.put_bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian u32.
    #[inline]
    pub fn put_u32(&mut self, v: u32) -> Result<(), WriteError> {
        self.put_bytes(&v.to_be_bytes())
    }

    /// Opens an option; its length is patched by [`Self::end_option`].
    #[inline]
    pub fn begin_option(&mut self, code: OptionCode) -> Result<OptionMark, WriteError> {
        let slot = self.marks.get_mut(self.depth).ok_or(WriteError::TooDeep)?;
        let start = self.len;
        // Every DHCPv6 message fits 16 bits: UDP, and the TCP framing of RFC 5460 §5.1.
        *slot = u16::try_from(start).map_err(|_| WriteError::OptionTooLong)?;
        let c = u16::from(code).to_be_bytes();
        self.put_bytes(&[c[0], c[1], 0, 0])?;
        let level = self.depth;
        self.depth += 1;
        Ok(OptionMark { start, level })
    }

    /// Closes the innermost open option and back-patches its length.
    #[inline]
    pub fn end_option(&mut self, mark: OptionMark) -> Result<(), WriteError> {
        let top = self.depth.checked_sub(1).ok_or(WriteError::Unbalanced)?;
        if mark.level != top || self.marks.get(top).map(|&s| s as usize) != Some(mark.start) {
            return Err(WriteError::Unbalanced);
        }
        let body = self
            .len
            .checked_sub(mark.start + 4)
            .ok_or(WriteError::Unbalanced)?;
        let body = u16::try_from(body).map_err(|_| WriteError::OptionTooLong)?;
        let at = mark.start + 2;
        self.buf
            .get_mut(at..at + 2)
            .ok_or(WriteError::Unbalanced)?
            .copy_from_slice(&body.to_be_bytes());
        self.depth = top;
        Ok(())
    }

    /// Writes a whole option from a code and a body.
    #[inline]
    pub fn raw(&mut self, code: u16, data: &[u8]) -> Result<(), WriteError> {
        self.raw_parts(code, &[], data)
    }

    /// Writes a whole option whose body is two pieces.
    #[inline]
    pub(crate) fn raw_parts(&mut self, code: u16, a: &[u8], b: &[u8]) -> Result<(), WriteError> {
        let len = u16::try_from(a.len() + b.len()).map_err(|_| WriteError::OptionTooLong)?;
        let c = code.to_be_bytes();
        let l = len.to_be_bytes();
        let dst = self.reserve(4 + a.len() + b.len())?;
        let (hdr, body) = dst.split_at_mut(4);
        hdr.copy_from_slice(&[c[0], c[1], l[0], l[1]]);
        let (da, db) = body.split_at_mut(a.len());
        da.copy_from_slice(a);
        db.copy_from_slice(b);
        Ok(())
    }

    /// Writes a whole option from a typed code and a body.
    #[inline]
    pub fn option(&mut self, code: OptionCode, data: &[u8]) -> Result<(), WriteError> {
        self.raw(code.into(), data)
    }

    fn duid(&mut self, code: OptionCode, duid: &[u8]) -> Result<(), WriteError> {
        if !(Duid::MIN_LEN..=Duid::MAX_LEN).contains(&duid.len()) {
            return Err(WriteError::InvalidValue);
        }
        self.option(code, duid)
    }

    /// OPTION_CLIENTID with a DUID's bytes (3..=130, RFC 9915 §11.1).
    #[inline]
    pub fn client_id(&mut self, duid: &[u8]) -> Result<(), WriteError> {
        self.duid(OptionCode::ClientId, duid)
    }

    /// OPTION_SERVERID with a DUID's bytes.
    #[inline]
    pub fn server_id(&mut self, duid: &[u8]) -> Result<(), WriteError> {
        self.duid(OptionCode::ServerId, duid)
    }

    /// OPTION_RELAY_ID (RFC 5460) with a DUID's bytes.
    #[inline]
    pub fn relay_id(&mut self, duid: &[u8]) -> Result<(), WriteError> {
        self.duid(OptionCode::RelayId, duid)
    }

    fn begin_ia(
        &mut self,
        code: OptionCode,
        iaid: u32,
        t1: u32,
        t2: u32,
    ) -> Result<OptionMark, WriteError> {
        let m = self.begin_option(code)?;
        let (i, a, b) = (iaid.to_be_bytes(), t1.to_be_bytes(), t2.to_be_bytes());
        self.put_bytes(&[
            i[0], i[1], i[2], i[3], a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3],
        ])?;
        Ok(m)
    }

    /// Opens OPTION_IA_NA (RFC 9915 §21.4); close with [`Self::end_option`].
    #[inline]
    pub fn begin_ia_na(&mut self, iaid: u32, t1: u32, t2: u32) -> Result<OptionMark, WriteError> {
        self.begin_ia(OptionCode::IaNa, iaid, t1, t2)
    }

    /// Opens OPTION_IA_PD (RFC 9915 §21.21); close with [`Self::end_option`].
    #[inline]
    pub fn begin_ia_pd(&mut self, iaid: u32, t1: u32, t2: u32) -> Result<OptionMark, WriteError> {
        self.begin_ia(OptionCode::IaPd, iaid, t1, t2)
    }

    /// Writes OPTION_IA_NA with the options `f` writes.
    #[inline]
    pub fn ia_na(
        &mut self,
        iaid: u32,
        t1: u32,
        t2: u32,
        f: impl FnOnce(&mut Self) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        let m = self.begin_ia_na(iaid, t1, t2)?;
        f(self)?;
        self.end_option(m)
    }

    /// Writes OPTION_IA_PD with the options `f` writes.
    #[inline]
    pub fn ia_pd(
        &mut self,
        iaid: u32,
        t1: u32,
        t2: u32,
        f: impl FnOnce(&mut Self) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        let m = self.begin_ia_pd(iaid, t1, t2)?;
        f(self)?;
        self.end_option(m)
    }

    /// Opens OPTION_IAADDR (RFC 9915 §21.6) for sub-options such as a Status Code.
    #[inline]
    pub fn begin_ia_address(
        &mut self,
        addr: Ipv6Addr,
        preferred: u32,
        valid: u32,
    ) -> Result<OptionMark, WriteError> {
        let m = self.begin_option(OptionCode::IaAddr)?;
        let dst = self.reserve(24)?;
        let (a, l) = dst.split_at_mut(16);
        a.copy_from_slice(&addr.octets());
        let (p, v) = l.split_at_mut(4);
        p.copy_from_slice(&preferred.to_be_bytes());
        v.copy_from_slice(&valid.to_be_bytes());
        Ok(m)
    }

    /// Writes OPTION_IAADDR without sub-options.
    #[inline]
    pub fn ia_address(
        &mut self,
        addr: Ipv6Addr,
        preferred: u32,
        valid: u32,
    ) -> Result<(), WriteError> {
        let dst = self.reserve(28)?;
        let (h, rest) = dst.split_at_mut(4);
        h.copy_from_slice(&[0, 5, 0, 24]);
        let (a, l) = rest.split_at_mut(16);
        a.copy_from_slice(&addr.octets());
        let (p, v) = l.split_at_mut(4);
        p.copy_from_slice(&preferred.to_be_bytes());
        v.copy_from_slice(&valid.to_be_bytes());
        Ok(())
    }

    /// Opens OPTION_IAPREFIX (RFC 9915 §21.22) for sub-options (Status Code, Prefix Exclude).
    #[inline]
    pub fn begin_ia_prefix(
        &mut self,
        preferred: u32,
        valid: u32,
        prefix_len: u8,
        prefix: Ipv6Addr,
    ) -> Result<OptionMark, WriteError> {
        let m = self.begin_option(OptionCode::IaPrefix)?;
        let dst = self.reserve(25)?;
        let (p, rest) = dst.split_at_mut(4);
        p.copy_from_slice(&preferred.to_be_bytes());
        let (v, rest) = rest.split_at_mut(4);
        v.copy_from_slice(&valid.to_be_bytes());
        let (l, a) = rest.split_at_mut(1);
        l.copy_from_slice(&[prefix_len]);
        a.copy_from_slice(&prefix.octets());
        Ok(m)
    }

    /// Writes OPTION_IAPREFIX without sub-options.
    #[inline]
    pub fn ia_prefix(
        &mut self,
        preferred: u32,
        valid: u32,
        prefix_len: u8,
        prefix: Ipv6Addr,
    ) -> Result<(), WriteError> {
        let dst = self.reserve(29)?;
        let (h, rest) = dst.split_at_mut(4);
        h.copy_from_slice(&[0, 26, 0, 25]);
        let (p, rest) = rest.split_at_mut(4);
        p.copy_from_slice(&preferred.to_be_bytes());
        let (v, rest) = rest.split_at_mut(4);
        v.copy_from_slice(&valid.to_be_bytes());
        let (l, a) = rest.split_at_mut(1);
        l.copy_from_slice(&[prefix_len]);
        a.copy_from_slice(&prefix.octets());
        Ok(())
    }

    /// OPTION_PD_EXCLUDE (RFC 6603 §4.2) for excluding `excluded/excluded_len` from `prefix/prefix_len`.
    ///
    /// The subnet ID is the excluded prefix's bits after `prefix_len`, in
    /// ceil((excluded_len - prefix_len) / 8) octets, left-aligned.
    pub fn pd_exclude(
        &mut self,
        prefix_len: u8,
        excluded: Ipv6Addr,
        excluded_len: u8,
    ) -> Result<(), WriteError> {
        if excluded_len <= prefix_len || excluded_len > 128 {
            return Err(WriteError::InvalidValue);
        }
        let bits = u32::from(excluded_len - prefix_len);
        let octets = bits.div_ceil(8) as usize;
        let shifted = u128::from(excluded) << prefix_len;
        let mask = if bits >= 128 {
            u128::MAX
        } else {
            !(u128::MAX >> bits)
        };
        let id = (shifted & mask).to_be_bytes();
        let subnet = id.get(..octets).ok_or(WriteError::InvalidValue)?;
        self.raw_parts(OptionCode::PdExclude.into(), &[excluded_len], subnet)
    }

    /// OPTION_ORO (RFC 9915 §21.7).
    #[inline]
    pub fn oro(&mut self, codes: &[OptionCode]) -> Result<(), WriteError> {
        let m = self.begin_option(OptionCode::Oro)?;
        for &c in codes {
            self.put_u16(c.into())?;
        }
        self.end_option(m)
    }

    /// OPTION_PREFERENCE (RFC 9915 §21.8); 255 tells the client to pick this server at once.
    #[inline]
    pub fn preference(&mut self, value: u8) -> Result<(), WriteError> {
        self.option(OptionCode::Preference, &[value])
    }

    /// OPTION_ELAPSED_TIME (RFC 9915 §21.9), hundredths of a second.
    #[inline]
    pub fn elapsed_time(&mut self, value: u16) -> Result<(), WriteError> {
        self.option(OptionCode::ElapsedTime, &value.to_be_bytes())
    }

    /// OPTION_RELAY_MSG with an already encoded message.
    #[inline]
    pub fn relay_msg(&mut self, message: &[u8]) -> Result<(), WriteError> {
        self.option(OptionCode::RelayMsg, message)
    }

    /// OPTION_STATUS_CODE (RFC 9915 §21.13) with a UTF-8 message.
    #[inline]
    pub fn status_code(&mut self, code: StatusCode, message: &str) -> Result<(), WriteError> {
        self.status_code_bytes(code, message.as_bytes())
    }

    /// OPTION_STATUS_CODE with message bytes as received.
    #[inline]
    pub fn status_code_bytes(
        &mut self,
        code: StatusCode,
        message: &[u8],
    ) -> Result<(), WriteError> {
        self.raw_parts(
            OptionCode::StatusCode.into(),
            &u16::from(code).to_be_bytes(),
            message,
        )
    }

    /// OPTION_RAPID_COMMIT (RFC 9915 §21.14).
    #[inline]
    pub fn rapid_commit(&mut self) -> Result<(), WriteError> {
        self.option(OptionCode::RapidCommit, &[])
    }

    fn opaque_list(
        &mut self,
        code: OptionCode,
        head: &[u8],
        items: &[&[u8]],
    ) -> Result<(), WriteError> {
        let m = self.begin_option(code)?;
        self.put_bytes(head)?;
        for item in items {
            let len = u16::try_from(item.len()).map_err(|_| WriteError::OptionTooLong)?;
            self.put_u16(len)?;
            self.put_bytes(item)?;
        }
        self.end_option(m)
    }

    /// OPTION_USER_CLASS (RFC 9915 §21.15).
    #[inline]
    pub fn user_class(&mut self, classes: &[&[u8]]) -> Result<(), WriteError> {
        self.opaque_list(OptionCode::UserClass, &[], classes)
    }

    /// OPTION_VENDOR_CLASS (RFC 9915 §21.16).
    #[inline]
    pub fn vendor_class(&mut self, enterprise: u32, data: &[&[u8]]) -> Result<(), WriteError> {
        self.opaque_list(OptionCode::VendorClass, &enterprise.to_be_bytes(), data)
    }

    /// Opens OPTION_VENDOR_OPTS (RFC 9915 §21.17); add sub-options with [`Self::raw`].
    #[inline]
    pub fn begin_vendor_opts(&mut self, enterprise: u32) -> Result<OptionMark, WriteError> {
        let m = self.begin_option(OptionCode::VendorOpts)?;
        self.put_u32(enterprise)?;
        Ok(m)
    }

    /// OPTION_INTERFACE_ID (RFC 9915 §21.18): a server copies it into the Relay-reply.
    #[inline]
    pub fn interface_id(&mut self, id: &[u8]) -> Result<(), WriteError> {
        self.option(OptionCode::InterfaceId, id)
    }

    /// OPTION_RECONF_MSG (RFC 9915 §21.19).
    #[inline]
    pub fn reconf_msg(&mut self, msg_type: MessageType) -> Result<(), WriteError> {
        self.option(OptionCode::ReconfMsg, &[msg_type.into()])
    }

    /// OPTION_RECONF_ACCEPT (RFC 9915 §21.20).
    #[inline]
    pub fn reconf_accept(&mut self) -> Result<(), WriteError> {
        self.option(OptionCode::ReconfAccept, &[])
    }

    fn addresses(&mut self, code: OptionCode, addrs: &[Ipv6Addr]) -> Result<(), WriteError> {
        let m = self.begin_option(code)?;
        for a in addrs {
            self.put_bytes(&a.octets())?;
        }
        self.end_option(m)
    }

    /// OPTION_DNS_SERVERS (RFC 3646 §3).
    #[inline]
    pub fn dns_servers(&mut self, addrs: &[Ipv6Addr]) -> Result<(), WriteError> {
        self.addresses(OptionCode::DnsServers, addrs)
    }

    /// OPTION_SNTP_SERVERS (RFC 4075).
    #[inline]
    pub fn sntp_servers(&mut self, addrs: &[Ipv6Addr]) -> Result<(), WriteError> {
        self.addresses(OptionCode::SntpServers, addrs)
    }

    /// OPTION_LQ_CLIENT_LINK (RFC 5007 §4.1.2.5).
    #[inline]
    pub fn lq_client_link(&mut self, addrs: &[Ipv6Addr]) -> Result<(), WriteError> {
        self.addresses(OptionCode::LqClientLink, addrs)
    }

    /// Appends dotted `name` in wire format (RFC 1035 §3.1, uncompressed as RFC 9915 §10 asks).
    ///
    /// A trailing dot is ignored; `fully_qualified` writes the root label. Escapes are not
    /// interpreted. Use inside an open option.
    pub fn domain_name(&mut self, name: &str, fully_qualified: bool) -> Result<(), WriteError> {
        let rest = self.buf.get_mut(self.len..).unwrap_or_default();
        let n = encode_name(name, fully_qualified, rest).map_err(|e| match e {
            NameError::Invalid => WriteError::InvalidName,
            NameError::Full => WriteError::BufferFull,
        })?;
        self.len += n;
        Ok(())
    }

    /// OPTION_DOMAIN_LIST (RFC 3646 §4) from dotted names.
    #[inline]
    pub fn domain_list(&mut self, names: &[&str]) -> Result<(), WriteError> {
        let m = self.begin_option(OptionCode::DomainList)?;
        for n in names {
            self.domain_name(n, true)?;
        }
        self.end_option(m)
    }

    /// OPTION_INFORMATION_REFRESH_TIME (RFC 9915 §21.23).
    #[inline]
    pub fn information_refresh_time(&mut self, seconds: u32) -> Result<(), WriteError> {
        self.option(OptionCode::InformationRefreshTime, &seconds.to_be_bytes())
    }

    /// OPTION_REMOTE_ID (RFC 4649).
    #[inline]
    pub fn remote_id(&mut self, enterprise: u32, id: &[u8]) -> Result<(), WriteError> {
        self.raw_parts(OptionCode::RemoteId.into(), &enterprise.to_be_bytes(), id)
    }

    /// OPTION_SUBSCRIBER_ID (RFC 4580).
    #[inline]
    pub fn subscriber_id(&mut self, id: &[u8]) -> Result<(), WriteError> {
        self.option(OptionCode::SubscriberId, id)
    }

    /// OPTION_CLIENT_FQDN (RFC 4704 §4.1) from a dotted name; `fully_qualified` adds the root label.
    #[inline]
    pub fn client_fqdn(
        &mut self,
        flags: u8,
        name: &str,
        fully_qualified: bool,
    ) -> Result<(), WriteError> {
        let m = self.begin_option(OptionCode::ClientFqdn)?;
        self.put_bytes(&[flags])?;
        self.domain_name(name, fully_qualified)?;
        self.end_option(m)
    }

    /// OPTION_CLIENT_FQDN from a parsed name, e.g. the client's own echoed back (RFC 4704 §5).
    #[inline]
    pub fn client_fqdn_name(&mut self, flags: u8, name: DnsName<'_>) -> Result<(), WriteError> {
        self.raw_parts(OptionCode::ClientFqdn.into(), &[flags], name.as_bytes())
    }

    /// Opens OPTION_LQ_QUERY (RFC 5007 §4.1.2.1) for its query options.
    #[inline]
    pub fn begin_lq_query(
        &mut self,
        query_type: QueryType,
        link_address: Ipv6Addr,
    ) -> Result<OptionMark, WriteError> {
        let m = self.begin_option(OptionCode::LqQuery)?;
        self.put_bytes(&[query_type.into()])?;
        self.put_bytes(&link_address.octets())?;
        Ok(m)
    }

    /// Opens OPTION_CLIENT_DATA (RFC 5007 §4.1.2.2) for the client's options.
    #[inline]
    pub fn begin_client_data(&mut self) -> Result<OptionMark, WriteError> {
        self.begin_option(OptionCode::ClientData)
    }

    /// OPTION_CLT_TIME (RFC 5007 §4.1.2.3).
    #[inline]
    pub fn clt_time(&mut self, seconds: u32) -> Result<(), WriteError> {
        self.option(OptionCode::CltTime, &seconds.to_be_bytes())
    }

    /// OPTION_LQ_RELAY_DATA (RFC 5007 §4.1.2.4) with the encoded Relay-forward.
    #[inline]
    pub fn lq_relay_data(
        &mut self,
        peer_address: Ipv6Addr,
        message: &[u8],
    ) -> Result<(), WriteError> {
        self.raw_parts(
            OptionCode::LqRelayData.into(),
            &peer_address.octets(),
            message,
        )
    }

    /// Opens OPTION_NTP_SERVER (RFC 5908); add sub-options with the `ntp_*` helpers.
    #[inline]
    pub fn begin_ntp_server(&mut self) -> Result<OptionMark, WriteError> {
        self.begin_option(OptionCode::NtpServer)
    }

    /// NTP_SUBOPTION_SRV_ADDR inside an open OPTION_NTP_SERVER.
    #[inline]
    pub fn ntp_server_address(&mut self, addr: Ipv6Addr) -> Result<(), WriteError> {
        self.raw(1, &addr.octets())
    }

    /// NTP_SUBOPTION_MC_ADDR inside an open OPTION_NTP_SERVER.
    #[inline]
    pub fn ntp_multicast_address(&mut self, addr: Ipv6Addr) -> Result<(), WriteError> {
        self.raw(2, &addr.octets())
    }

    /// NTP_SUBOPTION_SRV_FQDN inside an open OPTION_NTP_SERVER, from a dotted name.
    #[inline]
    pub fn ntp_server_fqdn(&mut self, name: &str) -> Result<(), WriteError> {
        let start = self.len;
        self.put_bytes(&[0, 3, 0, 0])?;
        self.domain_name(name, true)?;
        let len = u16::try_from(self.len - start - 4).map_err(|_| WriteError::InvalidName)?;
        self.buf
            .get_mut(start + 2..start + 4)
            .ok_or(WriteError::BufferFull)?
            .copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// OPTION_BOOTFILE_URL (RFC 5970 §3.1).
    #[inline]
    pub fn boot_file_url(&mut self, url: &[u8]) -> Result<(), WriteError> {
        self.option(OptionCode::BootFileUrl, url)
    }

    /// OPTION_BOOTFILE_PARAM (RFC 5970 §3.2).
    #[inline]
    pub fn boot_file_params(&mut self, params: &[&[u8]]) -> Result<(), WriteError> {
        self.opaque_list(OptionCode::BootFileParams, &[], params)
    }

    /// OPTION_CLIENT_ARCH_TYPE (RFC 5970 §3.3).
    #[inline]
    pub fn client_arch_types(&mut self, types: &[u16]) -> Result<(), WriteError> {
        let m = self.begin_option(OptionCode::ClientArchType)?;
        for &t in types {
            self.put_u16(t)?;
        }
        self.end_option(m)
    }

    /// OPTION_NII (RFC 5970 §3.4).
    #[inline]
    pub fn nii(&mut self, nii_type: u8, major: u8, minor: u8) -> Result<(), WriteError> {
        self.option(OptionCode::Nii, &[nii_type, major, minor])
    }

    /// OPTION_CLIENT_LINKLAYER_ADDR (RFC 6939).
    #[inline]
    pub fn client_link_layer_addr(&mut self, hw_type: u16, addr: &[u8]) -> Result<(), WriteError> {
        self.raw_parts(
            OptionCode::ClientLinkLayerAddr.into(),
            &hw_type.to_be_bytes(),
            addr,
        )
    }

    /// OPTION_SOL_MAX_RT (RFC 9915 §21.24).
    #[inline]
    pub fn sol_max_rt(&mut self, seconds: u32) -> Result<(), WriteError> {
        self.option(OptionCode::SolMaxRt, &seconds.to_be_bytes())
    }

    /// OPTION_INF_MAX_RT (RFC 9915 §21.25).
    #[inline]
    pub fn inf_max_rt(&mut self, seconds: u32) -> Result<(), WriteError> {
        self.option(OptionCode::InfMaxRt, &seconds.to_be_bytes())
    }

    /// OPTION_RELAY_SOURCE_PORT (RFC 8357 §5.2).
    #[inline]
    pub fn relay_source_port(&mut self, port: u16) -> Result<(), WriteError> {
        self.option(OptionCode::RelaySourcePort, &port.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_patch_and_errors() {
        let mut buf = [0u8; 64];
        let mut w = MessageWriter::client(&mut buf, MessageType::Reply, 0x0012_3456).unwrap();
        let m = w.begin_ia_na(1, 2, 3).unwrap();
        w.status_code(StatusCode::Success, "ok").unwrap();
        w.end_option(m).unwrap();
        let n = w.finish().unwrap();
        assert_eq!(n, 4 + 4 + 12 + 4 + 2 + 2);
        assert_eq!(&buf[..8], &[7, 0x12, 0x34, 0x56, 0, 3, 0, 20]);

        let mut small = [0u8; 10];
        let mut w = MessageWriter::client(&mut small, MessageType::Reply, 1).unwrap();
        assert_eq!(
            w.server_id(&[0, 3, 0, 1, 1, 2, 3, 4]),
            Err(WriteError::BufferFull)
        );

        let mut buf = [0u8; 512];
        let mut w = MessageWriter::new(&mut buf);
        let a = w.begin_option(OptionCode::RelayMsg).unwrap();
        let b = w.begin_option(OptionCode::RelayMsg).unwrap();
        assert_eq!(w.end_option(a), Err(WriteError::Unbalanced));
        w.end_option(b).unwrap();
        let mut marks = std::vec::Vec::new();
        for _ in 1..MAX_OPTION_DEPTH {
            marks.push(w.begin_option(OptionCode::RelayMsg).unwrap());
        }
        assert_eq!(
            w.begin_option(OptionCode::RelayMsg),
            Err(WriteError::TooDeep)
        );
        while let Some(m) = marks.pop() {
            w.end_option(m).unwrap();
        }
        assert_eq!(w.finish(), Err(WriteError::Unbalanced));
    }

    #[test]
    fn pd_exclude_encoding() {
        // RFC 6603 §4.2 example shape: 2001:db8::/48 delegated, exclude 2001:db8:0:1::/64.
        let mut buf = [0u8; 16];
        let mut w = MessageWriter::new(&mut buf);
        w.pd_exclude(48, "2001:db8:0:1::".parse().unwrap(), 64)
            .unwrap();
        let n = w.finish().unwrap();
        assert_eq!(&buf[..n], &[0, 67, 0, 3, 64, 0, 1]);
    }
}
