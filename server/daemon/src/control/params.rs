//! Query parameters of the control API, validated: every refusal names the parameter and
//! the value, and nothing unbounded is kept.

use std::net::Ipv6Addr;

use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::table::IaKind;

use super::error::ApiError;

/// The most leases one page lists.
pub const MAX_LIMIT: usize = 1000;

/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// The longest DUID (RFC 9915 §11.1: 128 bytes after the 2-byte type).
pub const MAX_DUID: usize = 130;

/// The longest link-layer address taken (RFC 6939 and DUID-LL allow any; 32 bytes is
/// more than any hardware type uses).
pub const MAX_LINK_LAYER: usize = 32;

/// The longest link name (the journal's limit).
pub const MAX_LINK_NAME: usize = 255;

/// The most query parameters one request may carry.
pub const MAX_PARAMS: usize = 16;

/// A lease, or a place in the address order: an address (`na`) or a prefix (`pd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The address, or the prefix's first address.
    pub addr: u128,
    /// 0 for an address, 1 for a prefix: an address sorts before a prefix at the same bits.
    pub kind: u8,
}

impl Position {
    /// The position of a lease.
    pub fn of(addr: u128, kind: IaKind) -> Self {
        Self {
            addr,
            kind: match kind {
                IaKind::Na => 0,
                IaKind::Pd => 1,
            },
        }
    }
}

/// What `GET /v1/leases` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseQuery {
    /// The lease on one address.
    Address(Ipv6Addr),
    /// The lease of one delegated prefix.
    Prefix(Prefix),
    /// A client's leases, of one IA when `iaid` is given.
    Duid {
        /// The DUID's bytes.
        duid: Vec<u8>,
        /// The IAID.
        iaid: Option<u32>,
    },
    /// Leases of clients whose DUID (DUID-LL or DUID-LLT) carries this link-layer address.
    LinkLayer(Vec<u8>),
    /// A page of every lease, or of one link's, or of one pool slice's.
    List(ListQuery),
}

/// A page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this link's leases.
    pub link: Option<String>,
    /// Only this pool slice of the link (numbered as `GET /v1/pools` shows).
    pub pool: Option<usize>,
    /// Only leases after this position.
    pub after: Option<Position>,
    /// At most this many.
    pub limit: usize,
}

/// What `DELETE /v1/leases` releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseQuery {
    /// The lease on an address.
    Address(Ipv6Addr),
    /// The lease of a delegated prefix.
    Prefix(Prefix),
}

/// Query parameters, each known to the request and given at most once.
#[derive(Debug, Default)]
struct Params<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    fn new(pairs: &'a [(String, String)], known: &[&str]) -> Result<Self, ApiError> {
        if pairs.len() > MAX_PARAMS {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("more than {MAX_PARAMS} query parameters"),
            ));
        }
        let mut params = Params::default();
        for (name, value) in pairs {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::invalid(
                    name,
                    format!(
                        "is not a parameter of this request (it takes {})",
                        known.join(", ")
                    ),
                ));
            }
            if params.get(name).is_some() {
                return Err(ApiError::invalid(name, "is given more than once"));
            }
            params.pairs.push((name, value));
        }
        Ok(params)
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| *value)
    }

    /// Refuses `name` unless `allowed`, saying what it needs.
    fn only_with(&self, name: &str, allowed: bool, needs: &str) -> Result<(), ApiError> {
        if self.get(name).is_some() && !allowed {
            return Err(ApiError::invalid(
                name,
                format!("is only taken with {needs}"),
            ));
        }
        Ok(())
    }
}

/// Parses the parameters of `GET /v1/leases`: at most one of `address`, `prefix`, `duid`
/// (with `iaid`), `hw-address`; none lists, by `link` (and `pool`), `after` and `limit`.
pub fn lease_query(pairs: &[(String, String)]) -> Result<LeaseQuery, ApiError> {
    const SELECTORS: [&str; 4] = ["address", "prefix", "duid", "hw-address"];
    let params = Params::new(
        pairs,
        &[
            "address",
            "prefix",
            "duid",
            "iaid",
            "hw-address",
            "link",
            "pool",
            "after",
            "limit",
        ],
    )?;
    let given: Vec<&str> = SELECTORS
        .into_iter()
        .filter(|name| params.get(name).is_some())
        .collect();
    if let [first, second, ..] = given[..] {
        return Err(ApiError::invalid(
            second,
            format!("cannot be combined with {first}: look a lease up one way at a time"),
        ));
    }
    let listing = given.is_empty();
    let by_duid = params.get("duid").is_some();
    params.only_with("iaid", by_duid, "duid")?;
    for name in ["link", "after", "limit"] {
        params.only_with(
            name,
            listing,
            "a listing (no address, prefix, duid or hw-address)",
        )?;
    }
    params.only_with("pool", params.get("link").is_some(), "link")?;

    if let Some(text) = params.get("address") {
        return Ok(LeaseQuery::Address(address("address", text)?));
    }
    if let Some(text) = params.get("prefix") {
        return Ok(LeaseQuery::Prefix(prefix("prefix", text)?));
    }
    if let Some(text) = params.get("duid") {
        let duid = hex_bytes("duid", text, MAX_DUID)?;
        let iaid = params
            .get("iaid")
            .map(|text| number::<u32>("iaid", text))
            .transpose()?;
        return Ok(LeaseQuery::Duid { duid, iaid });
    }
    if let Some(text) = params.get("hw-address") {
        return Ok(LeaseQuery::LinkLayer(hex_bytes(
            "hw-address",
            text,
            MAX_LINK_LAYER,
        )?));
    }
    let link = params
        .get("link")
        .map(|text| link("link", text))
        .transpose()?;
    let pool = params
        .get("pool")
        .map(|text| number::<usize>("pool", text))
        .transpose()?;
    let after = params
        .get("after")
        .map(|text| position("after", text))
        .transpose()?;
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => {
            let limit = number::<usize>("limit", text)?;
            if !(1..=MAX_LIMIT).contains(&limit) {
                return Err(ApiError::invalid(
                    "limit",
                    format!("{limit} is not between 1 and {MAX_LIMIT}"),
                ));
            }
            limit
        }
    };
    Ok(LeaseQuery::List(ListQuery {
        link,
        pool,
        after,
        limit,
    }))
}

/// Parses the parameters of `DELETE /v1/leases`: `address` or `prefix`.
pub fn release_query(pairs: &[(String, String)]) -> Result<ReleaseQuery, ApiError> {
    let params = Params::new(pairs, &["address", "prefix"])?;
    match (params.get("address"), params.get("prefix")) {
        (Some(text), None) => Ok(ReleaseQuery::Address(address("address", text)?)),
        (None, Some(text)) => Ok(ReleaseQuery::Prefix(prefix("prefix", text)?)),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "prefix",
            "cannot be combined with address: release one lease at a time",
        )),
        (None, None) => Err(ApiError::invalid(
            "address",
            "is missing: name the lease to release with address=ADDRESS or prefix=PREFIX",
        )),
    }
}

/// An IPv6 address.
pub fn address(field: &str, text: &str) -> Result<Ipv6Addr, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::invalid(field, format!("{:?} is not an IPv6 address", shown(text))))
}

/// A prefix with its length, host bits clear.
pub fn prefix(field: &str, text: &str) -> Result<Prefix, ApiError> {
    text.trim().parse::<Prefix>().map_err(|error| {
        ApiError::invalid(
            field,
            format!(
                "{:?} is not a prefix like 2001:db8:100::/56: {error}",
                shown(text)
            ),
        )
    })
}

/// An address, or a prefix (with `/`): a position in the address order.
pub fn position(field: &str, text: &str) -> Result<Position, ApiError> {
    if text.contains('/') {
        let prefix = prefix(field, text)?;
        Ok(Position::of(prefix.bits(), IaKind::Pd))
    } else {
        let address = address(field, text).map_err(|_| {
            ApiError::invalid(
                field,
                format!(
                    "{:?} is neither an IPv6 address nor a prefix (use the `next` value of the \
                     previous page)",
                    shown(text)
                ),
            )
        })?;
        Ok(Position::of(u128::from(address), IaKind::Na))
    }
}

/// A decimal number of type `T`.
pub fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<T, ApiError> {
    text.trim().parse().map_err(|_| {
        ApiError::invalid(field, format!("{:?} is not a number in range", shown(text)))
    })
}

/// A link name: not empty, at most [`MAX_LINK_NAME`] bytes.
pub fn link(field: &str, text: &str) -> Result<String, ApiError> {
    if text.is_empty() || text.len() > MAX_LINK_NAME {
        return Err(ApiError::invalid(
            field,
            format!("a link name has 1 to {MAX_LINK_NAME} bytes"),
        ));
    }
    Ok(text.to_owned())
}

/// Hex bytes, with or without `:` or `-` between them (`00:03:00:01:...`, `000300...`), at
/// most `max` of them.
pub fn hex_bytes(field: &str, text: &str, max: usize) -> Result<Vec<u8>, ApiError> {
    let bad = || {
        ApiError::invalid(
            field,
            format!(
                "{:?} is not hexadecimal bytes like 00:03:00:01:02:00:00:00:00:01",
                shown(text)
            ),
        )
    };
    let text = text.trim();
    let separated = text.contains([':', '-']);
    let mut bytes = Vec::new();
    let mut push = |pair: &str| -> Result<(), ApiError> {
        if bytes.len() == max {
            return Err(ApiError::invalid(
                field,
                format!("is longer than {max} bytes"),
            ));
        }
        bytes.push(u8::from_str_radix(pair, 16).map_err(|_| bad())?);
        Ok(())
    };
    if separated {
        for part in text.split([':', '-']) {
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            push(part)?;
        }
    } else {
        if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        for index in (0..text.len()).step_by(2) {
            push(&text[index..index + 2])?;
        }
    }
    if bytes.is_empty() {
        return Err(bad());
    }
    Ok(bytes)
}

/// A value as an error message shows it: cut to 80 characters, so that a huge value does not
/// come back whole.
fn shown(text: &str) -> &str {
    match text.char_indices().nth(80) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn refused(query: &[(&str, &str)]) -> ApiError {
        lease_query(&pairs(query)).unwrap_err()
    }

    #[test]
    fn each_lookup_parses() {
        assert_eq!(
            lease_query(&pairs(&[("address", "2001:db8::5")])).unwrap(),
            LeaseQuery::Address("2001:db8::5".parse().unwrap())
        );
        assert_eq!(
            lease_query(&pairs(&[("prefix", "2001:db8:100::/56")])).unwrap(),
            LeaseQuery::Prefix("2001:db8:100::/56".parse().unwrap())
        );
        assert_eq!(
            lease_query(&pairs(&[
                ("duid", "00:03:00:01:02:00:00:00:00:01"),
                ("iaid", "7")
            ]))
            .unwrap(),
            LeaseQuery::Duid {
                duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
                iaid: Some(7)
            }
        );
        assert_eq!(
            lease_query(&pairs(&[("duid", "0003000102")])).unwrap(),
            LeaseQuery::Duid {
                duid: vec![0, 3, 0, 1, 2],
                iaid: None
            }
        );
        assert_eq!(
            lease_query(&pairs(&[("hw-address", "02-00-00-00-00-01")])).unwrap(),
            LeaseQuery::LinkLayer(vec![2, 0, 0, 0, 0, 1])
        );
    }

    #[test]
    fn a_listing_takes_link_pool_after_and_limit() {
        assert_eq!(
            lease_query(&[]).unwrap(),
            LeaseQuery::List(ListQuery {
                link: None,
                pool: None,
                after: None,
                limit: DEFAULT_LIMIT
            })
        );
        let LeaseQuery::List(list) = lease_query(&pairs(&[
            ("link", "access-1"),
            ("pool", "1"),
            ("after", "2001:db8:100::/56"),
            ("limit", "5"),
        ]))
        .unwrap() else {
            panic!("not a listing");
        };
        assert_eq!(list.link.as_deref(), Some("access-1"));
        assert_eq!(list.pool, Some(1));
        assert_eq!(
            list.after,
            Some(Position {
                addr: u128::from("2001:db8:100::".parse::<Ipv6Addr>().unwrap()),
                kind: 1
            })
        );
        assert_eq!(list.limit, 5);
        // An address sorts before a prefix at the same bits, and before any later address.
        assert!(Position::of(5, IaKind::Na) < Position::of(5, IaKind::Pd));
        assert!(Position::of(5, IaKind::Pd) < Position::of(6, IaKind::Na));
    }

    #[test]
    fn bad_values_name_their_field() {
        let error = refused(&[("address", "2001:db8::zz")]);
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.field.as_deref(), Some("address"));
        assert_eq!(
            error.error,
            "address: \"2001:db8::zz\" is not an IPv6 address"
        );
        let error = refused(&[("prefix", "2001:db8:100::1/56")]);
        assert_eq!(error.field.as_deref(), Some("prefix"));
        assert!(error.error.contains("host bits are set"), "{}", error.error);
        assert_eq!(
            refused(&[("prefix", "2001:db8::")]).field.as_deref(),
            Some("prefix")
        );
        assert_eq!(refused(&[("duid", "00:zz")]).field.as_deref(), Some("duid"));
        assert_eq!(refused(&[("duid", "0")]).field.as_deref(), Some("duid"));
        assert_eq!(refused(&[("duid", "")]).field.as_deref(), Some("duid"));
        assert_eq!(
            refused(&[("duid", "00::01")]).field.as_deref(),
            Some("duid")
        );
        let long = "00".repeat(MAX_DUID + 1);
        let error = refused(&[("duid", &long)]);
        assert_eq!(error.error, "duid: is longer than 130 bytes");
        let error = refused(&[("duid", "0001"), ("iaid", "-1")]);
        assert_eq!(error.field.as_deref(), Some("iaid"));
        assert_eq!(
            refused(&[("hw-address", "02:00:00:00:00:0g")])
                .field
                .as_deref(),
            Some("hw-address")
        );
        for limit in ["0", "1001", "many"] {
            let error = refused(&[("limit", limit)]);
            assert_eq!(error.field.as_deref(), Some("limit"), "{limit}");
        }
        assert_eq!(
            refused(&[("after", "nowhere")]).field.as_deref(),
            Some("after")
        );
        assert_eq!(refused(&[("link", "")]).field.as_deref(), Some("link"));
        let error = refused(&[("link", "a"), ("pool", "x")]);
        assert_eq!(error.field.as_deref(), Some("pool"));
        // A huge value is not echoed whole.
        let huge = "x".repeat(10_000);
        assert!(refused(&[("address", &huge)]).error.len() < 200);
    }

    #[test]
    fn combinations_are_checked() {
        let error = refused(&[("address", "2001:db8::1"), ("prefix", "2001:db8::/56")]);
        assert_eq!(error.field.as_deref(), Some("prefix"));
        assert!(error.error.contains("cannot be combined with address"));
        assert_eq!(
            refused(&[("iaid", "1")]).field.as_deref(),
            Some("iaid"),
            "iaid needs duid"
        );
        assert_eq!(refused(&[("pool", "0")]).field.as_deref(), Some("pool"));
        assert_eq!(
            refused(&[("address", "2001:db8::1"), ("limit", "3")])
                .field
                .as_deref(),
            Some("limit")
        );
        let error = refused(&[("adress", "2001:db8::1")]);
        assert_eq!(error.field.as_deref(), Some("adress"));
        assert!(
            error.error.contains("is not a parameter"),
            "{}",
            error.error
        );
        let error = refused(&[("link", "a"), ("link", "b")]);
        assert_eq!(error.error, "link: is given more than once");
        let many: Vec<(&str, &str)> = vec![("link", "a"); MAX_PARAMS + 1];
        assert_eq!(refused(&many).status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_release_names_one_lease() {
        assert_eq!(
            release_query(&pairs(&[("address", "2001:db8::5")])).unwrap(),
            ReleaseQuery::Address("2001:db8::5".parse().unwrap())
        );
        assert_eq!(
            release_query(&pairs(&[("prefix", "2001:db8:100::/56")])).unwrap(),
            ReleaseQuery::Prefix("2001:db8:100::/56".parse().unwrap())
        );
        assert_eq!(
            release_query(&[]).unwrap_err().field.as_deref(),
            Some("address")
        );
        assert_eq!(
            release_query(&pairs(&[("duid", "00:01")]))
                .unwrap_err()
                .field
                .as_deref(),
            Some("duid")
        );
    }
}
