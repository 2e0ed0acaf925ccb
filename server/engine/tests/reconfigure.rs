//! Reconfigure (RFC 9915 §18.3.11) and the Reconfigure Key Authentication Protocol
//! (RFC 9915 §20.4): the key in the Reply, the mark on the lease, and the signed Reconfigure
//! sent directly or through the relays. Test names end in the section they check.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::sync::Arc;

use xdhcp6_engine::proto::{MessageType, OptionCode};
use xdhcp6_engine::table::IaKind;
use xdhcp6_engine::testing::{Client, Relay, ReplyView, Server, ip};
use xdhcp6_engine::{
    Destination, Engine, ReconfigureError, ReconfigureKeys, ReconfigureType, SECRET_LEN,
    verify_reconfigure,
};

const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:07"
salt = "reconfigure"
preferred-lifetime = 200
valid-lifetime = 300
t1 = 100
t2 = 160

[[link]]
name = "cable"
interfaces = ["eth1"]
relay-prefixes = ["2001:db8:ffff:1::/64"]
reconfigure-accept = true

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link]]
name = "plain"
relay-prefixes = ["2001:db8:ffff:2::/64"]

[[link.pool]]
prefix = "2001:db8:2::/64"
"#;

const RECONF_ACCEPT: u16 = 20;
const AUTH: u16 = 11;

/// A server whose engine has a reconfigure key secret.
fn server() -> (Server, Arc<ReconfigureKeys>) {
    let mut s = Server::new(CONFIG);
    let keys = Arc::new(ReconfigureKeys::new([0x5a; SECRET_LEN], 0));
    let engine = Engine::new(
        Arc::new(s.engine.config().clone()),
        Arc::clone(s.engine.table()),
    )
    .expect("an engine")
    .with_reconfigure(Arc::clone(&keys));
    s.engine = Arc::new(engine);
    (s, keys)
}

/// Solicit, then Request with (or without) Reconfigure Accept; returns the Reply.
fn bind(s: &mut Server, client: &Client, accept: bool) -> ReplyView {
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    let offered: Vec<Ipv6Addr> = advertise.ia_na(1).addrs.iter().map(|a| a.addr).collect();
    let mut request = client.request(&s.duid()).ia_na(1, &offered);
    if accept {
        request = request.option(RECONF_ACCEPT, &[]);
    }
    let reply = s.send(&request);
    assert_eq!(reply.msg_type, MessageType::Reply);
    reply
}

fn option(reply: &ReplyView, code: u16) -> Option<&[u8]> {
    reply
        .options
        .iter()
        .find(|(own, _)| *own == code)
        .map(|(_, body)| body.as_slice())
}

/// Builds a Reconfigure for `duid`; returns it taken apart, its bytes (the client message)
/// and where it goes.
fn reconfigure(
    s: &Server,
    duid: &[u8],
    msg: ReconfigureType,
) -> Result<(ReplyView, Vec<u8>, SocketAddrV6, bool), ReconfigureError> {
    let mut buf = vec![0; 1500];
    let sent = s.engine.reconfigure(duid, msg, s.now, &mut buf)?;
    let view = ReplyView::parse(&buf[..sent.len], Destination::Client);
    // The client message: the innermost Relay Message option's body, or all of it.
    let mut message = &buf[..sent.len];
    while message[0] == u8::from(MessageType::RelayRepl) {
        let mut rest = &message[34..];
        loop {
            let code = u16::from_be_bytes([rest[0], rest[1]]);
            let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            if code == u16::from(OptionCode::RelayMsg) {
                message = &rest[4..4 + len];
                break;
            }
            rest = &rest[4 + len..];
        }
    }
    Ok((view, message.to_vec(), sent.to, sent.via_relay))
}

#[test]
fn a_reply_to_a_client_that_accepts_reconfigure_carries_its_key_20_4_2() {
    let (mut s, keys) = server();
    let client = Client::new(1);
    let reply = bind(&mut s, &client, true);
    let auth = option(&reply, AUTH).expect("an Authentication option");
    // protocol 3, algorithm 1 (HMAC-MD5), RDM 0, replay detection, type 1, the key.
    assert_eq!(auth.len(), 28);
    assert_eq!(&auth[..3], &[3, 1, 0]);
    assert_eq!(auth[11], 1);
    assert_eq!(&auth[12..], &keys.key(&client.duid));
    assert!(option(&reply, RECONF_ACCEPT).is_some());
    let address = reply.ia_na(1).address();
    let record = s
        .engine
        .table()
        .lease_at(u128::from(address), IaKind::Na)
        .unwrap();
    assert!(record.reconfigure);
    // The bound event (the journal's record) carries the mark.
    assert!(s.take_events().last().unwrap().record.reconfigure);
    // Another client gets another key.
    let other = bind(&mut s, &Client::new(2), true);
    assert_ne!(option(&other, AUTH).unwrap()[12..], auth[12..]);
}

#[test]
fn no_key_without_reconfigure_accept_or_without_the_links_setting_20_4_2() {
    let (mut s, _) = server();
    // The client does not accept Reconfigure.
    let reply = bind(&mut s, &Client::new(3), false);
    assert_eq!(option(&reply, AUTH), None);
    assert_eq!(
        reconfigure(&s, &Client::new(3).duid, ReconfigureType::Renew).unwrap_err(),
        ReconfigureError::NotAccepted
    );
    // The link does not send Reconfigure Accept: no key, no Reconfigure.
    let relayed = Client::new(4).via(Relay::new(ip("2001:db8:ffff:2::1")));
    let reply = bind(&mut s, &relayed, true);
    assert_eq!(option(&reply, AUTH), None);
    assert_eq!(
        reconfigure(&s, &relayed.duid, ReconfigureType::Renew).unwrap_err(),
        ReconfigureError::NotAccepted
    );
    // An engine without a secret sends no key and builds no Reconfigure.
    let mut plain = Server::new(CONFIG);
    let reply = bind(&mut plain, &Client::new(5), true);
    assert_eq!(option(&reply, AUTH), None);
    assert_eq!(
        reconfigure(&plain, &Client::new(5).duid, ReconfigureType::Renew).unwrap_err(),
        ReconfigureError::Disabled
    );
    assert_eq!(
        reconfigure(&s, &Client::new(99).duid, ReconfigureType::Renew).unwrap_err(),
        ReconfigureError::NoBinding
    );
}

#[test]
fn a_renew_without_reconfigure_accept_clears_the_mark_20_4_2() {
    let (mut s, _) = server();
    let client = Client::new(6);
    let address = bind(&mut s, &client, true).ia_na(1).address();
    s.advance(50);
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[address]));
    assert_eq!(option(&reply, AUTH), None);
    assert_eq!(
        reconfigure(&s, &client.duid, ReconfigureType::Renew).unwrap_err(),
        ReconfigureError::NotAccepted
    );
    s.advance(50);
    let reply = s.send(
        &client
            .renew(&s.duid())
            .ia_na(1, &[address])
            .option(RECONF_ACCEPT, &[]),
    );
    assert!(option(&reply, AUTH).is_some());
    assert!(reconfigure(&s, &client.duid, ReconfigureType::Renew).is_ok());
}

#[test]
fn a_reconfigure_to_a_direct_client_is_signed_with_its_key_18_3_11() {
    let (mut s, keys) = server();
    let client = Client::new(7);
    let reply = bind(&mut s, &client, true);
    let address = reply.ia_na(1).address();
    let key_replay = u64::from_be_bytes(option(&reply, AUTH).unwrap()[3..11].try_into().unwrap());
    let (view, message, to, via_relay) =
        reconfigure(&s, &client.duid, ReconfigureType::Renew).unwrap();
    // To the client's address, port 546.
    assert_eq!(to, SocketAddrV6::new(address, 546, 0, 0));
    assert!(!via_relay);
    assert!(view.relays.is_empty());
    assert_eq!(view.msg_type, MessageType::Reconfigure);
    assert_eq!(view.xid, 0);
    assert_eq!(view.server_id, Some(s.duid()));
    assert_eq!(view.client_id, Some(client.duid.clone()));
    let codes: Vec<u16> = view.options.iter().map(|(code, _)| *code).collect();
    assert_eq!(codes, [2, 1, 19, 11]);
    assert_eq!(option(&view, 19), Some(&[5][..]));
    // The client's check: HMAC-MD5 under the key it got, over the message with the digest
    // zeroed, and a replay value above the Reply's.
    let key = keys.key(&client.duid);
    let replay = verify_reconfigure(&message, &key).expect("the HMAC verifies");
    assert!(replay > key_replay);
    let mut tampered = message.clone();
    let at = tampered.len() - 30;
    tampered[at] ^= 1;
    assert_eq!(verify_reconfigure(&tampered, &key), None);
    assert_eq!(verify_reconfigure(&message, &keys.key(b"other")), None);
    // A second Reconfigure has a greater replay value.
    let (_, again, _, _) = reconfigure(&s, &client.duid, ReconfigureType::Rebind).unwrap();
    assert!(verify_reconfigure(&again, &key).unwrap() > replay);
    let (view, _, _, _) =
        reconfigure(&s, &client.duid, ReconfigureType::InformationRequest).unwrap();
    assert_eq!(option(&view, 19), Some(&[11][..]));
}

#[test]
fn a_reconfigure_to_a_relayed_client_goes_back_through_its_relays_18_3_11_19_3() {
    let (mut s, keys) = server();
    let client = Client::new(8)
        .via(
            Relay::new(ip("2001:db8:ffff:1::1"))
                .peer(ip("fe80::8"))
                .interface_id(b"cable-1/0/3"),
        )
        .via(
            Relay::new(ip("2001:db8:ffff:1::100"))
                .peer(ip("2001:db8:ffff:1::1"))
                .hop_count(1),
        );
    s.peer.address = Some(ip("2001:db8:ffff:aa::1"));
    let reply = bind(&mut s, &client, true);
    assert!(option(&reply, AUTH).is_some());
    let (view, message, to, via_relay) =
        reconfigure(&s, &client.duid, ReconfigureType::Renew).unwrap();
    // To the relay agent the server heard from, port 547, as a Relay-reply per hop.
    assert_eq!(to, SocketAddrV6::new(ip("2001:db8:ffff:aa::1"), 547, 0, 0));
    assert!(via_relay);
    assert_eq!(view.relays.len(), 2);
    assert_eq!(view.relays[0].msg_type, MessageType::RelayRepl);
    assert_eq!(view.relays[0].hop_count, 1);
    assert_eq!(view.relays[0].link, ip("2001:db8:ffff:1::100"));
    assert_eq!(view.relays[0].peer, ip("2001:db8:ffff:1::1"));
    assert_eq!(view.relays[1].hop_count, 0);
    assert_eq!(view.relays[1].link, ip("2001:db8:ffff:1::1"));
    assert_eq!(view.relays[1].peer, ip("fe80::8"));
    assert_eq!(
        view.relays[1].interface_id.as_deref(),
        Some(&b"cable-1/0/3"[..])
    );
    assert_eq!(view.msg_type, MessageType::Reconfigure);
    assert!(verify_reconfigure(&message, &keys.key(&client.duid)).is_some());

    // Relay data without the relay agent's source (as from an older journal): nowhere to go.
    s.peer.address = None;
    let other = Client::new(9).via(Relay::new(ip("2001:db8:ffff:1::1")));
    bind(&mut s, &other, true);
    assert_eq!(
        reconfigure(&s, &other.duid, ReconfigureType::Renew).unwrap_err(),
        ReconfigureError::RelaySourceUnknown
    );
}

#[test]
fn the_key_and_the_mark_survive_a_reload_20_4_2() {
    let (mut s, keys) = server();
    let client = Client::new(10);
    bind(&mut s, &client, true);
    s.reload(CONFIG);
    assert!(s.engine.reconfigure_keys().is_some());
    let (_, message, _, _) = reconfigure(&s, &client.duid, ReconfigureType::Renew).unwrap();
    assert!(verify_reconfigure(&message, &keys.key(&client.duid)).is_some());
}
