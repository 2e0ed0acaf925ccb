//! Answering a receive batch in steps, so that the cache misses of its requests overlap.
//!
//! A request against a large table waits on memory twice: for the client index slots of its
//! IA, then for the lease record they point at; a new client's waits for the address index
//! slots of its hashed candidate instead of a record. Handled one after the other, a batch
//! pays those waits one after the other too. [`Engine::handle_batch`] takes the batch in
//! groups of [`LOOKAHEAD`]: it reads each request's client and first IA and prefetches its
//! index slots (no lock), and for a Solicit or Request also computes the IA's allocation key
//! and prefetches the address index slots of its first candidate in the first pool; then it
//! reads the client index slots (now in cache) and prefetches the records (no lock on the
//! records), then answers each request as [`Engine::handle_from`] does, in order, reusing the
//! client hash and allocation key of the first step. The first two steps change nothing, so
//! the outcomes, replies and events are those of calling `handle_from` on each request in
//! turn.

use xdhcp6_proto::{Message, MessageType, Packet, RawOptions};

use super::{Context, Engine, Outcome, Peer};
use crate::alloc::AllocKey;
use crate::config::LinkId;
use crate::table::{EventSink, IaKind};

/// The requests whose memory is fetched at once: enough to cover a miss with the others'
/// work, few enough that the lines fetched first are still cached when their turn comes.
pub const LOOKAHEAD: usize = 8;

/// One message of a batch for [`Engine::handle_batch`].
#[derive(Debug)]
pub struct BatchItem<'a> {
    /// The UDP payload.
    pub request: &'a [u8],
    /// What the datapath knows of the message, as for [`Engine::handle`].
    pub cx: Context,
    /// The sender, as for [`Engine::handle_from`].
    pub peer: Peer,
    /// Where the reply is written.
    pub reply: &'a mut [u8],
    /// What [`Engine::handle_batch`] decided (the value before the call is overwritten).
    pub outcome: Outcome,
}

impl<'a> BatchItem<'a> {
    /// A message to answer into `reply`; its outcome is set by [`Engine::handle_batch`].
    pub fn new(request: &'a [u8], cx: Context, peer: Peer, reply: &'a mut [u8]) -> Self {
        Self {
            request,
            cx,
            peer,
            reply,
            outcome: Outcome::Drop {
                reason: super::DropReason::Malformed,
                received: MessageType::Unknown(0),
            },
        }
    }
}

/// What [`Engine::lookahead`] learnt of a request: the client index hash of its first IA,
/// when it has one the table could hold, and for a Solicit or Request its allocation key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lookahead {
    client_hash: Option<u32>,
    alloc_key: Option<AllocKey>,
    /// The first candidate of `alloc_key` and its address index hash.
    candidate: Option<(u128, u64)>,
    /// Which IA the hash is of: where the DUID lies in the request (compared, never read),
    /// its length, the IAID, kind and link.
    duid_at: usize,
    duid_len: usize,
    iaid: u32,
    kind: Option<IaKind>,
    link: u16,
    /// For a Relay-forward: where the request lies, so that answering it takes `link` (the
    /// link its relays select, [`Engine::relay_link`]) instead of looking it up again.
    relayed: Option<(usize, usize)>,
}

impl Lookahead {
    /// The client hash of this IA, when it is the one looked ahead at: the same DUID bytes
    /// of the same request, IAID, kind and link.
    pub(super) fn hash_of(
        &self,
        duid: &[u8],
        iaid: u32,
        kind: IaKind,
        link: LinkId,
    ) -> Option<u32> {
        self.client_hash
            .filter(|_| self.is_of(duid, iaid, kind, link))
    }

    /// The allocation key of this IA ([`AllocKey::new`] on its link's name), when it is the
    /// one looked ahead at.
    pub(super) fn alloc_key_of(
        &self,
        duid: &[u8],
        iaid: u32,
        kind: IaKind,
        link: LinkId,
    ) -> Option<AllocKey> {
        self.alloc_key
            .filter(|_| self.is_of(duid, iaid, kind, link))
    }

    /// The first candidate of this IA and its address index hash, when it is the one looked
    /// ahead at.
    pub(super) fn candidate_of(
        &self,
        duid: &[u8],
        iaid: u32,
        kind: IaKind,
        link: LinkId,
    ) -> Option<(u128, u64)> {
        self.candidate
            .filter(|_| self.is_of(duid, iaid, kind, link))
    }

    /// The link the relays of `request` select, when this is what was looked ahead at for
    /// that very Relay-forward (the same bytes at the same place).
    pub(super) fn relay_link_of(&self, request: &[u8]) -> Option<LinkId> {
        (self.relayed == Some((request.as_ptr() as usize, request.len())))
            .then_some(LinkId(self.link))
    }

    fn is_of(&self, duid: &[u8], iaid: u32, kind: IaKind, link: LinkId) -> bool {
        self.duid_at == duid.as_ptr() as usize
            && self.duid_len == duid.len()
            && self.iaid == iaid
            && self.kind == Some(kind)
            && self.link == link.0
    }
}

impl Engine {
    /// Answers every message of `batch` in order, as [`Self::handle_from`] on each in turn
    /// would (same outcomes, replies and events), with the memory of up to [`LOOKAHEAD`]
    /// requests fetched at once.
    pub fn handle_batch(&self, batch: &mut [BatchItem<'_>], events: &mut impl EventSink) {
        for group in batch.chunks_mut(LOOKAHEAD) {
            let mut ahead = [Lookahead::default(); LOOKAHEAD];
            for (item, ahead) in group.iter().zip(ahead.iter_mut()) {
                *ahead = self.lookahead(item.request, &item.cx);
            }
            for ahead in &ahead[..group.len()] {
                self.prefetch_records(ahead);
            }
            for (item, ahead) in group.iter_mut().zip(&ahead) {
                item.outcome =
                    self.handle_ahead(item.request, &item.cx, item.peer, item.reply, events, ahead);
            }
        }
    }

    /// The first step of [`Self::handle_batch`] (and of [`Self::handle_from`] for a Solicit or
    /// Request): reads which client and IA `request` is about and prefetches the client index
    /// slots that hold it, taking no lock and changing nothing. A message the table has nothing for (or one that cannot be read) gives an
    /// empty [`Lookahead`].
    pub(super) fn lookahead(&self, request: &[u8], cx: &Context) -> Lookahead {
        let (relay_forward, client) = match request.first().map(|&first| MessageType::from(first)) {
            Some(MessageType::RelayForw) => (true, self.relayed_client(request)),
            Some(msg_type) => (
                false,
                cx.link.and_then(|link| {
                    let message = request.get(4..)?;
                    direct_client(request[0], message)
                        .map(|(duid, iaid, kind)| (msg_type, duid, iaid, kind, link))
                }),
            ),
            None => (false, None),
        };
        let Some((msg_type, duid, iaid, kind, link)) = client else {
            return Lookahead::default();
        };
        let hash = self.table.ia_key(duid, iaid, kind, link).hash();
        self.table.prefetch_client_index(hash);
        let allocation = matches!(msg_type, MessageType::Solicit | MessageType::Request)
            .then(|| {
                let claims = msg_type == MessageType::Request;
                self.prefetch_candidate(duid, iaid, kind, link, claims)
            })
            .flatten();
        Lookahead {
            client_hash: Some(hash),
            alloc_key: allocation.map(|(key, _)| key),
            candidate: allocation.map(|(_, candidate)| candidate),
            duid_at: duid.as_ptr() as usize,
            duid_len: duid.len(),
            iaid,
            kind: Some(kind),
            link: link.0,
            relayed: relay_forward.then_some((request.as_ptr() as usize, request.len())),
        }
    }

    /// The second step of [`Self::handle_batch`], after [`Self::lookahead`] of the whole
    /// group: prefetches the lease records the client index lists for the request (the
    /// index read under its shard's lock when that lock is free; nothing when it is not).
    fn prefetch_records(&self, ahead: &Lookahead) {
        if let Some(hash) = ahead.client_hash {
            self.table.prefetch_client_records(hash);
        }
    }

    /// The allocation key of a client's IA (carrying its first probe), its first candidate
    /// in the link's first pool of its kind and that address's index hash, after prefetching
    /// the address index slots there (and, when the request `claims` it, where its record
    /// would go): where a new client's Advertise looks and its Request claims, unless the
    /// candidate is taken, reserved, or the IA hints another pool. The hashes are those
    /// allocation computes ([`AllocKey::new`], [`AllocKey::probe`]).
    fn prefetch_candidate(
        &self,
        duid: &[u8],
        iaid: u32,
        kind: IaKind,
        link: LinkId,
        claims: bool,
    ) -> Option<(AllocKey, (u128, u64))> {
        let pool = self.pools.get(link.index())?.by_hint(kind, None).next()?;
        let name = &self.config.links.get(link.index())?.name;
        let key = AllocKey::new(self.table.salt(), duid, iaid, name);
        let (key, candidate) = pool.range.first_candidate(key);
        let hash = self.table.prefetch_addr_index(candidate, kind, claims);
        Some((key, (candidate, hash)))
    }

    /// The type of a Relay-forward's client message, its client and first IA, and the link it
    /// would be served on.
    fn relayed_client<'r>(
        &self,
        request: &'r [u8],
    ) -> Option<(MessageType, &'r [u8], u32, IaKind, LinkId)> {
        let Ok(Packet::Relay(relay)) = Packet::parse(request) else {
            return None;
        };
        let chain = relay.chain().ok()?;
        let link = self.relay_link(&chain)?;
        let message: Message<'r> = chain.message();
        let msg_type = message.msg_type();
        let (duid, iaid, kind) = direct_client(u8::from(msg_type), message.options().as_bytes())?;
        Some((msg_type, duid, iaid, kind, link))
    }
}

/// The Client Identifier and the first IA_NA or IA_PD (IAID, kind) of a client message of
/// type `first` with options `options`, when it is a type that looks up the client's leases.
fn direct_client(first: u8, options: &[u8]) -> Option<(&[u8], u32, IaKind)> {
    if !matches!(
        MessageType::from(first),
        MessageType::Solicit
            | MessageType::Request
            | MessageType::Renew
            | MessageType::Rebind
            | MessageType::Release
            | MessageType::Decline
    ) {
        return None;
    }
    let mut duid = None;
    let mut ia = None;
    // The codes compared as numbers (RFC 9915 §21.2, §21.4, §21.21): `OptionCode::from` is a
    // match over every known code. A test checks them against `OptionCode`.
    const CLIENT_ID: u16 = 1;
    const IA_NA: u16 = 3;
    const IA_PD: u16 = 25;
    for option in RawOptions::new(options) {
        let option = option.ok()?;
        let kind = match option.code {
            CLIENT_ID => {
                duid = Some(option.data);
                None
            }
            IA_NA => Some(IaKind::Na),
            IA_PD => Some(IaKind::Pd),
            _ => None,
        };
        if let (Some(kind), None) = (kind, ia) {
            let iaid = option.data.first_chunk::<4>().copied()?;
            ia = Some((u32::from_be_bytes(iaid), kind));
        }
        if let (Some(duid), Some((iaid, kind))) = (duid, ia) {
            return Some((duid, iaid, kind));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use xdhcp6_proto::OptionCode;

    use super::*;

    #[test]
    fn the_codes_looked_ahead_at_are_those_of_the_options() {
        let option = |code: OptionCode, data: &[u8]| {
            let mut bytes = u16::from(code).to_be_bytes().to_vec();
            bytes.extend_from_slice(&(data.len() as u16).to_be_bytes());
            bytes.extend_from_slice(data);
            bytes
        };
        let mut options = option(OptionCode::ElapsedTime, &[0, 0]);
        options.extend(option(
            OptionCode::IaPd,
            &[0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0],
        ));
        options.extend(option(
            OptionCode::IaNa,
            &[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0],
        ));
        options.extend(option(OptionCode::ClientId, b"client"));
        let renew = u8::from(MessageType::Renew);
        assert_eq!(
            direct_client(renew, &options),
            Some((&b"client"[..], 9, IaKind::Pd))
        );
        let na_first = [
            option(OptionCode::ClientId, b"other"),
            option(OptionCode::IaNa, &[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]),
        ]
        .concat();
        assert_eq!(
            direct_client(renew, &na_first),
            Some((&b"other"[..], 7, IaKind::Na))
        );
        assert_eq!(
            direct_client(u8::from(MessageType::Confirm), &na_first),
            None
        );
    }
}
