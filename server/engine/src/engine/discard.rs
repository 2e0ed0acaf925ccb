//! The discard rules of RFC 9915 §16: which client messages the server must not answer.

use xdhcp6_proto::MessageType;

use super::DropReason;
use super::request::ClientRequest;

/// The discard rules of RFC 9915 §16, checked before any lease is touched.
/// Whether `message_type` is one a client sends to a server (RFC 9915 §16: servers discard
/// the types they do not expect); a Relay-forward is judged by the message it carries.
pub(super) fn is_client_request(message_type: MessageType) -> bool {
    matches!(
        message_type,
        MessageType::Solicit
            | MessageType::Request
            | MessageType::Confirm
            | MessageType::Renew
            | MessageType::Rebind
            | MessageType::Release
            | MessageType::Decline
            | MessageType::InformationRequest
    )
}

pub(super) fn check(request: &ClientRequest<'_>, server_duid: &[u8]) -> Result<(), DropReason> {
    let ours = |id: &[u8]| id == server_duid;
    match request.msg_type {
        // RFC 9915 §16.2, in substance:
        // Servers MUST discard any Solicit messages that do not include a Client
        // Identifier option or that do include a Server Identifier option.
        MessageType::Solicit | MessageType::Confirm | MessageType::Rebind => {
            if request.client_id.is_none() {
                return Err(DropReason::MissingClientId);
            }
            if request.server_id.is_some() {
                return Err(DropReason::UnexpectedServerId);
            }
        }
        // RFC 9915 §16.4, in substance:
        // Servers MUST discard any received Request message that meets any of the
        // following conditions: the message does not include a Server Identifier
        // option; the contents of the Server Identifier option do not match the
        // server's DUID; the message does not include a Client Identifier option.
        MessageType::Request | MessageType::Renew | MessageType::Release | MessageType::Decline => {
            let server_id = request.server_id.ok_or(DropReason::MissingServerId)?;
            if !ours(server_id) {
                return Err(DropReason::WrongServerId);
            }
            if request.client_id.is_none() {
                return Err(DropReason::MissingClientId);
            }
        }
        // RFC 9915 §16.12, in substance:
        // Servers MUST discard any received Information-request message that meets any
        // of the following conditions: the message includes a Server Identifier option,
        // and the DUID in the option does not match the server's DUID; the message
        // includes an IA option.
        MessageType::InformationRequest => {
            if request.server_id.is_some_and(|id| !ours(id)) {
                return Err(DropReason::WrongServerId);
            }
            if request.has_ia {
                return Err(DropReason::IaInInformationRequest);
            }
        }
        _ => return Err(DropReason::NotForServer),
    }
    Ok(())
}
