//! Any bytes as an Ethernet frame on the AF_XDP path: the XDP classifier (host build of the
//! code the kernel runs), the shared header parser and the daemon's request check never panic;
//! what they steer or accept has its headers and payload inside the frame; and the reply the
//! datapath writes for an accepted request (any payload length, each kind of destination) is
//! a frame the same parser reads back, with a valid checksum.

#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use xdhcp6_common::wire::Headers;
use xdhcp6_common::{Verdict, classify, classify_client};
use xdhcp6_engine::Destination;
use xdhcp6d::frame::{self, FrameError, MAX_HEADER_LEN, ReplySource};

/// The transmit frame size of the AF_XDP datapath's UMEM chunks.
const TX_FRAME: usize = 2048;

fuzz_target!(|data: &[u8]| {
    for verdict in [classify(data), classify_client(data)] {
        if let Verdict::Steer(offsets) = verdict {
            assert!(offsets.l3 < offsets.l4, "{offsets:?}");
            assert!(
                offsets.payload() <= data.len(),
                "{offsets:?} past {}",
                data.len()
            );
        }
    }
    if let Ok((headers, payload)) = Headers::parse(data) {
        assert_eq!(payload.start, headers.len());
        assert!(payload.start <= payload.end && payload.end <= data.len());
    }

    for verify_checksum in [true, false] {
        let Ok(meta) = frame::parse(data, verify_checksum) else {
            continue;
        };
        assert!(meta.header_len <= MAX_HEADER_LEN);
        assert!(
            meta.payload().end <= data.len(),
            "{meta:?} past {}",
            data.len()
        );
        assert!(!meta.source.is_multicast() && !meta.source.is_unspecified());
        let request = &data[meta.payload()];

        let from = ReplySource {
            mac: [2, 0, 0, 0, 5, 0x47],
            link_local: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x547),
            global: (data.len() % 16 != 15)
                .then(|| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x547)),
        };
        // The payload lengths a reply may have: the request's echoed back, none, and larger
        // than the transmit frame holds.
        for payload_len in [request.len(), 0, TX_FRAME] {
            for to in [
                Destination::Client,
                Destination::Relay {
                    to_source_port: true,
                },
                Destination::Relay {
                    to_source_port: false,
                },
            ] {
                let mut tx = [0u8; TX_FRAME];
                let fits = meta.header_len + payload_len <= tx.len();
                if fits {
                    let echoed = payload_len.min(request.len());
                    tx[meta.header_len..][..echoed].copy_from_slice(&request[..echoed]);
                }
                match frame::write_headers(&mut tx, &meta, &from, to, payload_len) {
                    Ok(len) => {
                        assert!(
                            fits,
                            "a reply of {payload_len} bytes was written into {TX_FRAME}"
                        );
                        assert_eq!(len, meta.header_len + payload_len);
                        let reply = &tx[..len];
                        let (headers, payload) =
                            Headers::parse(reply).expect("our own reply frame parses");
                        assert_eq!(payload, meta.payload().start..len);
                        assert!(headers.verify_checksum(reply), "reply checksum");
                        assert_eq!(headers.ipv6.destination, meta.source);
                        assert_eq!(headers.destination_mac, meta.source_mac);
                    }
                    Err(FrameError::TooLarge) => assert!(!fits),
                    Err(FrameError::NoGlobalAddress) => assert!(from.global.is_none()),
                    Err(error) => panic!("writing a reply failed: {error}"),
                }
            }
        }
    }
});
