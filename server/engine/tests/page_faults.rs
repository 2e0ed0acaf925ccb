//! The lease table's memory for its expected leases is there from the start: binding up to
//! that many leases takes no page fault (and, with transparent huge pages, zeroes no 2 MiB
//! page) inside the request that binds them.
//!
//! Counted with `getrusage(RUSAGE_THREAD)`, the minor page faults of the thread that binds.

use xdhcp6_engine::alloc::{AllocKey, Range, SaltKey};
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::table::{ClaimAs, IaKind, LeaseEvent, LeaseTable, Lifetimes};

/// Expected leases: 64 address shards of 16,384 records (80 bytes each, 1.25 MiB a shard).
const EXPECTED: usize = 1 << 20;

/// The minor page faults of the calling thread so far.
fn minor_faults() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // Safety: `usage` is a valid, writable rusage for the call to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    // Safety: getrusage succeeded and filled it.
    unsafe { usage.assume_init() }.ru_minflt
}

#[test]
fn binding_half_the_expected_leases_takes_no_page_fault() {
    let table = LeaseTable::with_capacity(EXPECTED, SaltKey::from_salt("page faults"));
    let pool: Prefix = "2001:db8:1::/64".parse().unwrap();
    let range = Range::addresses(pool, pool, 0).unwrap();
    let life = Lifetimes {
        preferred: 3600,
        valid: 7200,
    };
    // Made before counting: what the loop reuses.
    let mut events: Vec<LeaseEvent> = Vec::with_capacity(4);
    let mut duid = [0u8, 1, 0, 1, 0x2a, 0x2b, 0, 0, 0, 0, 0, 0, 0, 0];
    // Half: every shard stays well inside its share (a shard's count varies by about 1 %).
    let leases = EXPECTED / 2;

    let before = minor_faults();
    for client in 0..leases as u64 {
        duid[6..].copy_from_slice(&client.to_be_bytes());
        let key = table.ia_key(&duid, 1, IaKind::Na, LinkId(0));
        let alloc = AllocKey::new(table.salt(), key.duid(), key.iaid(), "access-1");
        events.clear();
        range
            .allocate(&alloc, |addr| {
                table
                    .claim(&key, addr, 128, ClaimAs::Bound, life, 0, &mut events)
                    .ok()
            })
            .expect("a free address in a /64");
    }
    let faults = minor_faults() - before;

    assert_eq!(table.len(), leases);
    // Unpopulated, the records (40 MiB here) and the expiry heaps (4 MiB) fault in as they
    // fill: thousands of faults with 4 KiB pages, tens with huge pages.
    assert!(
        faults <= 4,
        "binding {leases} leases into a table sized for {EXPECTED} took {faults} page faults"
    );
}
