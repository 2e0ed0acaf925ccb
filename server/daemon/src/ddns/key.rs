//! TSIG keys (RFC 8945) read from a BIND key file, as `tsig-keygen` writes it:
//!
//! ```text
//! key "xdhcp6-ddns" {
//!     algorithm hmac-sha256;
//!     secret "base64…";
//! };
//! ```

use std::path::Path;

use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, TSigner};

/// Seconds of clock difference the DNS server may see (RFC 8945 §5.2.3 recommends 300).
const FUDGE: u16 = 300;

/// A TSIG key: its name, algorithm and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// The key's name, as the DNS server knows it.
    pub name: String,
    /// `hmac-sha256`, `hmac-sha384` or `hmac-sha512`.
    pub algorithm: String,
    /// The shared secret.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TsigKey {
    /// Reads the first key of a BIND key file; an error says what is wrong (the caller names
    /// the file and the field).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the first `key` statement of a BIND configuration text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tokens = tokens(text);
        let mut at = tokens
            .iter()
            .position(|t| t == "key")
            .ok_or("no key statement (key \"name\" { algorithm …; secret \"…\"; };)")?;
        at += 1;
        let name = tokens.get(at).ok_or("the key has no name")?.clone();
        at += 1;
        if tokens.get(at).map(String::as_str) != Some("{") {
            return Err(format!("expected {{ after key \"{name}\""));
        }
        at += 1;
        let (mut algorithm, mut secret) = (None, None);
        while let Some(token) = tokens.get(at) {
            match token.as_str() {
                "}" => break,
                "algorithm" => {
                    algorithm = tokens.get(at + 1).cloned();
                    at += 3;
                }
                "secret" => {
                    secret = tokens.get(at + 1).cloned();
                    at += 3;
                }
                _ => at += 1,
            }
        }
        let algorithm = algorithm
            .ok_or(format!("key \"{name}\" has no algorithm"))?
            .to_ascii_lowercase();
        if !matches!(
            algorithm.as_str(),
            "hmac-sha256" | "hmac-sha384" | "hmac-sha512"
        ) {
            return Err(format!(
                "key \"{name}\": algorithm {algorithm} is not hmac-sha256, hmac-sha384 or \
                 hmac-sha512"
            ));
        }
        let secret = secret.ok_or(format!("key \"{name}\" has no secret"))?;
        let secret = data_encoding::BASE64
            .decode(secret.as_bytes())
            .map_err(|e| format!("key \"{name}\": the secret is not base64: {e}"))?;
        if secret.is_empty() {
            return Err(format!("key \"{name}\": the secret is empty"));
        }
        Ok(Self {
            name,
            algorithm,
            secret,
        })
    }

    /// The signer hickory-proto signs messages with.
    pub fn signer(&self) -> Result<TSigner, String> {
        let algorithm = match self.algorithm.as_str() {
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            _ => TsigAlgorithm::HmacSha256,
        };
        let name =
            Name::from_ascii(&self.name).map_err(|e| format!("key name {:?}: {e}", self.name))?;
        TSigner::new(self.secret.clone(), algorithm, name, FUDGE)
            .map_err(|e| format!("key \"{}\": {e}", self.name))
    }
}

/// Words, quoted strings (without quotes) and the punctuation `{`, `}`, `;`; comments
/// (`#`, `//`, `/* */`) dropped.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                let mut word = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    word.push(c);
                }
                out.push(word);
            }
            '{' | '}' | ';' => out.push(c.to_string()),
            c if c.is_whitespace() => {}
            c => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || matches!(next, '{' | '}' | ';' | '"') {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                out.push(word);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_tsig_keygen_writes() {
        let text = "key \"xdhcp6-ddns\" {\n\talgorithm hmac-sha256;\n\tsecret \
                    \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\";\n};\n";
        let key = TsigKey::parse(text).unwrap();
        assert_eq!(key.name, "xdhcp6-ddns");
        assert_eq!(key.algorithm, "hmac-sha256");
        assert_eq!(key.secret, b"secret-secret-secret");
        assert!(key.signer().is_ok());
    }

    #[test]
    fn comments_and_errors() {
        let text = "# made by hand\n// another\n/* block */ key k { secret \"AAAA\"; \
                    algorithm HMAC-SHA512; };";
        let key = TsigKey::parse(text).unwrap();
        assert_eq!(key.algorithm, "hmac-sha512");
        assert!(
            TsigKey::parse("key k { algorithm hmac-md5; secret \"AAAA\"; };")
                .unwrap_err()
                .contains("hmac-md5")
        );
        assert!(
            TsigKey::parse("key k { algorithm hmac-sha256; };")
                .unwrap_err()
                .contains("no secret")
        );
        assert!(
            TsigKey::parse("key k { algorithm hmac-sha256; secret \"!!\"; };")
                .unwrap_err()
                .contains("base64")
        );
        assert!(TsigKey::parse("").is_err());
    }
}
