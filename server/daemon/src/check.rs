//! What `xdhcp6d check-config` checks beyond the file's own validation: the parts of start-up
//! that read something other than the configuration text. The runtime reservations are
//! merged the way start-up merges them ([`crate::reload::check`]); the Bulk Leasequery
//! listeners are tried here.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use xdhcp6_engine::config::{Config, ConfigError};

/// Checks that every `[leasequery] bulk-listen` address is one this host can listen on, as
/// start-up binds them. The port is left alone (port 0 is bound instead): a running server
/// holds it, and a privileged port needs the rights the server starts with.
pub fn bulk_listeners(file: &Path, config: &Config) -> Result<(), ConfigError> {
    for (index, address) in config.leasequery.bulk.listen.iter().enumerate() {
        let probe = SocketAddr::new(address.ip(), 0);
        if let Err(error) = TcpListener::bind(probe) {
            return Err(ConfigError::new(
                &file.display().to_string(),
                format!("leasequery.bulk-listen[{index}]"),
                format!(
                    "{address}: this host cannot listen on {}: {error}",
                    address.ip()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str) -> Config {
        Config::from_toml_str(
            &format!(
                "[server]\nduid = \"00:03:00:01:02:00:00:00:00:01\"\n[[link]]\nname = \"a\"\n\
                 interfaces = [\"eth0\"]\n[[link.pool]]\nprefix = \"2001:db8::/64\"\n\
                 [leasequery]\nbulk-listen = [{listen}]\n"
            ),
            "server.toml",
        )
        .unwrap()
    }

    #[test]
    fn an_address_of_this_host_passes_and_one_it_lacks_is_named() {
        let file = Path::new("server.toml");
        bulk_listeners(file, &config("\"[::1]:547\", \"127.0.0.1:5470\"")).unwrap();
        // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): on no host.
        let error = bulk_listeners(file, &config("\"[::1]:547\", \"192.0.2.7:547\"")).unwrap_err();
        assert_eq!(error.file(), "server.toml");
        assert_eq!(error.field(), "leasequery.bulk-listen[1]");
        assert!(
            error
                .problem()
                .contains("this host cannot listen on 192.0.2.7"),
            "{error}"
        );
    }
}
