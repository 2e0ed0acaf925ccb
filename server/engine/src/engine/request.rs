//! Reading a client message: the options the engine acts on, in one pass, without allocating.

use std::net::Ipv6Addr;

use xdhcp6_proto::{
    DhcpOption, IaNa, IaPd, Message, MessageType, MessageWriter, OptionCode, OptionMark, Oro,
    RawOptions, RelayChain, RelayMessage, WriteError,
};

use super::{DropReason, HOP_COUNT_LIMIT, MAX_IAS};
use crate::config::LinkId;
use crate::table::IaKind;

/// Who is asking: DUID and link.
pub(super) struct Client<'a> {
    pub(super) duid: &'a [u8],
    pub(super) link: LinkId,
}

/// What the relay closest to the client said about it: the keys a reservation may select a
/// client by besides its DUID. Empty for a direct client.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RelayKeys<'a> {
    /// The Client Link-Layer Address option (RFC 6939): hardware type and address.
    pub(super) link_layer: Option<(u16, &'a [u8])>,
    /// The Interface-Id option (RFC 9915 §21.18).
    pub(super) interface_id: Option<&'a [u8]>,
    /// The Remote-ID option body (RFC 4649): enterprise number, then remote-id.
    pub(super) remote_id: Option<&'a [u8]>,
    /// The Subscriber-ID option body (RFC 4580).
    pub(super) subscriber_id: Option<&'a [u8]>,
    /// The cable modem MAC address of a CMTS's CableLabs vendor option (sub-option 1026).
    pub(super) cm_mac: Option<&'a [u8]>,
}

/// The CableLabs enterprise number (IANA), whose vendor option a CMTS adds to Relay-forward
/// messages (CL-SP-CANN-DHCP-Reg).
const CABLELABS: u32 = 4491;

/// CL_OPTION_CMTS_CM_MAC: the sub-option of the CableLabs vendor option in which a CMTS
/// relays the MAC address of the cable modem the client is (or is behind).
const CL_CMTS_CM_MAC: u16 = 1026;

/// The keys the innermost relay gives ([`RelayKeys`]); malformed options give nothing (they
/// select no reservation, and the datagram is otherwise judged as before).
pub(super) fn relay_keys<'a>(chain: &RelayChain<'a>) -> RelayKeys<'a> {
    let mut keys = RelayKeys::default();
    for option in chain.innermost().options().raw().map_while(Result::ok) {
        let data = option.data;
        match option.code {
            18 => keys.interface_id = keys.interface_id.or(Some(data)),
            37 if data.len() > 4 => keys.remote_id = keys.remote_id.or(Some(data)),
            38 if !data.is_empty() => keys.subscriber_id = keys.subscriber_id.or(Some(data)),
            79 => {
                if let (Some(hw_type), Some(address)) = (data.first_chunk::<2>(), data.get(2..))
                    && !address.is_empty()
                    && keys.link_layer.is_none()
                {
                    keys.link_layer = Some((u16::from_be_bytes(*hw_type), address));
                }
            }
            17 if keys.cm_mac.is_none() => keys.cm_mac = cablelabs_cm_mac(data),
            _ => {}
        }
    }
    keys
}

/// The CM MAC address (sub-option 1026) of a CableLabs vendor option body.
fn cablelabs_cm_mac(body: &[u8]) -> Option<&[u8]> {
    let (enterprise, subs) = body.split_first_chunk::<4>()?;
    if u32::from_be_bytes(*enterprise) != CABLELABS {
        return None;
    }
    RawOptions::new(subs)
        .map_while(Result::ok)
        .find(|sub| sub.code == CL_CMTS_CM_MAC && !sub.data.is_empty())
        .map(|sub| sub.data)
}

/// A fixed-capacity list, so reading a request never allocates.
#[derive(Clone, Copy)]
pub(super) struct List<T: Copy, const N: usize> {
    items: [Option<T>; N],
    len: usize,
}

impl<T: Copy, const N: usize> List<T, N> {
    pub(super) fn new() -> Self {
        Self {
            items: [None; N],
            len: 0,
        }
    }

    /// Appends `item`; false when full.
    pub(super) fn push(&mut self, item: T) -> bool {
        let Some(slot) = self.items.get_mut(self.len) else {
            return false;
        };
        *slot = Some(item);
        self.len += 1;
        true
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().take(self.len).flatten()
    }
}

/// What the engine needs of a client message, read in one pass over its options.
pub(super) struct ClientRequest<'a> {
    pub(super) msg_type: MessageType,
    pub(super) xid: u32,
    pub(super) client_id: Option<&'a [u8]>,
    pub(super) server_id: Option<&'a [u8]>,
    pub(super) ia_na: List<IaNa<'a>, MAX_IAS>,
    pub(super) ia_pd: List<IaPd<'a>, MAX_IAS>,
    pub(super) has_ia: bool,
    pub(super) oro: Option<Oro<'a>>,
    pub(super) rapid_commit: bool,
    /// The client sent Reconfigure Accept (RFC 9915 §21.20).
    pub(super) reconfigure_accept: bool,
    pub(super) fqdn: Option<(u8, &'a [u8])>,
    /// The vendor option requests of the client's own Vendor-specific Information options.
    pub(super) vendor_oros: List<VendorOro<'a>, MAX_VENDOR_OROS>,
    /// The bodies of the relays' Relay-Supplied Options options, the relay closest to the
    /// client first (empty for a direct message).
    pub(super) relay_supplied: List<&'a [u8], HOP_COUNT_LIMIT>,
    /// The message, when it holds more IA_NA or IA_PD options (with new IAIDs) than
    /// [`MAX_IAS`]: the reply answers those with a status ([`ClientRequest::ias_beyond_limit`]).
    pub(super) beyond_limit: Option<Message<'a>>,
}

/// Vendor-specific Information options of a request whose vendor request the server reads;
/// further ones are ignored.
pub(super) const MAX_VENDOR_OROS: usize = 4;

/// Enterprises whose vendor option carries an option request as sub-option 1, listing the
/// sub-option codes the client wants (16 bits each): CableLabs (4491), CL_OPTION_ORO in
/// CL-SP-CANN-DHCP-Reg, sent by DOCSIS cable modems and eRouters.
pub(super) const VENDOR_ORO_ENTERPRISES: [u32; 1] = [4491];

/// Whether a vendor option body belongs to an enterprise in [`VENDOR_ORO_ENTERPRISES`].
fn reads_vendor_oro(body: &[u8]) -> bool {
    body.first_chunk::<4>()
        .is_some_and(|enterprise| VENDOR_ORO_ENTERPRISES.contains(&u32::from_be_bytes(*enterprise)))
}

/// The sub-option of a vendor option that lists the sub-options requested.
const VENDOR_ORO_SUB_OPTION: u16 = 1;

/// The sub-options a client asked for inside its own vendor option for `enterprise`.
#[derive(Clone, Copy)]
pub(super) struct VendorOro<'a> {
    pub(super) enterprise: u32,
    /// Sub-option codes, 16 bits each (an even number of bytes).
    codes: &'a [u8],
}

impl VendorOro<'_> {
    /// Whether the client asked for sub-option `code`.
    pub(super) fn contains(&self, code: u16) -> bool {
        self.codes.as_chunks::<2>().0.contains(&code.to_be_bytes())
    }
}

impl<'a> ClientRequest<'a> {
    /// Client ID, Server ID, IA_NA, IA_TA, ORO, Rapid Commit, Vendor-specific Information,
    /// Reconfigure Accept, IA_PD, Client FQDN.
    const ACTED_ON: [u16; 10] = [1, 2, 3, 4, 6, 14, 17, 20, 25, 39];

    /// [`Self::ACTED_ON`] as a bit set of codes below 64: one test per option.
    const ACTED_ON_BITS: u64 = {
        let mut bits = 0u64;
        let mut at = 0;
        while at < Self::ACTED_ON.len() {
            bits |= 1 << Self::ACTED_ON[at];
            at += 1;
        }
        bits
    };

    /// Whether the server acts on options of `code` ([`Self::ACTED_ON`]).
    fn acts_on(code: u16) -> bool {
        1u64.checked_shl(u32::from(code))
            .is_some_and(|bit| Self::ACTED_ON_BITS & bit != 0)
    }

    /// The request of `message` with none of its options read yet ([`Self::read`] next).
    ///
    /// Two steps rather than one returning `Result<Self, _>`: the request is large (its IA
    /// lists), and a result would be copied twice on its way to the caller's variable.
    pub(super) fn new(message: Message<'a>) -> Self {
        ClientRequest {
            msg_type: message.msg_type(),
            xid: message.transaction_id(),
            client_id: None,
            server_id: None,
            ia_na: List::new(),
            ia_pd: List::new(),
            has_ia: false,
            oro: None,
            rapid_commit: false,
            reconfigure_accept: false,
            fqdn: None,
            vendor_oros: List::new(),
            relay_supplied: List::new(),
            beyond_limit: None,
        }
    }

    /// Reads the options of `message` (the one [`Self::new`] was given) into this request.
    pub(super) fn read(&mut self, message: Message<'a>) -> Result<(), DropReason> {
        let request = self;
        // Only the options the server acts on are typed (and must be well-formed); the framing
        // of every option is checked.
        for raw in message.options().raw() {
            let raw = raw.map_err(|_| DropReason::Malformed)?;
            if !ClientRequest::acts_on(raw.code) {
                continue;
            }
            // A vendor option is read only for the enterprises whose option request the server
            // answers: another vendor's body, well-formed or not, is none of its business.
            if raw.code == u16::from(OptionCode::VendorOpts) && !reads_vendor_oro(raw.data) {
                continue;
            }
            match raw.parse().map_err(|_| DropReason::Malformed)? {
                // RFC 9915 §21.1, in substance:
                // Unless otherwise noted, each option may appear only in the options area of a
                // DHCP message and may appear only once.
                // RFC 9915 §16, in substance:
                // Clients and servers MAY choose to ... ignore such a message completely and
                // just discard it.
                // (Two identities in one message: which one would the lease belong to?)
                DhcpOption::ClientId(duid) => set_once(&mut request.client_id, duid.as_bytes())?,
                DhcpOption::ServerId(duid) => set_once(&mut request.server_id, duid.as_bytes())?,
                DhcpOption::IaNa(ia) => {
                    request.has_ia = true;
                    // One answer per IAID: a repeated IA is the client's mistake.
                    if request.ia_na.iter().all(|other| other.iaid() != ia.iaid())
                        && !request.ia_na.push(ia)
                    {
                        request.beyond_limit = Some(message);
                    }
                }
                DhcpOption::IaPd(ia) => {
                    request.has_ia = true;
                    if request.ia_pd.iter().all(|other| other.iaid() != ia.iaid())
                        && !request.ia_pd.push(ia)
                    {
                        request.beyond_limit = Some(message);
                    }
                }
                DhcpOption::IaTa(_) => request.has_ia = true,
                DhcpOption::Oro(oro) => request.oro = Some(oro),
                DhcpOption::RapidCommit => request.rapid_commit = true,
                DhcpOption::ReconfAccept => request.reconfigure_accept = true,
                DhcpOption::ClientFqdn { flags, name } => {
                    request.fqdn = Some((flags, name.as_bytes()));
                }
                DhcpOption::VendorOpts {
                    enterprise,
                    options,
                } if VENDOR_ORO_ENTERPRISES.contains(&enterprise) => {
                    let oro = options.iter().find(|sub| sub.code == VENDOR_ORO_SUB_OPTION);
                    if let Some(oro) = oro {
                        // Like the ORO itself (RFC 9915 §21.7), a list of 2-octet codes.
                        if oro.data.len() % 2 != 0 {
                            return Err(DropReason::Malformed);
                        }
                        let seen = request
                            .vendor_oros
                            .iter()
                            .any(|v| v.enterprise == enterprise);
                        if !seen {
                            request.vendor_oros.push(VendorOro {
                                enterprise,
                                codes: oro.data,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The IA_NA options (one per IAID) then the IA_PD options, in the order answered.
    pub(super) fn ias(&self) -> impl Iterator<Item = Ia<'a>> + '_ {
        let na = self.ia_na.iter().map(|ia| Ia::Na(*ia));
        na.chain(self.ia_pd.iter().map(|ia| Ia::Pd(*ia)))
    }

    /// The IA_NA and IA_PD options past the [`MAX_IAS`] of their kind that [`Self::ias`]
    /// answers, in message order (an IAID seen within the limit is not repeated; one repeated
    /// past it is, as often as the client sent it: the reply's size bounds the work).
    pub(super) fn ias_beyond_limit(&self) -> impl Iterator<Item = Ia<'a>> + '_ {
        let raw = self.beyond_limit.map(|message| message.options().raw());
        raw.into_iter()
            .flatten()
            .map_while(Result::ok)
            .filter_map(|raw| match raw.parse() {
                Ok(DhcpOption::IaNa(ia)) => Some(Ia::Na(ia)),
                Ok(DhcpOption::IaPd(ia)) => Some(Ia::Pd(ia)),
                _ => None,
            })
            .filter(|ia| {
                !self
                    .ias()
                    .any(|answered| answered.kind() == ia.kind() && answered.iaid() == ia.iaid())
            })
    }

    pub(super) fn requested(&self, code: OptionCode) -> bool {
        self.oro.is_some_and(|oro| oro.contains(code))
    }

    /// The sub-options the client asked for in its own vendor option for `enterprise`.
    pub(super) fn vendor_oro(&self, enterprise: u32) -> Option<VendorOro<'a>> {
        self.vendor_oros
            .iter()
            .find(|oro| oro.enterprise == enterprise)
            .copied()
    }
}

/// Sets an identifier the message may carry once; a second one drops the message.
fn set_once<'a>(slot: &mut Option<&'a [u8]>, id: &'a [u8]) -> Result<(), DropReason> {
    match slot.replace(id) {
        None => Ok(()),
        Some(_) => Err(DropReason::DuplicateId),
    }
}

/// The relays of `chain`, the one closest to the client first (the chain lists the outermost
/// first); at most [`HOP_COUNT_LIMIT`], without allocating.
pub(super) fn hops_from_client<'a>(
    chain: &RelayChain<'a>,
) -> impl Iterator<Item = RelayMessage<'a>> + use<'a> {
    let mut hops: [Option<RelayMessage<'a>>; HOP_COUNT_LIMIT] = [None; HOP_COUNT_LIMIT];
    for (hop, slot) in chain.hops().zip(hops.iter_mut()) {
        *slot = Some(hop);
    }
    hops.into_iter().rev().flatten()
}

/// The Relay-Supplied Options options (RFC 6422 §3) of the relay chain, the relay closest to
/// the client first; one whose options run past its end is malformed.
pub(super) fn relay_supplied<'a>(
    chain: &RelayChain<'a>,
) -> Result<List<&'a [u8], HOP_COUNT_LIMIT>, DropReason> {
    let mut supplied = List::new();
    for hop in hops_from_client(chain) {
        let rsoo = hop
            .options()
            .find_raw(OptionCode::RelaySuppliedOptions)
            .map_err(|_| DropReason::Malformed)?;
        if let Some(body) = rsoo {
            if RawOptions::new(body).any(|option| option.is_err()) {
                return Err(DropReason::Malformed);
            }
            supplied.push(body);
        }
    }
    Ok(supplied)
}

/// An identity association of the request: addresses (IA_NA) or delegated prefixes (IA_PD).
#[derive(Clone, Copy)]
pub(super) enum Ia<'a> {
    Na(IaNa<'a>),
    Pd(IaPd<'a>),
}

impl<'a> Ia<'a> {
    pub(super) fn iaid(&self) -> u32 {
        match self {
            Ia::Na(ia) => ia.iaid(),
            Ia::Pd(ia) => ia.iaid(),
        }
    }

    pub(super) fn kind(&self) -> IaKind {
        match self {
            Ia::Na(_) => IaKind::Na,
            Ia::Pd(_) => IaKind::Pd,
        }
    }

    /// The addresses (as prefixes of length 128) or prefixes the client listed in the IA.
    pub(super) fn listed(&self) -> impl Iterator<Item = (Ipv6Addr, u8)> + use<'a> {
        let (kind, options) = match self {
            Ia::Na(ia) => (IaKind::Na, ia.options()),
            Ia::Pd(ia) => (IaKind::Pd, ia.options()),
        };
        options
            .map_while(Result::ok)
            .filter_map(move |option| match (kind, option) {
                (IaKind::Na, DhcpOption::IaAddr(addr)) => Some((addr.addr(), 128)),
                (IaKind::Pd, DhcpOption::IaPrefix(prefix)) => {
                    Some((prefix.prefix(), prefix.prefix_len()))
                }
                _ => None,
            })
    }

    /// What the client would like for a new binding of this IA: for an IA_PD, the first IA
    /// Prefix option's length (when not 0) and prefix (when not `::`).
    ///
    /// RFC 9915 §18.2.1, in substance:
    /// The client MAY include values in IA Prefix options encapsulated within IA_PD options as
    /// hints for the delegated prefix and/or prefix length for which the client has a
    /// preference.
    pub(super) fn hint(&self) -> Hint {
        let Ia::Pd(ia) = self else {
            return Hint::default();
        };
        let first = ia
            .options()
            .map_while(Result::ok)
            .find_map(|option| match option {
                DhcpOption::IaPrefix(prefix) => Some((prefix.prefix(), prefix.prefix_len())),
                _ => None,
            });
        match first {
            Some((prefix, len)) if len != 0 => Hint {
                len: Some(len),
                prefix: (!prefix.is_unspecified()).then_some(u128::from(prefix)),
            },
            _ => Hint::default(),
        }
    }

    /// Opens the IA option of the reply with these T1 and T2.
    pub(super) fn begin(
        &self,
        w: &mut MessageWriter<'_>,
        t1: u32,
        t2: u32,
    ) -> Result<OptionMark, WriteError> {
        match self {
            Ia::Na(ia) => w.begin_ia_na(ia.iaid(), t1, t2),
            Ia::Pd(ia) => w.begin_ia_pd(ia.iaid(), t1, t2),
        }
    }
}

/// A client's preference for a new delegated prefix (RFC 9915 §18.2.1, RFC 8168).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Hint {
    /// The prefix length it asks for.
    pub(super) len: Option<u8>,
    /// The prefix it asks for (with that length).
    pub(super) prefix: Option<u128>,
}

/// The Client Link-Layer Address (RFC 6939) the innermost relay reported.
pub(super) fn client_link_layer<'a>(chain: &RelayChain<'a>) -> Option<(u16, &'a [u8])> {
    chain
        .innermost()
        .options()
        .map_while(Result::ok)
        .find_map(|option| match option {
            DhcpOption::ClientLinkLayerAddr { hw_type, addr } => Some((hw_type, addr)),
            _ => None,
        })
}

/// The link-layer address inside a DUID-LLT or DUID-LL.
pub(super) fn duid_link_layer(duid: &[u8]) -> Option<(u16, &[u8])> {
    let kind = u16::from_be_bytes([*duid.first()?, *duid.get(1)?]);
    let hw_type = u16::from_be_bytes([*duid.get(2)?, *duid.get(3)?]);
    match kind {
        1 => Some((hw_type, duid.get(8..)?)),
        3 => Some((hw_type, duid.get(4..)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bit_set_of_codes_acted_on_is_the_list() {
        for code in 0..=u16::MAX {
            assert_eq!(
                ClientRequest::acts_on(code),
                ClientRequest::ACTED_ON.contains(&code),
                "option code {code}"
            );
        }
    }
}
