//! Lease journal records: decoding arbitrary bytes never panics, and every record that decodes
//! re-encodes (as the current version) to a record that decodes to the same event; a
//! current-version record re-encodes to its own bytes.
//!
//! The first input byte picks the format version the rest is read as (odd: version 1; even:
//! by its bits 1 and 2, 0: version 2, 2: version 3, else the current one). The rest is read three times: as one bare payload (no frame, so that the
//! fuzzer need not match checksums to reach the field decoder), as a run of framed records, as
//! after a file's header, and as a whole file replayed (damaged records skipped, the replay
//! resynchronising on the next good one), whose counts must add up.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

use xdhcp6d::journal::format::{self, Entry, FRAME_LEN, VERSION, VERSION_1, VERSION_2, VERSION_3};
use xdhcp6d::journal::{LinkNames, replay_bytes};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let version = match selector & 7 {
        1 | 3 | 5 | 7 => VERSION_1,
        0 => VERSION_2,
        2 => VERSION_3,
        _ => VERSION,
    };
    let _ = format::is_header_start(&rest[..rest.len().min(format::HEADER_LEN as usize - 1)]);
    let mut out = Vec::new();
    if let Some(entry) = format::decode(version, rest) {
        round_trip(&entry, &mut out);
        if version == VERSION {
            assert_eq!(out[FRAME_LEN..], *rest, "re-encoding changed the payload");
        }
    }
    let records = rest;
    while let Ok((entry, used)) = format::decode_record(version, rest) {
        assert!(used <= rest.len());
        round_trip(&entry, &mut out);
        if version == VERSION {
            assert_eq!(out, rest[..used], "re-encoding changed the record");
        }
        rest = &rest[used..];
    }
    replay(version, records);
});

/// Replays `records` as a whole file of `version` (resynchronising after damage) and checks
/// that what it reports adds up.
fn replay(version: u32, records: &[u8]) {
    let mut file = format::header(version).to_vec();
    file.extend_from_slice(records);
    let links = LinkNames::new(["link-0", "link-1"]);
    let replay = replay_bytes(&file, Path::new("fuzz.journal"), &links).expect("a journal");
    let len = file.len() as u64;
    assert!(replay.valid_bytes >= format::HEADER_LEN && replay.valid_bytes <= len);
    assert!(replay.valid_bytes + replay.torn_bytes <= len);
    assert!(replay.skipped_bytes <= len - format::HEADER_LEN);
    assert_eq!(replay.corrupt, replay.damaged_records > 0);
    assert!(replay.events * (format::FRAME_LEN as u64) <= len);
}

/// Encodes `entry` into `out` as the current version and checks that it decodes back to it.
fn round_trip(entry: &Entry<'_>, out: &mut Vec<u8>) {
    out.clear();
    format::encode(out, entry.kind, entry.at, &entry.link, &entry.record);
    assert_eq!(
        out.len() as u64,
        format::encoded_len(&entry.link, &entry.record)
    );
    let (again, used) = format::decode_record(VERSION, out).expect("a re-encoded record decodes");
    assert_eq!(used, out.len());
    assert_eq!(&again, entry, "re-encoding changed the event");
}
