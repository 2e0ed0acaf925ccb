//! Relay data kept with each binding: what the relay agents of a relayed client said about it
//! (RFC 5007 §4.1.2.4 LQ Relay Data, and the Relay-ID, link-address and Remote-ID queries of
//! RFC 5460), and the store that keeps it in the table at a few bytes per lease.
//!
//! # What is kept
//!
//! For each relay hop (outermost first, as received): the hop-count, link-address and
//! peer-address of its Relay-forward header, and those of its options that identify the
//! relay or the subscriber ([`KEPT_OPTIONS`]: Interface-Id, Remote-ID, Subscriber-ID, Client
//! Link-Layer Address, Relay-ID and the Vendor-specific Information option). The Relay Message
//! option (the client's message) and every other option are left out. At most
//! [`MAX_RELAY_DATA_LEN`] bytes are kept: options past that are left out and counted
//! ([`RelayData::from_chain`] reports how many).
//!
//! # Canonical encoding ([`RelayData::as_bytes`], journal)
//!
//! ```text
//! hops u8 (1..=8; plus 0x80 when a source follows) | [source (16)] | per hop, outermost first:
//!     hop-count u8 | link-address (16) | peer-address (16) | options length u16 (big endian)
//!     | options, each code u16 | length u16 | body (big endian, as on the wire)
//! ```
//!
//! The source is the IPv6 source address of the datagram that carried the outermost
//! Relay-forward: the relay agent the server heard from (RFC 5007 §4.1.2.4's peer-address of
//! the LQ Relay Data option, and where a Reconfigure is sent through the relays). Relay data
//! stored before it was kept has none (a first byte without 0x80).
//!
//! The innermost hop's options are in a canonical order: Interface-Id and Relay-ID first, then
//! the others, then the last Client Link-Layer Address of an Ethernet-sized (6-octet)
//! address; each group in the order received. (The last, so that putting the order in place
//! a second time changes nothing: a relay sends one such option, but a chain with two is
//! kept as well.) The Relay-forward message of RFC 5007 is
//! rebuilt from it by [`RelayData::write_relay_message`].
//!
//! # How the table keeps it
//!
//! Most of it is the same for many clients: a CMTS or BNG puts the same link-address,
//! peer-address, Interface-Id and Relay-ID on every client it relays, and a cable modem the
//! same Remote-ID on every device behind it. The table keeps it in three parts:
//!
//! - a **path** (interned, reference counted): the datagram's source, every hop but the
//!   innermost one, and the innermost one's hop-count, link-address, Interface-Id and
//!   Relay-ID: one per relay port;
//! - a **subscriber** part (interned, reference counted, holding a reference to its path):
//!   the innermost hop's other options (Remote-ID, Subscriber-ID, vendor options), and its
//!   peer-address unless that is a link-local address: one per subscriber line or modem;
//! - **per client**, inline in the lease record (21 bytes): the subscriber part's handle, the
//!   interface identifier of a link-local innermost peer-address (a client sends from its
//!   link-local address, RFC 9915 §13.1) and an Ethernet Client Link-Layer Address.
//!
//! Interned parts of at most 22 bytes live in their entry; longer ones on the heap. A lease
//! released, expired or given other relay data drops its reference; an entry without
//! references is freed at once.

use std::hash::{BuildHasher, RandomState};
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::HashSet;
use parking_lot::Mutex;
use xdhcp6_proto::{OptionCode, RawOptions, RelayChain};

use super::intern_index::{InternIndex, MAX_SLOT};
use super::lease::DuidBuf;

/// The most bytes of relay data kept for one lease (the canonical encoding).
pub const MAX_RELAY_DATA_LEN: usize = 512;

/// The most relay hops kept (RFC 9915 §7.6 HOP_COUNT_LIMIT).
pub const MAX_RELAY_HOPS: usize = 8;

/// The relay options kept: Interface-Id (18), Remote-ID (37), Subscriber-ID (38), Client
/// Link-Layer Address (79), Relay-ID (53) and Vendor-specific Information (17).
pub const KEPT_OPTIONS: [u16; 6] = [18, 37, 38, 79, 53, 17];

const INTERFACE_ID: u16 = 18;
const REMOTE_ID: u16 = 37;
const SUBSCRIBER_ID: u16 = 38;
const CLIENT_LINK_LAYER: u16 = 79;
const RELAY_ID: u16 = 53;

/// Bytes of a hop's header in the canonical encoding.
const HOP_HEADER_LEN: usize = 1 + 16 + 16 + 2;

/// The bit of the first byte that says the datagram's source address follows it.
const SOURCE_FLAG: u8 = 0x80;

/// Splits the first byte (hop count and [`SOURCE_FLAG`]) and the source off an encoding (the
/// canonical one, or an interned path, which starts the same way).
fn split_head(bytes: &[u8]) -> Option<(u8, Option<Ipv6Addr>, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    if first & SOURCE_FLAG == 0 {
        return Some((first, None, rest));
    }
    let (source, rest) = rest.split_first_chunk::<16>()?;
    Some((first & !SOURCE_FLAG, Some(Ipv6Addr::from(*source)), rest))
}

/// The relay data of one binding: the relay chain it was last bound or extended through,
/// without the client's message. Cheap to clone (shared bytes).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RelayData(Arc<[u8]>);

/// One relay hop of [`RelayData`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayHop<'a> {
    header: &'a [u8; HOP_HEADER_LEN],
    options: &'a [u8],
}

/// What [`RelayData::from_chain`] kept of a relay chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// The relay data.
    pub data: RelayData,
    /// Kept options left out because the data would have grown past [`MAX_RELAY_DATA_LEN`].
    pub cut: u32,
}

impl RelayData {
    /// The relay data of a relayed message received from `source` (the datagram's IPv6
    /// source address, when the datapath knows it): its hops and their [`KEPT_OPTIONS`], at
    /// most [`MAX_RELAY_DATA_LEN`] bytes of them. `None` for a chain too deep, or whose
    /// options are malformed (the engine drops such messages before).
    pub fn from_chain(chain: &RelayChain<'_>, source: Option<Ipv6Addr>) -> Option<Captured> {
        // Built on the stack: the relay data's `Arc` is the one allocation.
        let mut hops = [None; MAX_RELAY_HOPS];
        let mut count = 0;
        for hop in chain.hops() {
            *hops.get_mut(count)? = Some(hop);
            count += 1;
        }
        if count == 0 {
            return None;
        }
        let mut out = Encoding::new();
        out.push_head(count as u8, source)?;
        // The options' budget is the same with or without a source.
        let mut budget = MAX_RELAY_DATA_LEN - 1 - 16 - count * HOP_HEADER_LEN;
        let mut cut = 0;
        for (index, hop) in hops.iter().flatten().enumerate() {
            let mut wanted = 0;
            for raw in hop.options().raw() {
                if KEPT_OPTIONS.contains(&raw.ok()?.code) {
                    wanted += 1;
                }
            }
            let start = budget;
            let kept = || kept_options(hop.options().raw(), start);
            let (taken, len) =
                kept().fold((0, 0), |(n, len), (_, body)| (n + 1, len + 4 + body.len()));
            cut += wanted - taken;
            budget -= len;
            out.push(&[hop.hop_count()])?;
            out.push(&hop.link_address().octets())?;
            out.push(&hop.peer_address().octets())?;
            out.push(&(len as u16).to_be_bytes())?;
            if index + 1 == count {
                out.push_canonical(kept)?;
            } else {
                for (code, body) in kept() {
                    out.push_option(code, body)?;
                }
            }
        }
        Some(Captured {
            data: Self(out.as_bytes().into()),
            cut,
        })
    }

    /// Relay data from its canonical encoding ([`Self::as_bytes`]); `None` unless `bytes` is
    /// one: at most [`MAX_RELAY_DATA_LEN`] bytes, 1 to [`MAX_RELAY_HOPS`] hops, an optional
    /// source, well-framed options, the innermost hop's in canonical order.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_RELAY_DATA_LEN {
            return None;
        }
        let (count, _, mut rest) = split_head(bytes)?;
        if count == 0 || usize::from(count) > MAX_RELAY_HOPS {
            return None;
        }
        let mut innermost = None;
        for _ in 0..count {
            let (hop, after) = split_hop(rest)?;
            options(hop.options).try_for_each(|option| option.map(|_| ()))?;
            innermost = Some(hop);
            rest = after;
        }
        let innermost = innermost?;
        if !rest.is_empty() {
            return None;
        }
        // Well framed, so the options are in canonical order exactly when writing them in
        // that order gives the same bytes.
        let mut canonical = Encoding::new();
        canonical.push_canonical(|| options(innermost.options).map_while(|option| option))?;
        (canonical.as_bytes() == innermost.options).then(|| Self(bytes.into()))
    }

    /// The canonical encoding (see the module documentation): what the journal keeps.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The relay hops, outermost (the relay the server heard from) first.
    pub fn hops(&self) -> impl Iterator<Item = RelayHop<'_>> + '_ {
        let mut rest = split_head(&self.0).map_or(&[][..], |(_, _, rest)| rest);
        std::iter::from_fn(move || {
            let (hop, after) = split_hop(rest)?;
            rest = after;
            Some(hop)
        })
    }

    /// The number of relay hops.
    pub fn hop_len(&self) -> usize {
        usize::from(self.0.first().copied().unwrap_or(0) & !SOURCE_FLAG)
    }

    /// The IPv6 source address of the datagram that carried the outermost Relay-forward: the
    /// relay agent the server received the client's message from (RFC 5007 §4.1.2.4's
    /// peer-address). `None` for relay data stored without it (an older journal).
    pub fn source(&self) -> Option<Ipv6Addr> {
        split_head(&self.0).and_then(|(_, source, _)| source)
    }

    /// The relay closest to the client.
    pub fn innermost(&self) -> Option<RelayHop<'_>> {
        self.hops().last()
    }

    /// The outermost relay, the one the server heard from.
    pub fn outermost(&self) -> Option<RelayHop<'_>> {
        self.hops().next()
    }

    /// The peer-address field of the outermost Relay-forward (the address of the client or
    /// relay that the outermost relay heard from; the relay's own address is [`Self::source`]).
    pub fn peer_address(&self) -> Option<Ipv6Addr> {
        self.outermost().map(|hop| hop.peer_address())
    }

    /// The first option `code` of the relays, from the one closest to the client outwards.
    pub fn option(&self, code: u16) -> Option<&[u8]> {
        let mut hops = [None; MAX_RELAY_HOPS];
        for (hop, slot) in self.hops().zip(hops.iter_mut()) {
            *slot = Some(hop);
        }
        hops.into_iter()
            .rev()
            .flatten()
            .find_map(|hop| hop.option(code))
    }

    /// The Relay-ID option's DUID (RFC 5460 §5.4.1), the closest relay's first.
    pub fn relay_id(&self) -> Option<&[u8]> {
        self.option(RELAY_ID)
    }

    /// The Remote-ID option's body: enterprise number (4 octets) then the remote-id (RFC 4649).
    pub fn remote_id(&self) -> Option<&[u8]> {
        self.option(REMOTE_ID)
    }

    /// The Subscriber-ID option's body (RFC 4580).
    pub fn subscriber_id(&self) -> Option<&[u8]> {
        self.option(SUBSCRIBER_ID)
    }

    /// The Interface-Id option's body (RFC 9915 §21.18), the closest relay's first.
    pub fn interface_id(&self) -> Option<&[u8]> {
        self.option(INTERFACE_ID)
    }

    /// The Client Link-Layer Address (RFC 6939): hardware type and address.
    pub fn client_link_layer(&self) -> Option<(u16, &[u8])> {
        let body = self.innermost()?.option(CLIENT_LINK_LAYER)?;
        let (hw_type, addr) = body.split_first_chunk::<2>()?;
        Some((u16::from_be_bytes(*hw_type), addr))
    }

    /// The length of [`Self::write_relay_message`]'s output.
    pub fn relay_message_len(&self) -> usize {
        self.hops()
            .map(|hop| 34 + hop.options.len() + 4)
            .sum::<usize>()
            - 4
    }

    /// Appends the Relay-forward message as received, without the client's message, for the
    /// DHCP-relay-message field of an LQ Relay Data option (RFC 5007 §4.1.2.4): each hop's
    /// Relay-forward header and kept options, the outer hops' Relay Message options holding
    /// the next hop, the innermost one without a Relay Message option.
    pub fn write_relay_message(&self, out: &mut Vec<u8>) {
        let hops: Vec<_> = self.hops().collect();
        let mut inner = 0;
        let mut lens = vec![0; hops.len()];
        for (hop, len) in hops.iter().zip(lens.iter_mut()).rev() {
            *len = inner;
            inner += 34 + hop.options.len() + if inner == 0 { 0 } else { 4 };
        }
        for (index, hop) in hops.iter().enumerate() {
            out.push(12); // RELAY-FORW
            out.push(hop.hop_count());
            out.extend_from_slice(&hop.link_address().octets());
            out.extend_from_slice(&hop.peer_address().octets());
            out.extend_from_slice(hop.options);
            if index + 1 < hops.len() {
                out.extend_from_slice(&u16::from(OptionCode::RelayMsg).to_be_bytes());
                out.extend_from_slice(&(lens[index] as u16).to_be_bytes());
            }
        }
    }
}

impl std::fmt::Debug for RelayData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.hops()).finish()
    }
}

impl<'a> RelayHop<'a> {
    /// The hop-count of its Relay-forward.
    pub fn hop_count(&self) -> u8 {
        self.header[0]
    }

    /// The link-address.
    pub fn link_address(&self) -> Ipv6Addr {
        let mut octets = [0; 16];
        octets.copy_from_slice(&self.header[1..17]);
        Ipv6Addr::from(octets)
    }

    /// The peer-address.
    pub fn peer_address(&self) -> Ipv6Addr {
        let mut octets = [0; 16];
        octets.copy_from_slice(&self.header[17..33]);
        Ipv6Addr::from(octets)
    }

    /// The kept options, as (code, body).
    pub fn options(&self) -> impl Iterator<Item = (u16, &'a [u8])> + 'a {
        options(self.options).map_while(|option| option)
    }

    /// The options' encoding (code, length, body each), as on the wire.
    pub fn options_bytes(&self) -> &'a [u8] {
        self.options
    }

    /// The first option `code` of this hop.
    pub fn option(&self, code: u16) -> Option<&'a [u8]> {
        self.options()
            .find(|&(other, _)| other == code)
            .map(|(_, body)| body)
    }
}

/// Splits one hop off the canonical encoding.
fn split_hop(bytes: &[u8]) -> Option<(RelayHop<'_>, &[u8])> {
    let (header, rest) = bytes.split_first_chunk::<HOP_HEADER_LEN>()?;
    let len = usize::from(u16::from_be_bytes([header[33], header[34]]));
    let (options, rest) = rest.split_at_checked(len)?;
    Some((RelayHop { header, options }, rest))
}

/// The options of `bytes`: `Some(None)` (then nothing) at a framing error.
fn options(mut bytes: &[u8]) -> impl Iterator<Item = Option<(u16, &[u8])>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let parsed = bytes.split_first_chunk::<4>().and_then(|(head, rest)| {
            let code = u16::from_be_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            rest.split_at_checked(len)
                .map(|(body, rest)| (code, body, rest))
        });
        match parsed {
            Some((code, body, rest)) => {
                bytes = rest;
                Some(Some((code, body)))
            }
            None => {
                bytes = &[];
                Some(None)
            }
        }
    })
}

/// The options of `raw` that [`KEPT_OPTIONS`] names and that fit in `budget` bytes, decided
/// in the order received (each costs its body and 4 bytes of header); stops at a framing
/// error.
fn kept_options<'a>(
    raw: RawOptions<'a>,
    mut budget: usize,
) -> impl Iterator<Item = (u16, &'a [u8])> + 'a {
    raw.map_while(Result::ok).filter_map(move |raw| {
        let cost = 4 + raw.data.len();
        if !KEPT_OPTIONS.contains(&raw.code) || raw.data.len() > usize::from(u16::MAX) {
            return None;
        }
        budget = budget.checked_sub(cost)?;
        Some((raw.code, raw.data))
    })
}

/// The position among the innermost hop's `options` of the one kept inline: the last
/// Ethernet-sized Client Link-Layer Address. The canonical order puts it last, where it is
/// still the last one.
fn inline_position<'a>(options: impl Iterator<Item = (u16, &'a [u8])>) -> Option<usize> {
    options
        .enumerate()
        .filter(|(_, (code, body))| *code == CLIENT_LINK_LAYER && body.len() == 8)
        .map(|(position, _)| position)
        .last()
}

/// Where the option `code` at `position` among the innermost hop's options is kept
/// ([`CLASS_PATH`], [`CLASS_SUBSCRIBER`] or [`CLASS_INLINE`]), `inline` being
/// [`inline_position`] of those options.
fn class(position: usize, code: u16, inline: Option<usize>) -> u8 {
    if inline == Some(position) {
        CLASS_INLINE
    } else if matches!(code, INTERFACE_ID | RELAY_ID) {
        CLASS_PATH
    } else {
        CLASS_SUBSCRIBER
    }
}

/// Kept with the path (Interface-Id, Relay-ID).
const CLASS_PATH: u8 = 0;
/// Kept with the subscriber part.
const CLASS_SUBSCRIBER: u8 = 1;
/// Kept inline in the record: the last Ethernet-sized Client Link-Layer Address.
const CLASS_INLINE: u8 = 2;

/// Bytes being written on the stack: a canonical encoding ([`MAX_RELAY_DATA_LEN`]), or an
/// interned part of one (a subscriber part adds a path handle, a peer kind and a peer-address
/// to the innermost hop's options).
struct Encoding {
    bytes: [u8; MAX_RELAY_DATA_LEN + 4 + 1 + 16],
    len: usize,
}

impl Encoding {
    fn new() -> Self {
        Self {
            bytes: [0; MAX_RELAY_DATA_LEN + 4 + 1 + 16],
            len: 0,
        }
    }

    /// Appends `data`; `None` (and nothing written) past the buffer's end.
    fn push(&mut self, data: &[u8]) -> Option<()> {
        let end = self.len.checked_add(data.len())?;
        self.bytes.get_mut(self.len..end)?.copy_from_slice(data);
        self.len = end;
        Some(())
    }

    /// Appends the first byte (hop count, and [`SOURCE_FLAG`] when a source follows) and the
    /// source: what [`split_head`] splits off.
    fn push_head(&mut self, hops: u8, source: Option<Ipv6Addr>) -> Option<()> {
        match source {
            Some(source) => {
                self.push(&[hops | SOURCE_FLAG])?;
                self.push(&source.octets())
            }
            None => self.push(&[hops]),
        }
    }

    fn push_option(&mut self, code: u16, body: &[u8]) -> Option<()> {
        self.push(&code.to_be_bytes())?;
        self.push(&(body.len() as u16).to_be_bytes())?;
        self.push(body)
    }

    /// Appends the innermost hop's `options` in canonical order: the path's class, the
    /// subscriber's, then the inline one, each in the order given. `options` is walked once
    /// per class.
    fn push_canonical<'a, I>(&mut self, options: impl Fn() -> I) -> Option<()>
    where
        I: Iterator<Item = (u16, &'a [u8])>,
    {
        let inline = inline_position(options());
        for wanted in [CLASS_PATH, CLASS_SUBSCRIBER, CLASS_INLINE] {
            for (position, (code, body)) in options().enumerate() {
                if class(position, code, inline) == wanted {
                    self.push_option(code, body)?;
                }
            }
        }
        Some(())
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }
}

/// The per-client part of a lease's relay data, inline in its record (20 bytes).
#[derive(Clone, Copy, Default)]
pub(super) struct RelayTail {
    /// The subscriber part's handle plus one (0: no relay data) in the low 31 bits, and
    /// [`HAS_LINK_LAYER`]: interner handles stay below 2^31.
    handle: u32,
    /// The interface identifier of the link-local innermost peer-address.
    iid: [u8; 8],
    /// An Ethernet Client Link-Layer Address: hardware type then address.
    link_layer: [u8; 8],
}

/// The bit of [`RelayTail::handle`] that says `link_layer` holds an address.
const HAS_LINK_LAYER: u32 = 1 << 31;

impl RelayTail {
    pub(super) fn is_none(&self) -> bool {
        self.handle() == 0
    }

    /// The subscriber part's handle plus one; 0: no relay data.
    fn handle(&self) -> u32 {
        self.handle & !HAS_LINK_LAYER
    }

    fn has_link_layer(&self) -> bool {
        self.handle & HAS_LINK_LAYER != 0
    }
}

/// The shards of each interner (a power of two).
const INTERN_SHARDS: usize = 64;
const INTERN_SHARD_BITS: u32 = INTERN_SHARDS.trailing_zeros();

/// Interned byte strings with reference counts, sharded by hash.
struct Interner {
    shards: Box<[Mutex<InternShard>]>,
    state: RandomState,
}

#[derive(Default)]
struct InternShard {
    entries: Slab,
    free: Vec<u32>,
    /// Slots by their entry's hash (`table/intern_index.rs`). It never grows by itself: see
    /// [`IndexGrowth`].
    index: InternIndex,
    /// The index being moved into `index`, a few slots at every call (empty but while an
    /// index grows).
    moving: InternIndex,
    growth: IndexGrowth,
    live: usize,
    heap_bytes: usize,
}

/// Slab slots walked at each [`Interner::intern`] call while an index grows ([`IndexGrowth`]):
/// each live one costs a hash of its entry and an insert into the new index, about 100 ns.
const MOVE_STEP: usize = 2;

/// The fewest entries an index is made for when it grows.
const MIN_INDEX: usize = 16;

/// How a shard's index grows without rehashing all its entries inside one request.
///
/// An index that is full rehashes every entry of the shard into a new one at once, in
/// the call that crossed the line: a SipHash and a slab read per entry, 3 ms for a shard of
/// 28,000 entries. The shards fill evenly, so all 64 crossed it within a few thousand new
/// entries of each other: a worker that binds new subscribers stalled for some 200 ms. Now the
/// full index becomes `moving`, a new one for twice its entries takes the inserts, and every
/// call walks the next [`MOVE_STEP`] slots of the slab, indexing their live entries anew;
/// lookups look in the new index, then in `moving`, until the walk is over and `moving` is
/// dropped. Meanwhile no freed slot is reused (a new entry goes past the walk's end), so that
/// every live slot the walk meets is one that `moving` indexed. An entry indexed anew stays in
/// `moving` too, where nothing finds it first; one released is taken out of the new index, and
/// what `moving` still names for it is a slot without references, which no lookup matches.
///
/// The walk ends after `end / MOVE_STEP` calls, having added at most as many new entries: the
/// new index, made for twice the old one's, never grows by itself during it (only a shard whose
/// slab is mostly free slots could fill it first; its growth then ends the walk at once).
/// Spread so, the move costs the worker a few per cent for as long as it takes its subscribers
/// to grow by half the store's size, where sixteen slots a call had made it a second of
/// overload at 82,000 new clients a second.
///
/// The shards fill evenly, so they would all grow within the same second, each allocating its
/// new index (the page faults of 20 MB, and the control bytes' writes, for the 64 shards of
/// the bench's store) and starting its walk: about a tenth of the worker's core for a second
/// at 82,000 new clients a second. Each shard grows instead when the index is as full as its
/// number says, from three quarters (shard 63) to full (shard 0) of the entries it holds
/// without growing (`early`), but not before it holds the entries it was made for: over the
/// subscribers' growth by up to a quarter of the store.
#[derive(Default)]
struct IndexGrowth {
    /// The entries the index is made for (the start's sizing, then each growth's).
    planned: usize,
    /// The next slot to walk, and the slab's length when the move began.
    next: usize,
    end: usize,
    /// The shard's number among the interner's, which sets how early it grows.
    shard: usize,
    /// How many entries before the index is full it grows.
    early: usize,
}

impl IndexGrowth {
    /// The growth of shard `shard` (of [`INTERN_SHARDS`]) of an index made for `planned`
    /// entries, holding `capacity` without growing.
    fn new(shard: usize, planned: usize, capacity: usize) -> Self {
        let mut growth = Self {
            planned,
            shard,
            ..Self::default()
        };
        growth.set_early(capacity);
        growth
    }

    /// Sets how early an index of `capacity` entries grows: shard `n` of `INTERN_SHARDS`
    /// at a fill of `1 - n / (4 INTERN_SHARDS)`.
    fn set_early(&mut self, capacity: usize) {
        self.early = capacity * self.shard / (4 * INTERN_SHARDS);
    }
}

/// An entry's hash for the index (that of its bytes); 0 for a slot without an entry, which
/// the index never holds.
fn slot_hash(entries: &Slab, state: &RandomState, slot: u32) -> u64 {
    entries
        .get(slot as usize)
        .map_or(0, |entry| state.hash_one(entry.bytes.as_bytes()))
}

impl InternShard {
    /// The slot of the live entry holding `bytes` (of `hash`), in either index.
    fn find(&self, hash: u64, bytes: &[u8]) -> Option<u32> {
        let entries = &self.entries;
        let eq = |slot: u32| {
            entries
                .get(slot as usize)
                .is_some_and(|entry| entry.refs > 0 && entry.bytes.as_bytes() == bytes)
        };
        self.index
            .find(hash, eq)
            .or_else(|| self.moving.find(hash, eq))
    }

    /// The slot for a new entry: a freed one, unless an index is growing, or the slab's next;
    /// `None` when the shard is full. Starts a growth first when the index is full enough
    /// ([`IndexGrowth`]).
    fn new_slot(&mut self, state: &RandomState) -> Option<u32> {
        // Early only between walks (a walk under way ends before its index is full), and
        // never before the index holds what it was made for.
        let capacity = self.index.capacity();
        let line = if self.moving.is_empty() {
            capacity
                .saturating_sub(self.growth.early)
                .max(self.growth.planned.min(capacity))
        } else {
            capacity
        };
        if self.index.len() >= line {
            self.grow(state);
        }
        if self.moving.is_empty()
            && let Some(slot) = self.free.pop()
        {
            return Some(slot);
        }
        u32::try_from(self.entries.len())
            .ok()
            .filter(|&slot| slot <= MAX_SLOT)
    }

    /// Indexes a new entry's `slot` (of `hash`).
    fn index(&mut self, hash: u64, slot: u32, state: &RandomState) {
        let entries = &self.entries;
        self.index
            .insert_unique(hash, slot, |slot| slot_hash(entries, state, slot));
    }

    /// Takes `slot` (of `hash`) out of the index that finds it first.
    fn unindex(&mut self, hash: u64, slot: u32) {
        if !self.index.remove(hash, slot) {
            self.moving.remove(hash, slot);
        }
    }

    /// Makes the index (full, or as full as the shard's `early` says) `moving` and a new one,
    /// for twice its entries (or the size planned before, when deletions' tombstones filled
    /// it), takes the inserts.
    fn grow(&mut self, state: &RandomState) {
        // A walk still under way ends here, at once (see `IndexGrowth`).
        self.step(state, usize::MAX);
        self.growth.planned = self
            .growth
            .planned
            .max(self.index.len().saturating_mul(2))
            .max(MIN_INDEX);
        let full = std::mem::replace(
            &mut self.index,
            InternIndex::with_capacity(self.growth.planned),
        );
        self.growth.set_early(self.index.capacity());
        if !full.is_empty() {
            self.moving = full;
            self.growth.next = 0;
            self.growth.end = self.entries.len();
        }
    }

    /// Indexes anew the live entries of the next `slots` slots of the walk; drops `moving`
    /// once the walk is over.
    fn step(&mut self, state: &RandomState, slots: usize) {
        if self.moving.is_empty() {
            return;
        }
        let end = self.growth.end.min(self.growth.next.saturating_add(slots));
        let entries = &self.entries;
        for slot in self.growth.next..end {
            if let Some(entry) = entries.get(slot).filter(|entry| entry.refs > 0) {
                self.index.insert_unique(
                    state.hash_one(entry.bytes.as_bytes()),
                    slot as u32,
                    |slot| slot_hash(entries, state, slot),
                );
            }
        }
        self.growth.next = end;
        if end >= self.growth.end {
            self.moving = InternIndex::new();
        }
    }
}

/// 32 bytes: parts of at most 22 bytes (a Remote-ID, or a short path) live inline.
struct Entry {
    bytes: DuidBuf,
    refs: u32,
}

/// Entries per chunk of a [`Slab`] (32 KiB).
const CHUNK: usize = 1024;

/// Entries in fixed chunks: growing never copies nor leaves the old array behind, so the
/// memory held stays in proportion to the entries (a `Vec` doubling would leave freed arrays
/// of up to half its size in the allocator).
#[derive(Default)]
struct Slab {
    chunks: Vec<Box<[Entry]>>,
    len: usize,
}

impl Slab {
    fn get(&self, slot: usize) -> Option<&Entry> {
        self.chunks.get(slot / CHUNK)?.get(slot % CHUNK)
    }

    fn get_mut(&mut self, slot: usize) -> Option<&mut Entry> {
        self.chunks.get_mut(slot / CHUNK)?.get_mut(slot % CHUNK)
    }

    fn len(&self) -> usize {
        self.len
    }

    /// A slab with the whole chunks of `entries` entries made (written) now, so that a new
    /// entry up to that many takes no allocation and no page fault inside a request (a small
    /// slab makes its one chunk when it first needs it).
    fn with_capacity(entries: usize) -> Self {
        Self {
            chunks: (0..entries / CHUNK).map(|_| Self::chunk()).collect(),
            len: 0,
        }
    }

    fn chunk() -> Box<[Entry]> {
        (0..CHUNK)
            .map(|_| Entry {
                bytes: DuidBuf::empty(),
                refs: 0,
            })
            .collect()
    }

    fn push(&mut self, entry: Entry) {
        if self.len == self.chunks.len() * CHUNK {
            self.chunks.push(Self::chunk());
        }
        let slot = self.len;
        if let Some(free) = self.get_mut(slot) {
            *free = entry;
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.iter())
            .take(self.len)
    }
}

impl Interner {
    /// An interner whose index holds `entries` entries without growing. An index that grows
    /// rehashes every entry of its shard at once, under the shard's lock, inside the request
    /// that crossed the threshold; sized at start, its control bytes (one per slot) are all
    /// it writes before use. The entries' slab is made for as many at start too.
    fn with_capacity(entries: usize) -> Self {
        let per_shard = entries.div_ceil(INTERN_SHARDS);
        Self {
            shards: (0..INTERN_SHARDS)
                .map(|shard| {
                    let index = InternIndex::with_capacity(per_shard);
                    Mutex::new(InternShard {
                        growth: IndexGrowth::new(shard, per_shard, index.capacity()),
                        index,
                        entries: Slab::with_capacity(per_shard),
                        ..InternShard::default()
                    })
                })
                .collect(),
            state: RandomState::new(),
        }
    }

    /// Takes a reference to `bytes`' entry, made if needed (then `true`); `None` if the shard
    /// is full.
    fn intern(&self, bytes: &[u8]) -> Option<(u32, bool)> {
        let hash = self.state.hash_one(bytes);
        let shard_index = hash as usize & (INTERN_SHARDS - 1);
        let mut shard = self.shards[shard_index].lock();
        let shard = &mut *shard;
        shard.step(&self.state, MOVE_STEP);
        if let Some(slot) = shard.find(hash, bytes) {
            if let Some(entry) = shard.entries.get_mut(slot as usize) {
                entry.refs += 1;
            }
            return Some((slot << INTERN_SHARD_BITS | shard_index as u32, false));
        }
        let entry = Entry {
            bytes: DuidBuf::new(bytes),
            refs: 1,
        };
        let slot = shard.new_slot(&self.state)?;
        if slot as usize == shard.entries.len() {
            shard.entries.push(entry);
        } else {
            *shard.entries.get_mut(slot as usize)? = entry;
        }
        if bytes.len() > super::INLINE_DUID_LEN {
            shard.heap_bytes += bytes.len();
        }
        shard.live += 1;
        shard.index(hash, slot, &self.state);
        Some((slot << INTERN_SHARD_BITS | shard_index as u32, true))
    }

    /// Drops a reference; returns the bytes of an entry that it freed.
    fn release(&self, handle: u32) -> Option<DuidBuf> {
        let (shard, slot) = split_handle(handle);
        let mut shard = self.shards.get(shard)?.lock();
        let entry = shard.entries.get_mut(slot)?;
        if entry.refs == 0 {
            return None;
        }
        entry.refs -= 1;
        if entry.refs > 0 {
            return None;
        }
        let bytes = std::mem::replace(&mut entry.bytes, DuidBuf::empty());
        shard.unindex(self.state.hash_one(bytes.as_bytes()), slot as u32);
        shard.free.push(slot as u32);
        shard.live -= 1;
        if bytes.is_spilled() {
            shard.heap_bytes -= bytes.as_bytes().len();
        }
        Some(bytes)
    }

    /// Calls `f` with the bytes of `handle`'s entry.
    fn with<T>(&self, handle: u32, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        let (shard, slot) = split_handle(handle);
        let shard = self.shards.get(shard)?.lock();
        let entry = shard.entries.get(slot).filter(|entry| entry.refs > 0)?;
        Some(f(entry.bytes.as_bytes()))
    }

    /// Calls `f` with every live entry's handle and bytes, one shard locked at a time.
    fn each(&self, mut f: impl FnMut(u32, &[u8])) {
        for (index, shard) in self.shards.iter().enumerate() {
            let shard = shard.lock();
            for (slot, entry) in shard.entries.iter().enumerate() {
                if entry.refs > 0 {
                    f(
                        (slot as u32) << INTERN_SHARD_BITS | index as u32,
                        entry.bytes.as_bytes(),
                    );
                }
            }
        }
    }

    fn stats(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(live, heap), shard| {
            let shard = shard.lock();
            (live + shard.live, heap + shard.heap_bytes)
        })
    }
}

fn split_handle(handle: u32) -> (usize, usize) {
    (
        handle as usize & (INTERN_SHARDS - 1),
        (handle >> INTERN_SHARD_BITS) as usize,
    )
}

/// What the relay data store holds ([`super::LeaseTable::relay_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Interned paths (one per relay port, roughly).
    pub paths: usize,
    /// Interned subscriber parts (one per subscriber line or modem, roughly).
    pub subscribers: usize,
    /// Bytes of interned parts too long to live in their entry.
    pub heap_bytes: usize,
    /// Relay options left out because a lease's relay data would have grown past
    /// [`MAX_RELAY_DATA_LEN`] (as reported to [`super::LeaseTable::count_relay_cut`]).
    pub options_cut: u64,
    /// Leases whose relay data could not be stored (an interner full).
    pub not_stored: u64,
}

/// The relay data of the table's leases: two interners and the counters.
pub(super) struct RelayStore {
    paths: Interner,
    subscribers: Interner,
    options_cut: AtomicU64,
    not_stored: AtomicU64,
}

/// Where the subscriber part says the innermost peer-address is.
const PEER_LINK_LOCAL: u8 = 0;
const PEER_FULL: u8 = 1;

impl RelayStore {
    /// A store sized for `subscribers` subscriber parts (the table passes its expected leases
    /// over [`super::LEASES_PER_SUBSCRIBER`]); more are grown into. Paths, one per relay
    /// port, start empty.
    pub(super) fn with_capacity(subscribers: usize) -> Self {
        Self {
            paths: Interner::with_capacity(0),
            subscribers: Interner::with_capacity(subscribers),
            options_cut: AtomicU64::new(0),
            not_stored: AtomicU64::new(0),
        }
    }

    /// Interns `data` and returns the tail a record keeps (references taken).
    pub(super) fn store(&self, data: Option<&RelayData>) -> RelayTail {
        let Some(data) = data else {
            return RelayTail::default();
        };
        let (mut path, mut subscriber) = (Encoding::new(), Encoding::new());
        let inline = Self::split(data, &mut path, &mut subscriber);
        self.counted(inline.and_then(|inline| self.intern(&path, &mut subscriber, inline)))
    }

    /// `tail`, or no relay data, counted in `not_stored`, when it could not be stored.
    fn counted(&self, tail: Option<RelayTail>) -> RelayTail {
        tail.unwrap_or_else(|| {
            self.not_stored.fetch_add(1, Ordering::Relaxed);
            RelayTail::default()
        })
    }

    /// Writes the parts `data` is kept in into `path` and `subscriber` (both empty; the
    /// subscriber part's first four bytes left for the path's handle) and returns the tail
    /// that the record keeps inline (its handle holding only [`HAS_LINK_LAYER`]). The parts
    /// are written in place: an [`Encoding`] is half a kilobyte.
    fn split(
        data: &RelayData,
        path: &mut Encoding,
        subscriber: &mut Encoding,
    ) -> Option<RelayTail> {
        let count = data.hop_len();
        let innermost = data.innermost()?;
        path.push_head(count as u8, data.source())?;
        for hop in data.hops().take(count - 1) {
            path.push(hop.header)?;
            path.push(hop.options)?;
        }
        let inline = inline_position(innermost.options());
        let path_len: usize = innermost
            .options()
            .enumerate()
            .filter(|&(position, (code, _))| class(position, code, inline) == CLASS_PATH)
            .map(|(_, (_, body))| 4 + body.len())
            .sum();
        path.push(&[innermost.hop_count()])?;
        path.push(&innermost.header[1..17])?;
        path.push(&(path_len as u16).to_be_bytes())?;
        let mut tail = RelayTail::default();
        subscriber.push(&[0; 4])?;
        let peer = innermost.peer_address().octets();
        if peer[..8] == [0xfe, 0x80, 0, 0, 0, 0, 0, 0] {
            subscriber.push(&[PEER_LINK_LOCAL])?;
            tail.iid.copy_from_slice(&peer[8..]);
        } else {
            subscriber.push(&[PEER_FULL])?;
            subscriber.push(&peer)?;
        }
        for (position, (code, body)) in innermost.options().enumerate() {
            match class(position, code, inline) {
                CLASS_PATH => path.push_option(code, body)?,
                CLASS_SUBSCRIBER => subscriber.push_option(code, body)?,
                _ => {
                    tail.link_layer.copy_from_slice(body);
                    tail.handle |= HAS_LINK_LAYER;
                }
            }
        }
        Some(tail)
    }

    /// Interns the parts [`Self::split`] wrote and returns the record's tail: `tail`, the
    /// inline part `split` returned, with the subscriber part's handle.
    fn intern(
        &self,
        path: &Encoding,
        subscriber: &mut Encoding,
        mut tail: RelayTail,
    ) -> Option<RelayTail> {
        let (path, _) = self.paths.intern(path.as_bytes())?;
        let subscriber = subscriber.as_bytes_mut();
        subscriber[..4].copy_from_slice(&path.to_le_bytes());
        let Some((handle, created)) = self.subscribers.intern(subscriber) else {
            self.paths.release(path);
            return None;
        };
        // A subscriber part holds one reference to its path, taken when it was made.
        if !created {
            self.paths.release(path);
        }
        // Interner handles are below 2^31 (slots below 2^25 per shard, 64 shards).
        tail.handle |= (handle + 1) & !HAS_LINK_LAYER;
        Some(tail)
    }

    /// Drops the references of `tail`.
    pub(super) fn release(&self, tail: &RelayTail) {
        let Some(handle) = tail.handle().checked_sub(1) else {
            return;
        };
        if let Some(freed) = self.subscribers.release(handle)
            && let Some(path) = freed.as_bytes().first_chunk::<4>()
        {
            self.paths.release(u32::from_le_bytes(*path));
        }
    }

    /// Replaces the relay data of a record: interns the new one, then drops the old one.
    /// Relay data equal to what the record holds (a Renew through the same relays, the common
    /// case) is left as it is: comparing the parts through their handles costs no hashing
    /// and takes no reference.
    pub(super) fn replace(&self, tail: &mut RelayTail, data: Option<&RelayData>) {
        let new = match data {
            None if tail.is_none() => return,
            None => RelayTail::default(),
            Some(data) => {
                let (mut path, mut subscriber) = (Encoding::new(), Encoding::new());
                let inline = Self::split(data, &mut path, &mut subscriber);
                if inline.is_some_and(|inline| self.holds(tail, &path, &subscriber, &inline)) {
                    return;
                }
                self.counted(inline.and_then(|inline| self.intern(&path, &mut subscriber, inline)))
            }
        };
        self.release(tail);
        *tail = new;
    }

    /// Whether `tail` keeps the relay data [`Self::split`] wrote as `path`, `subscriber` and
    /// `inline`: the same inline tail, and interned parts with the same bytes. The record
    /// holding `tail` holds references to its parts, so their handles name them while the
    /// caller holds the record.
    fn holds(
        &self,
        tail: &RelayTail,
        path: &Encoding,
        subscriber: &Encoding,
        inline: &RelayTail,
    ) -> bool {
        let Some(handle) = tail.handle().checked_sub(1) else {
            return false;
        };
        if inline.has_link_layer() != tail.has_link_layer()
            || inline.iid != tail.iid
            || inline.link_layer != tail.link_layer
        {
            return false;
        }
        let path_handle = self
            .subscribers
            .with(handle, |stored| {
                let (path_handle, rest) = stored.split_first_chunk::<4>()?;
                (subscriber.as_bytes().get(4..) == Some(rest))
                    .then_some(u32::from_le_bytes(*path_handle))
            })
            .flatten();
        path_handle.is_some_and(|path_handle| {
            self.paths
                .with(path_handle, |stored| stored == path.as_bytes())
                .unwrap_or(false)
        })
    }

    /// The relay data of a record. Holds a subscriber shard's lock, then a path shard's (the
    /// one place where interner locks nest, always in this order).
    pub(super) fn load(&self, tail: &RelayTail) -> Option<RelayData> {
        let handle = tail.handle().checked_sub(1)?;
        self.subscribers
            .with(handle, |subscriber| {
                let (path, rest) = subscriber.split_first_chunk::<4>()?;
                self.paths
                    .with(u32::from_le_bytes(*path), |path| join(path, rest, tail))?
            })
            .flatten()
    }

    pub(super) fn count_cut(&self, options: u32) {
        if options > 0 {
            self.options_cut
                .fetch_add(u64::from(options), Ordering::Relaxed);
        }
    }

    pub(super) fn stats(&self) -> RelayStats {
        let (paths, path_heap) = self.paths.stats();
        let (subscribers, sub_heap) = self.subscribers.stats();
        RelayStats {
            paths,
            subscribers,
            heap_bytes: path_heap + sub_heap,
            options_cut: self.options_cut.load(Ordering::Relaxed),
            not_stored: self.not_stored.load(Ordering::Relaxed),
        }
    }

    /// The subscriber handles (plus one, as records keep them) whose relay data matches.
    pub(super) fn matching(&self, query: &RelayQuery<'_>) -> RelayMatch {
        let mut paths = HashSet::new();
        self.paths.each(|handle, bytes| {
            if path_matches(bytes, query) {
                paths.insert(handle);
            }
        });
        let mut handles = HashSet::new();
        self.subscribers.each(|handle, bytes| {
            let Some((path, rest)) = bytes.split_first_chunk::<4>() else {
                return;
            };
            let sub_options = match rest.split_first() {
                Some((&PEER_LINK_LOCAL, rest)) => rest,
                Some((_, rest)) => rest.get(16..).unwrap_or_default(),
                None => return,
            };
            let own = match query {
                RelayQuery::RemoteId(id) => options(sub_options)
                    .map_while(|option| option)
                    .any(|(code, body)| code == REMOTE_ID && body == *id),
                RelayQuery::RelayId(_) | RelayQuery::LinkAddress(_) => false,
            };
            if own || paths.contains(&u32::from_le_bytes(*path)) {
                handles.insert(handle + 1);
            }
        });
        RelayMatch {
            handles,
            query: OwnedQuery::of(query),
        }
    }
}

/// The relay data of a record from its path, its subscriber part (after the path handle) and
/// its tail.
fn join(path: &[u8], subscriber: &[u8], tail: &RelayTail) -> Option<RelayData> {
    let (&peer_kind, rest) = subscriber.split_first()?;
    let (peer, sub_options) = match peer_kind {
        PEER_LINK_LOCAL => {
            let mut peer = [0; 16];
            peer[..2].copy_from_slice(&[0xfe, 0x80]);
            peer[8..].copy_from_slice(&tail.iid);
            (peer, rest)
        }
        _ => {
            let (peer, rest) = rest.split_first_chunk::<16>()?;
            (*peer, rest)
        }
    };
    // The path ends with the innermost hop: hop-count, link-address, options length and the
    // path-class options.
    let (count, source, mut outer) = split_head(path)?;
    let inline = if tail.has_link_layer() {
        4 + tail.link_layer.len()
    } else {
        0
    };
    // On the stack: the relay data's `Arc` is the one allocation.
    let mut out = Encoding::new();
    out.push_head(count, source)?;
    for _ in 1..count {
        let (hop, after) = split_hop(outer)?;
        out.push(hop.header)?;
        out.push(hop.options)?;
        outer = after;
    }
    let (head, path_options) = outer.split_first_chunk::<{ 1 + 16 + 2 }>()?;
    let len = path_options.len() + sub_options.len() + inline;
    out.push(&head[..17])?;
    out.push(&peer)?;
    out.push(&(len as u16).to_be_bytes())?;
    out.push(path_options)?;
    out.push(sub_options)?;
    if tail.has_link_layer() {
        out.push_option(CLIENT_LINK_LAYER, &tail.link_layer)?;
    }
    Some(RelayData(out.as_bytes().into()))
}

/// Whether a path (see [`RelayStore::split`]) matches `query`.
fn path_matches(path: &[u8], query: &RelayQuery<'_>) -> bool {
    let Some((count, _, mut rest)) = split_head(path) else {
        return false;
    };
    let mut hops: Vec<(Ipv6Addr, &[u8])> = Vec::new();
    for _ in 1..count {
        let Some((hop, after)) = split_hop(rest) else {
            return false;
        };
        hops.push((hop.link_address(), hop.options));
        rest = after;
    }
    let Some((head, path_options)) = rest.split_first_chunk::<{ 1 + 16 + 2 }>() else {
        return false;
    };
    let mut link = [0; 16];
    link.copy_from_slice(&head[1..17]);
    hops.push((Ipv6Addr::from(link), path_options));
    hops.iter().any(|&(link, opts)| {
        let has = |wanted: u16, value: &[u8]| {
            options(opts)
                .map_while(|option| option)
                .any(|(code, body)| code == wanted && body == value)
        };
        match query {
            RelayQuery::RelayId(id) => has(RELAY_ID, id),
            RelayQuery::RemoteId(id) => has(REMOTE_ID, id),
            RelayQuery::LinkAddress(address) => link == *address,
        }
    })
}

/// A Bulk Leasequery selection by relay data (RFC 5460 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayQuery<'a> {
    /// Leases whose relay data has this Relay-ID (the DUID, the option's body) at any hop.
    RelayId(&'a [u8]),
    /// Leases whose relay data has this Remote-ID (the option's body: enterprise number then
    /// the remote-id) at any hop.
    RemoteId(&'a [u8]),
    /// Leases relayed with this link-address at any hop.
    LinkAddress(Ipv6Addr),
}

impl RelayQuery<'_> {
    /// Whether `data` matches.
    pub fn matches(&self, data: &RelayData) -> bool {
        match *self {
            RelayQuery::RelayId(id) => data.hops().any(|hop| {
                hop.options()
                    .any(|(code, body)| code == RELAY_ID && body == id)
            }),
            RelayQuery::RemoteId(id) => data.hops().any(|hop| {
                hop.options()
                    .any(|(code, body)| code == REMOTE_ID && body == id)
            }),
            RelayQuery::LinkAddress(address) => {
                data.hops().any(|hop| hop.link_address() == address)
            }
        }
    }
}

/// A [`RelayQuery`] that owns its bytes.
#[derive(Clone, Debug)]
enum OwnedQuery {
    RelayId(Vec<u8>),
    RemoteId(Vec<u8>),
    LinkAddress(Ipv6Addr),
}

impl OwnedQuery {
    fn of(query: &RelayQuery<'_>) -> Self {
        match *query {
            RelayQuery::RelayId(id) => Self::RelayId(id.to_vec()),
            RelayQuery::RemoteId(id) => Self::RemoteId(id.to_vec()),
            RelayQuery::LinkAddress(address) => Self::LinkAddress(address),
        }
    }

    fn as_query(&self) -> RelayQuery<'_> {
        match self {
            Self::RelayId(id) => RelayQuery::RelayId(id),
            Self::RemoteId(id) => RelayQuery::RemoteId(id),
            Self::LinkAddress(address) => RelayQuery::LinkAddress(*address),
        }
    }
}

/// The interned relay data that a [`RelayQuery`] selects, computed once
/// ([`super::LeaseTable::relay_match`]) and then tested per record by a set lookup; a selected
/// record's relay data is checked against the query again (an entry freed and reused since
/// for other data is not taken for a match).
///
/// Leases bound after it was computed with relay data that was new by then are not selected.
#[derive(Clone, Debug)]
pub struct RelayMatch {
    handles: HashSet<u32>,
    query: OwnedQuery,
}

impl RelayMatch {
    /// Whether nothing in the table matched when it was computed.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The query it answers.
    pub fn query(&self) -> RelayQuery<'_> {
        self.query.as_query()
    }

    pub(super) fn contains(&self, tail: &RelayTail) -> bool {
        !tail.is_none() && self.handles.contains(&tail.handle())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Distinct 12-byte parts, as a subscriber part with a Remote-ID.
    fn part(n: u64) -> [u8; 12] {
        let mut bytes = *b"line\0\0\0\0\0\0\0\0";
        bytes[4..].copy_from_slice(&n.to_be_bytes());
        bytes
    }

    /// Per shard: the index's capacity and the entries of both indexes.
    fn shape(interner: &Interner) -> Vec<(usize, usize, usize)> {
        interner
            .shards
            .iter()
            .map(|shard| {
                let shard = shard.lock();
                (
                    shard.index.capacity(),
                    shard.index.len(),
                    shard.moving.len(),
                )
            })
            .collect()
    }

    /// An interner sized for a sixteenth of what it is given grows every shard's index, and no
    /// call indexes more than `MOVE_STEP` entries anew or lets an index rehash itself whole:
    /// the index is replaced only by a growth, at a fill that differs from shard to shard,
    /// which hands it to `moving`, dropped once the walk is over. Every entry stays found,
    /// with its handle, during and after.
    #[test]
    fn a_full_index_moves_a_few_entries_per_call() {
        let count = 64 * 1000;
        // Shards made for 60 entries: their indexes hold 96 before they grow.
        let interner = Interner::with_capacity(64 * 60);
        let mut handles = Vec::new();
        let mut growths = 0;
        let mut first_growth = [None; INTERN_SHARDS];
        for n in 0..count as u64 {
            let before = shape(&interner);
            let (handle, created) = interner.intern(&part(n)).expect("room");
            assert!(created, "part {n} is new");
            handles.push(handle);
            let (shard, _) = split_handle(handle);
            let after = shape(&interner);
            for (index, (&(cap0, len0, moving0), &(cap1, len1, moving1))) in
                before.iter().zip(&after).enumerate()
            {
                if index != shard {
                    assert_eq!(
                        (cap0, len0, moving0),
                        (cap1, len1, moving1),
                        "shard {index}"
                    );
                    continue;
                }
                if cap1 == cap0 {
                    assert!(len1 > len0, "part {n}: indexed");
                    assert!(len1 - len0 <= MOVE_STEP + 1, "part {n}: {len0} -> {len1}");
                    assert!(
                        moving1 == moving0 || moving1 == 0,
                        "part {n}: {moving0} -> {moving1}"
                    );
                } else {
                    // The growth: the index became `moving`, before the new entry; the walk
                    // of the growth before had ended (at its pace, not at once here).
                    growths += 1;
                    assert!(cap1 >= 2 * len0, "part {n}: {cap0} -> {cap1} for {len0}");
                    assert!(4 * len0 >= 3 * cap0, "part {n}: grown at {len0} of {cap0}");
                    assert_eq!((moving0, moving1, len1), (0, len0, 1), "part {n}");
                    first_growth[index].get_or_insert(len0 as f64 / cap0 as f64);
                }
            }
            // Now and then, everything made so far is found again (and given back).
            if n % 4999 == 0 {
                for (m, &handle) in handles.iter().enumerate() {
                    assert_eq!(interner.intern(&part(m as u64)), Some((handle, false)));
                    assert!(interner.release(handle).is_none(), "part {m} still held");
                }
            }
        }
        assert!(growths >= 3 * 64, "{growths} growths");
        // The shards grew at fills spread over the last quarter, not all when full.
        let fills: Vec<f64> = first_growth
            .iter()
            .map(|fill| fill.expect("grew"))
            .collect();
        let (least, most) = fills.iter().fold((1.0_f64, 0.0_f64), |(a, b), &fill| {
            (a.min(fill), b.max(fill))
        });
        assert!(
            least < 0.8 && most == 1.0,
            "first growths at fills {fills:?}"
        );
        // The walks end: calls that find entries walk the slabs to their ends.
        for _ in 0..2 {
            for (m, &handle) in handles.iter().enumerate() {
                assert_eq!(interner.intern(&part(m as u64)), Some((handle, false)));
            }
        }
        let (live, _) = interner.stats();
        assert_eq!(live, count);
        let shapes = shape(&interner);
        for (index, &(cap, len, moving)) in shapes.iter().enumerate() {
            assert_eq!(moving, 0, "shard {index}: the walk is over");
            assert!(len <= cap);
        }
        assert_eq!(shapes.iter().map(|&(_, len, _)| len).sum::<usize>(), count);
    }

    /// Entries made, found and released at random while the indexes grow: the interner
    /// agrees with a map of the live parts, its handles and references.
    #[test]
    fn churn_while_indexes_grow_agrees_with_a_map() {
        let interner = Interner::with_capacity(0);
        let mut model: HashMap<u64, (u32, u32)> = HashMap::new();
        let mut random = 0x2545_f491_4f6c_dd1d_u64;
        for round in 0..200_000 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            // A key space that grows, so that live entries grow, with some reuse of freed ones.
            let key = random % (1 + round / 2);
            if random >> 62 == 0 {
                if let Some((handle, refs)) = model.get_mut(&key) {
                    let freed = interner.release(*handle);
                    *refs -= 1;
                    if *refs == 0 {
                        assert_eq!(freed.as_ref().map(DuidBuf::as_bytes), Some(&part(key)[..]));
                        model.remove(&key);
                    } else {
                        assert!(freed.is_none());
                    }
                }
                continue;
            }
            let (handle, created) = interner.intern(&part(key)).expect("room");
            match model.get_mut(&key) {
                Some((known, refs)) => {
                    assert!(!created, "round {round}: part {key} made twice");
                    assert_eq!(handle, *known, "round {round}");
                    *refs += 1;
                }
                None => {
                    assert!(created, "round {round}: part {key} found but not live");
                    model.insert(key, (handle, 1));
                }
            }
        }
        assert_eq!(interner.stats().0, model.len());
        let mut seen = 0;
        interner.each(|handle, bytes| {
            let key = u64::from_be_bytes(bytes[4..].try_into().expect("8 bytes"));
            assert_eq!(model.get(&key).map(|&(known, _)| known), Some(handle));
            seen += 1;
        });
        assert_eq!(seen, model.len());
        // Once the walks are over, the indexes hold each live entry once.
        for _ in 0..2 {
            for &(handle, _) in model.values() {
                let bytes = interner.with(handle, <[u8]>::to_vec).expect("live");
                assert_eq!(interner.intern(&bytes), Some((handle, false)));
                assert!(interner.release(handle).is_none());
            }
        }
        let shapes = shape(&interner);
        assert!(
            shapes
                .iter()
                .all(|&(cap, _, moving)| cap > MIN_INDEX && moving == 0)
        );
        assert_eq!(
            shapes.iter().map(|&(_, len, _)| len).sum::<usize>(),
            model.len()
        );
    }
}
