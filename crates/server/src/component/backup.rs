//! `wxgate component export` / `import`: every authorizer's refresh token, for backups
//! and moves between stores, in a file encrypted with AES-256-GCM under a key from the
//! environment ([`KEY_ENV`]), so a backup is no more readable than the store itself.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wxgate_proto::pay::Resource;

use super::Authorizer;
use crate::error::{Error, Result};

/// The environment variable holding the export key (any passphrase; at least 16
/// characters).
pub const KEY_ENV: &str = "COMPONENT_EXPORT_KEY";
const FORMAT: &str = "wxgate-component-export/1";

/// The file.
#[derive(Debug, Serialize, Deserialize)]
struct File {
    format: String,
    component_appid: String,
    nonce: String,
    ciphertext: String,
}

/// The AEAD key: SHA-256 of the passphrase, as the 32 characters AES-256-GCM takes.
fn key(passphrase: &str) -> Result<String> {
    if passphrase.chars().count() < 16 {
        return Err(Error::Config(format!("{KEY_ENV}: at least 16 characters")));
    }
    Ok(wxgate_proto::signature::hex(
        &Sha256::digest(passphrase.as_bytes())[..16],
    ))
}

fn associated(component_appid: &str) -> String {
    format!("{FORMAT} {component_appid}")
}

/// The authorizers, sealed for `component_appid`.
pub fn seal(component_appid: &str, authorizers: &[Authorizer], passphrase: &str) -> Result<String> {
    let plain = serde_json::to_string(authorizers).unwrap_or_default();
    let nonce = wxgate_proto::jssdk::nonce_str(12);
    let sealed = Resource::encrypt(
        &key(passphrase)?,
        &nonce,
        &associated(component_appid),
        "authorizers",
        &plain,
    )
    .map_err(|e| Error::Config(format!("sealing the export: {e}")))?;
    let file = File {
        format: FORMAT.into(),
        component_appid: component_appid.into(),
        nonce,
        ciphertext: sealed.ciphertext,
    };
    Ok(serde_json::to_string_pretty(&file).unwrap_or_default())
}

/// The authorizers of an export, which must be for `component_appid` and open with the
/// passphrase (a wrong key, a changed byte or another component's file is refused).
pub fn open(text: &str, component_appid: &str, passphrase: &str) -> Result<Vec<Authorizer>> {
    let file: File = serde_json::from_str(text)
        .map_err(|_| Error::Config("not a wxgate component export".into()))?;
    if file.format != FORMAT {
        return Err(Error::Config(format!(
            "unknown export format {:?}",
            file.format
        )));
    }
    if file.component_appid != component_appid {
        return Err(Error::Config(format!(
            "the export is of component {}, not {component_appid}",
            file.component_appid
        )));
    }
    let sealed = Resource {
        original_type: "authorizers".into(),
        algorithm: wxgate_proto::pay::notification::AEAD_AES_256_GCM.into(),
        ciphertext: file.ciphertext,
        associated_data: associated(component_appid),
        nonce: file.nonce,
    };
    let plain = sealed.decrypt(&key(passphrase)?).map_err(|_| {
        Error::Config("the export does not open with this key (or was changed)".into())
    })?;
    serde_json::from_str(&plain).map_err(|e| Error::Config(format!("the export's content: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_opens_only_with_its_key_and_component() {
        let a = vec![Authorizer {
            authorizer_appid: "wx570bc396a51b8ff8".into(),
            refresh_token: "refreshtoken@@@x".into(),
            func_info: vec![serde_json::json!({"funcscope_category": {"id": 1}})],
            authorized_at: 1,
            needs_reauthorization: false,
        }];
        let text = seal("wxcomp", &a, "a passphrase of some length").unwrap();
        assert!(!text.contains("refreshtoken"), "{text}");
        assert_eq!(
            open(&text, "wxcomp", "a passphrase of some length").unwrap(),
            a
        );
        assert!(open(&text, "wxcomp", "another passphrase entirely").is_err());
        assert!(open(&text, "wxother", "a passphrase of some length").is_err());
        let changed = text.replace("\"ciphertext\": \"", "\"ciphertext\": \"AAAA");
        assert!(open(&changed, "wxcomp", "a passphrase of some length").is_err());
        assert!(seal("wxcomp", &a, "short").is_err());
    }
}
