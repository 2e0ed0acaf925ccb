//! Real captured DHCPv6 payloads (a prefix-delegation exchange), as shipped in the test
//! suite of the `dhcproto` crate (MIT licensed), used here as an independent sample.

/// (name, hex of the DHCPv6 UDP payload).
pub const CAPTURED: &[(&str, &str)] = &[
    (
        "captured_solicit",
        concat!(
            "011008740001000e000100011c39cf88080027fe8f9500060004001700180008000200000019000c27fe8f9500000e10",
            "00001518",
        ),
    ),
    (
        "captured_advertise",
        concat!(
            "021008740019002927fe8f950000000000000000001a00190000119400001c2040200100000000fe0000000000000000",
            "000001000e000100011c39cf88080027fe8f950002000e000100011c3825e8080027d410bb",
        ),
    ),
    (
        "captured_request",
        concat!(
            "0349174e0001000e000100011c39cf88080027fe8f950002000e000100011c3825e8080027d410bb0006000400170018",
            "0008000200000019002927fe8f9500000e1000001518001a001900001c2000001d4c40200100000000fe000000000000",
            "000000",
        ),
    ),
    (
        "captured_reply",
        concat!(
            "0749174e0019002927fe8f950000000000000000001a00190000119400001c2040200100000000fe0000000000000000",
            "000001000e000100011c39cf88080027fe8f950002000e000100011c3825e8080027d410bb",
        ),
    ),
];
