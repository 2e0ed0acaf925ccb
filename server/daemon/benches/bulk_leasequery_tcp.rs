//! Bulk Leasequery (RFC 5460) end to end over a loopback TCP connection: the daemon's
//! listener thread (one core, its own tokio runtime) streams one relay's bindings to a
//! requestor that reads every frame, checks its type and transaction-id and counts the
//! bindings; prints leases per second for each run. `cargo bench -p xdhcp6d --bench
//! bulk_leasequery_tcp [-- COUNT [RUNS]]` (default 1,000,000 leases, 5 runs).

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use xdhcp6_engine::testing::T0;
use xdhcp6_engine::testing::bulk_leasequery::{bench_query, one_relay_engine};
use xdhcp6d::bulk_leasequery::{self, BulkStats};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let count: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let started = Instant::now();
    let engine = one_relay_engine(count);
    eprintln!(
        "{count} leases of one relay loaded in {:?}",
        started.elapsed()
    );
    let stats = Arc::new(BulkStats::default());
    // The configuration lists ::1 among the requestors.
    let probe = {
        let engine = Arc::clone(&engine);
        Arc::new(move || Arc::clone(&engine))
    };
    let listen: SocketAddr = "[::1]:0".parse().unwrap();
    let handle = bulk_leasequery::spawn(&[listen], 1, probe, Arc::clone(&stats), || T0 + 10)
        .expect("the listener starts");
    let server = handle.local_addrs()[0];
    let mut rates = Vec::new();
    for run in 0..runs {
        let xid = 0x51 + run;
        let mut stream = TcpStream::connect(server).expect("connects");
        stream.set_nodelay(true).unwrap();
        let query = bench_query(xid);
        let mut frame = (query.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&query);
        let started = Instant::now();
        stream.write_all(&frame).unwrap();
        let mut reader = BufReader::with_capacity(256 * 1024, stream);
        let mut bindings = 0u64;
        let mut bytes = 0u64;
        let mut message = vec![0u8; 65535];
        loop {
            let mut length = [0u8; 2];
            reader.read_exact(&mut length).expect("a frame");
            let len = usize::from(u16::from_be_bytes(length));
            reader.read_exact(&mut message[..len]).expect("a message");
            bytes += 2 + len as u64;
            let (msg_type, id) = (
                message[0],
                u32::from_be_bytes([0, message[1], message[2], message[3]]),
            );
            assert_eq!(id, xid, "transaction-id");
            match msg_type {
                // LEASEQUERY-REPLY (with the first binding) and LEASEQUERY-DATA.
                15 | 17 => bindings += 1,
                16 => break,
                other => panic!("message type {other}"),
            }
        }
        let elapsed = started.elapsed();
        assert_eq!(bindings, count, "every binding streamed");
        let rate = count as f64 / elapsed.as_secs_f64();
        println!(
            "run {run}: {count} leases, {bytes} bytes in {elapsed:?}: {:.0} leases/s, {:.0} MB/s",
            rate,
            bytes as f64 / elapsed.as_secs_f64() / 1e6
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "bulk leasequery over loopback TCP: median {:.0} leases/s, best {:.0} leases/s ({} runs)",
        rates[rates.len() / 2],
        rates[rates.len() - 1],
        rates.len()
    );
    assert_eq!(stats.leases_streamed(), count * u64::from(runs));
    drop(handle);
}
