//! `[leasequery]`: who may ask this server about its bindings (RFC 5007), and the Bulk
//! Leasequery listener (RFC 5460).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::raw::Seconds;
use super::{BulkLeasequerySettings, LeasequerySettings};
use crate::prefix::Prefix;

/// `[leasequery]` as the file has it.
#[derive(Deserialize, Serialize, Clone, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawLeasequery {
    /// Prefixes Leasequery requestors send from (default empty: nobody is answered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requestors: Vec<String>,
    /// TCP addresses for Bulk Leasequery (default empty: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bulk_listen: Vec<String>,
    /// Bulk Leasequery connections at once (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_max_connections: Option<u32>,
    /// Idle time before a Bulk Leasequery connection is closed (default 300 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_idle_timeout: Option<Seconds>,
    /// Queries on one Bulk Leasequery connection (default 1,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_max_queries: Option<u32>,
}

impl RawLeasequery {
    pub(crate) fn is_empty(&self) -> bool {
        self.requestors.is_empty()
            && self.bulk_listen.is_empty()
            && self.bulk_max_connections.is_none()
            && self.bulk_idle_timeout.is_none()
            && self.bulk_max_queries.is_none()
    }
}

/// Validates `[leasequery]`; an error names its field.
pub(crate) fn build(raw: &RawLeasequery) -> Result<LeasequerySettings, (String, String)> {
    let mut requestors: Vec<Prefix> = Vec::new();
    for (i, text) in raw.requestors.iter().enumerate() {
        let field = format!("leasequery.requestors[{i}]");
        let prefix: Prefix = text.parse().map_err(|e| (field.clone(), format!("{e}")))?;
        if requestors.contains(&prefix) {
            return Err((field, format!("{prefix} is listed twice")));
        }
        requestors.push(prefix);
    }
    let defaults = BulkLeasequerySettings::default();
    let mut listen: Vec<SocketAddr> = Vec::new();
    for (i, text) in raw.bulk_listen.iter().enumerate() {
        let field = format!("leasequery.bulk-listen[{i}]");
        let address: SocketAddr = text.parse().map_err(|_| {
            (
                field.clone(),
                format!("{text:?} is not an address and port such as \"[::]:547\""),
            )
        })?;
        if listen.contains(&address) {
            return Err((field, format!("{address} is listed twice")));
        }
        listen.push(address);
    }
    let positive = |field: &str, value: Option<u32>, default: u32| match value {
        Some(0) => Err((
            format!("leasequery.{field}"),
            "must be at least 1".to_owned(),
        )),
        Some(value) => Ok(value),
        None => Ok(default),
    };
    let bulk = BulkLeasequerySettings {
        listen,
        max_connections: positive(
            "bulk-max-connections",
            raw.bulk_max_connections,
            defaults.max_connections as u32,
        )? as usize,
        idle_timeout: positive(
            "bulk-idle-timeout",
            raw.bulk_idle_timeout.map(|seconds| seconds.0),
            defaults.idle_timeout,
        )?,
        max_queries: positive(
            "bulk-max-queries",
            raw.bulk_max_queries,
            defaults.max_queries,
        )?,
    };
    Ok(LeasequerySettings { requestors, bulk })
}

/// The settings back as the file has them.
pub(crate) fn unbuild(settings: &LeasequerySettings) -> RawLeasequery {
    let defaults = BulkLeasequerySettings::default();
    RawLeasequery {
        requestors: settings
            .requestors
            .iter()
            .map(|prefix| prefix.to_string())
            .collect(),
        bulk_listen: settings
            .bulk
            .listen
            .iter()
            .map(|address| address.to_string())
            .collect(),
        bulk_max_connections: Some(settings.bulk.max_connections as u32)
            .filter(|value| *value != defaults.max_connections as u32),
        bulk_idle_timeout: Some(settings.bulk.idle_timeout)
            .filter(|value| *value != defaults.idle_timeout)
            .map(Seconds),
        bulk_max_queries: Some(settings.bulk.max_queries)
            .filter(|value| *value != defaults.max_queries),
    }
}
