//! Answering a receive batch in steps, so that the cache misses of its requests overlap.
//!
//! A request against a large table waits on memory twice: for the client index slots of its
//! IA, then for the lease record they point at. Handled one after the other, a batch pays
//! those waits one after the other too. [`Engine::handle_batch`] takes the batch in groups of
//! [`LOOKAHEAD`]: it reads each request's client and first IA and prefetches its index slots
//! (no lock), then reads the slots (now in cache) and prefetches the records (no lock on the
//! records), then answers each request as [`Engine::handle_from`] does, in order, reusing the
//! client hash of the first step. The first two steps change nothing, so the outcomes,
//! replies and events are those of calling `handle_from` on each request in turn.

use xdhcp6_proto::{Message, MessageType, OptionCode, Packet, RawOptions};

use super::{Context, Engine, Outcome, Peer};
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
/// when it has one the table could hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lookahead {
    client_hash: Option<u32>,
    /// Which IA the hash is of: where the DUID lies in the request (compared, never read),
    /// its length, the IAID, kind and link.
    duid_at: usize,
    duid_len: usize,
    iaid: u32,
    kind: Option<IaKind>,
    link: u16,
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
        let same = self.duid_at == duid.as_ptr() as usize
            && self.duid_len == duid.len()
            && self.iaid == iaid
            && self.kind == Some(kind)
            && self.link == link.0;
        self.client_hash.filter(|_| same)
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

    /// The first step of [`Self::handle_batch`]: reads which client and IA `request` is
    /// about and prefetches the client index slots that hold it, taking no lock and changing
    /// nothing. A message the table has nothing for (or one that cannot be read) gives an
    /// empty [`Lookahead`].
    fn lookahead(&self, request: &[u8], cx: &Context) -> Lookahead {
        let client = match request.first().map(|&first| MessageType::from(first)) {
            Some(MessageType::RelayForw) => self.relayed_client(request),
            Some(_) => cx.link.and_then(|link| {
                let message = request.get(4..)?;
                direct_client(request[0], message)
                    .map(|(duid, iaid, kind)| (duid, iaid, kind, link))
            }),
            None => None,
        };
        let Some((duid, iaid, kind, link)) = client else {
            return Lookahead::default();
        };
        let hash = self.table.ia_key(duid, iaid, kind, link).hash();
        self.table.prefetch_client_index(hash);
        Lookahead {
            client_hash: Some(hash),
            duid_at: duid.as_ptr() as usize,
            duid_len: duid.len(),
            iaid,
            kind: Some(kind),
            link: link.0,
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

    /// The client and first IA of a Relay-forward's client message, and the link it would be
    /// served on.
    fn relayed_client<'r>(&self, request: &'r [u8]) -> Option<(&'r [u8], u32, IaKind, LinkId)> {
        let Ok(Packet::Relay(relay)) = Packet::parse(request) else {
            return None;
        };
        let chain = relay.chain().ok()?;
        let link = self.relay_link(&chain)?;
        let message: Message<'r> = chain.message();
        let (duid, iaid, kind) =
            direct_client(u8::from(message.msg_type()), message.options().as_bytes())?;
        Some((duid, iaid, kind, link))
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
    for option in RawOptions::new(options) {
        let option = option.ok()?;
        let kind = match OptionCode::from(option.code) {
            OptionCode::ClientId => {
                duid = Some(option.data);
                None
            }
            OptionCode::IaNa => Some(IaKind::Na),
            OptionCode::IaPd => Some(IaKind::Pd),
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
