//! Options of the reply that do not belong to an IA: the configured options the client asked
//! for or that are always sent, the options relays supplied, and the Client FQDN answer.

use std::net::Ipv6Addr;

use xdhcp6_proto::{MessageType, MessageWriter, OptionCode, RawOptions};

use super::DropReason;
use super::request::ClientRequest;
use crate::config::{EncodedOption, Link, LinkOptions, VendorOption};
use crate::fqdn::{self, Collect, NameBinding};
use crate::table::{DuidBuf, EventSink, IaKind};

/// The Reconfigure Accept option when the link is configured with it, then the configured
/// options the client asked for in its ORO (RFC 9915 §18.3, §21.7) or in the option request
/// of its own vendor option, those configured `always-send` (the client's reservation's
/// first, then the link's of other codes), then the options its relays supplied (RFC 6422).
pub(super) fn write_options(
    request: &ClientRequest<'_>,
    link: &Link,
    reserved: Option<&LinkOptions>,
    w: &mut MessageWriter<'_>,
) -> Result<(), DropReason> {
    if link.reconfigure_accept {
        // RFC 9915 §21.20, in substance:
        // A client uses the Reconfigure Accept option to announce to the server whether the
        // client is willing to accept Reconfigure messages, and a server uses this option to
        // tell the client whether or not to accept Reconfigure messages. In the absence of
        // this option, the default behavior is that the client is unwilling to accept
        // Reconfigure messages.
        w.raw(u16::from(OptionCode::ReconfAccept), &[])?;
    }
    let reserved = reserved.filter(|options| !options.encoded.is_empty());
    if let Some(options) = reserved {
        write_set(request, options, |_| true, w)?;
    }
    let not_reserved = |code: u16| reserved.is_none_or(|r| r.encoded_with_code(code).is_empty());
    write_set(request, &link.options, not_reserved, w)?;
    write_relay_supplied(request, link, reserved, w)
}

/// The options of one set (a link's or a reservation's) with a code `wanted` selects.
fn write_set(
    request: &ClientRequest<'_>,
    options: &LinkOptions,
    wanted: impl Fn(u16) -> bool,
    w: &mut MessageWriter<'_>,
) -> Result<(), DropReason> {
    for option in options.encoded.iter().filter(|option| wanted(option.code)) {
        let code = OptionCode::from(option.code);
        // RFC 9915 §21.23, in substance:
        // The information refresh time option ... MUST only be used in Reply messages
        // in response to Information-request messages.
        if code == OptionCode::InformationRefreshTime
            && request.msg_type != MessageType::InformationRequest
        {
            continue;
        }
        if code == OptionCode::VendorOpts {
            write_vendor(request, options, option, w)?;
            continue;
        }
        // RFC 9915 §21.7, in substance:
        // A client MUST include an Option Request option ... to inform the server about
        // options the client wants the server to send to the client.
        // Options configured `always-send` go out unasked as well: some clients send no
        // ORO, or ask elsewhere.
        if request.requested(code) || options.always_send.binary_search(&option.code).is_ok() {
            w.raw(option.code, &option.body)?;
        }
    }
    Ok(())
}

/// One configured vendor option: whole when always sent or when the ORO asks for option 17;
/// only the sub-options asked for when the client sent its own vendor option for the same
/// enterprise with an option request (CableLabs CL_OPTION_ORO); otherwise not at all.
fn write_vendor(
    request: &ClientRequest<'_>,
    options: &LinkOptions,
    option: &EncodedOption,
    w: &mut MessageWriter<'_>,
) -> Result<(), DropReason> {
    let vendor = option
        .body
        .first_chunk::<4>()
        .map(|enterprise| u32::from_be_bytes(*enterprise))
        .and_then(|enterprise| {
            options
                .vendor
                .iter()
                .find(|vendor| vendor.enterprise == enterprise)
        });
    let Some(vendor) = vendor else {
        return Ok(());
    };
    if vendor.always_send {
        return Ok(w.raw(option.code, &option.body)?);
    }
    // CL-SP-CANN-DHCP-Reg, CL_OPTION_ORO, in substance:
    // the client lists in sub-option 1 of its vendor option the CableLabs sub-options it
    // requests; the server answers with those it is configured with.
    if let Some(oro) = request.vendor_oro(vendor.enterprise) {
        return write_vendor_subset(vendor, |code| oro.contains(code), w);
    }
    if request.requested(OptionCode::VendorOpts) {
        w.raw(option.code, &option.body)?;
    }
    Ok(())
}

/// A vendor option with the sub-options `wanted` selects, in configured order; nothing when
/// none is selected.
fn write_vendor_subset(
    vendor: &VendorOption,
    wanted: impl Fn(u16) -> bool,
    w: &mut MessageWriter<'_>,
) -> Result<(), DropReason> {
    if !vendor.sub_options.iter().any(|sub| wanted(sub.code)) {
        return Ok(());
    }
    let mark = w.begin_option(OptionCode::VendorOpts)?;
    w.put_bytes(&vendor.enterprise.to_be_bytes())?;
    for sub in vendor.sub_options.iter().filter(|sub| wanted(sub.code)) {
        w.raw(sub.code, &sub.body)?;
    }
    Ok(w.end_option(mark)?)
}

/// The options the relays supplied in Relay-Supplied Options options that this link allows.
fn write_relay_supplied(
    request: &ClientRequest<'_>,
    link: &Link,
    reserved: Option<&LinkOptions>,
    w: &mut MessageWriter<'_>,
) -> Result<(), DropReason> {
    // Every option of every RSOO in order, the relay closest to the client first; the framing
    // was checked when the chain was read.
    let supplied = || {
        request
            .relay_supplied
            .iter()
            .flat_map(|rsoo| RawOptions::new(rsoo).map_while(Result::ok))
    };
    for (position, option) in supplied().enumerate() {
        // RFC 6422 §6, in substance:
        // The server SHOULD discard any options that appear in the RSOO for which it
        // already has one or more candidates.
        // Only options permitted in the RSOO are used: the IANA registry's, and those the
        // link allows (`rsoo-allow`).
        let configured = |options: &LinkOptions| !options.encoded_with_code(option.code).is_empty();
        if !link.rsoo_allows(option.code)
            || configured(&link.options)
            || reserved.is_some_and(configured)
        {
            continue;
        }
        // Several relays supplying the same option: the one closest to the client wins (its
        // information is the most specific), then the first in its RSOO.
        let first = supplied().position(|other| other.code == option.code);
        if first == Some(position) {
            w.raw(option.code, option.data)?;
        }
    }
    Ok(())
}

/// Echoes the Client FQDN option: this server does not update DNS itself yet, so it sets
/// N and, when the client asked the server to update, O (RFC 4704 §5.1, §6.2).
pub(super) fn write_fqdn(
    request: &ClientRequest<'_>,
    w: &mut MessageWriter<'_>,
) -> Result<(), DropReason> {
    let Some((flags, name)) = request.fqdn else {
        return Ok(());
    };
    const S: u8 = 0b001;
    const O: u8 = 0b010;
    const N: u8 = 0b100;
    let flags = if flags & S != 0 { N | O } else { N };
    let mark = w.begin_option(OptionCode::ClientFqdn)?;
    w.put_bytes(&[flags])?;
    w.put_bytes(name)?;
    Ok(w.end_option(mark)?)
}

/// The Client FQDN answer and the client's [`NameBinding`] on a link with `[link.ddns]`
/// (links without it: [`write_fqdn`]). The name is the client's, sanitised and qualified, or
/// one the server generates; the flags say who updates what (RFC 4704 §5, §6.1). A Reply that
/// binds or extends addresses hands the updater the name, those addresses, and the ones the
/// client listed that it did not keep.
pub(super) fn answer_fqdn<S: EventSink>(
    request: &ClientRequest<'_>,
    link: &Link,
    duid: &[u8],
    now: u32,
    w: &mut MessageWriter<'_>,
    events: &mut Collect<'_, S>,
) -> Result<(), DropReason> {
    let Some(policy) = link.ddns.as_deref() else {
        return write_fqdn(request, w);
    };
    let first = events.addresses.first().copied();
    let (decision, name) = match request.fqdn {
        Some((flags, wire)) => {
            let name =
                fqdn::sanitise(wire, policy).or_else(|| fqdn::generated(policy, duid, first));
            (fqdn::decide(flags, policy), name)
        }
        None => (
            // RFC 4704 §6.1, in substance: a client that sends no Client FQDN option does not
            // update DNS; the server may update both records for it, by its own policy.
            fqdn::Decision {
                reply_flags: fqdn::FLAG_S,
                forward: true,
                reverse: true,
            },
            fqdn::generated(policy, duid, first),
        ),
    };
    if let Some((client_flags, _)) = request.fqdn {
        // RFC 4704 §6.2, in substance: the server includes the Client FQDN option in its
        // Advertise and Reply when the client included it, with the name the server will use.
        match &name {
            Some(name) => {
                let dotted = name.strip_suffix('.').unwrap_or(name);
                w.client_fqdn(decision.reply_flags, dotted, true)?;
            }
            None => {
                // No usable name: nothing is updated.
                let flags = if client_flags & fqdn::FLAG_S != 0 {
                    fqdn::FLAG_N | fqdn::FLAG_O
                } else {
                    fqdn::FLAG_N
                };
                w.client_fqdn(flags, "", false)?;
            }
        }
    }
    let Some(name) = name else {
        return Ok(());
    };
    if !events.active || !(decision.forward || decision.reverse) {
        return Ok(());
    }
    let stale: Vec<Ipv6Addr> = request
        .ias()
        .filter(|ia| ia.kind() == IaKind::Na)
        .flat_map(|ia| ia.listed())
        .map(|(address, _)| address)
        .filter(|address| !events.addresses.contains(address))
        .collect();
    if events.addresses.is_empty() && stale.is_empty() {
        return Ok(());
    }
    let binding = NameBinding {
        link: link.id,
        duid: DuidBuf::new(duid),
        name,
        forward: decision.forward,
        reverse: decision.reverse,
        addresses: std::mem::take(&mut events.addresses),
        stale,
        at: now,
    };
    events.inner.name(binding);
    Ok(())
}
