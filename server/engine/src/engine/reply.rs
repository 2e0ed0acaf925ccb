//! Options of the reply that do not belong to an IA: the configured options the client asked
//! for, and the Client FQDN answer.

use xdhcp6_proto::{MessageType, MessageWriter, OptionCode};

use super::DropReason;
use super::request::ClientRequest;
use crate::config::Link;

/// The configured options the client asked for in its ORO (RFC 9915 §18.3, §21.7).
pub(super) fn write_options(
    request: &ClientRequest<'_>,
    link: &Link,
    w: &mut MessageWriter<'_>,
) -> Result<(), DropReason> {
    let Some(oro) = request.oro else {
        return Ok(());
    };
    for option in &link.options.encoded {
        let code = OptionCode::from(option.code);
        // RFC 9915 §21.23, in substance:
        // The information refresh time option ... MUST only be used in Reply messages
        // in response to Information-request messages.
        if code == OptionCode::InformationRefreshTime
            && request.msg_type != MessageType::InformationRequest
        {
            continue;
        }
        if oro.contains(code) {
            w.raw(option.code, &option.body)?;
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
