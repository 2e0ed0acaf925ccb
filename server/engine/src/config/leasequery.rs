//! `[leasequery]`: who may ask this server about its bindings (RFC 5007).

use serde::{Deserialize, Serialize};

use super::LeasequerySettings;
use crate::prefix::Prefix;

/// `[leasequery]` as the file has it.
#[derive(Deserialize, Serialize, Clone, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawLeasequery {
    /// Prefixes Leasequery requestors send from (default empty: nobody is answered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requestors: Vec<String>,
}

impl RawLeasequery {
    pub(crate) fn is_empty(&self) -> bool {
        self.requestors.is_empty()
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
    Ok(LeasequerySettings { requestors })
}

/// The settings back as the file has them.
pub(crate) fn unbuild(settings: &LeasequerySettings) -> RawLeasequery {
    RawLeasequery {
        requestors: settings
            .requestors
            .iter()
            .map(|prefix| prefix.to_string())
            .collect(),
    }
}
