//! A merchant's keys: its private key (signing its calls), wxgate's forwarding key
//! (drop-in mode), and the keys that verify WeChat Pay: its public key by
//! `PUB_KEY_ID_...` and platform certificates by serial, configured or downloaded.

use std::path::Path;
use std::sync::RwLock;

use wxgate_proto::pay::{Certificate, PrivateKey, PublicKey};

use crate::config::{PayConfig, Secret};
use crate::error::{Error, Result};

/// PEM text given inline or as a file.
pub fn pem_text(
    name: &str,
    inline: Option<&Secret>,
    file: Option<&Path>,
) -> Result<Option<String>> {
    match (inline, file) {
        (Some(s), _) => Ok(Some(s.expose().to_owned())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(Some)
            .map_err(|e| Error::Config(format!("{name}: {}: {e}", path.display()))),
        (None, None) => Ok(None),
    }
}

/// What verifies WeChat Pay's signatures for one merchant.
pub struct Verifiers {
    public: Option<(String, PublicKey)>,
    certificates: RwLock<Vec<Certificate>>,
}

impl Verifiers {
    pub fn load(name: &str, cfg: &PayConfig) -> Result<Self> {
        let at = |what: &str| format!("pay.{name}.{what}");
        let public = match (
            pem_text(
                &at("wechatpay_public_key"),
                None,
                cfg.wechatpay_public_key_file.as_deref(),
            )?
            .or_else(|| cfg.wechatpay_public_key.clone()),
            &cfg.wechatpay_public_key_id,
        ) {
            (Some(pem), Some(id)) => Some((
                id.clone(),
                PublicKey::from_pem(&pem)
                    .map_err(|e| Error::Config(format!("{}: {e}", at("wechatpay_public_key"))))?,
            )),
            _ => None,
        };
        let mut certificates = Vec::new();
        for file in &cfg.platform_certificate_files {
            let pem =
                pem_text(&at("platform_certificate_files"), None, Some(file))?.unwrap_or_default();
            certificates.push(Certificate::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "{}: {}: {e}",
                    at("platform_certificate_files"),
                    file.display()
                ))
            })?);
        }
        Ok(Verifiers {
            public,
            certificates: RwLock::new(certificates),
        })
    }

    /// The key a `Wechatpay-Serial` names.
    pub fn key_for(&self, serial: &str) -> Option<PublicKey> {
        if let Some((id, key)) = &self.public {
            if id == serial {
                return Some(key.clone());
            }
        }
        self.certificates
            .read()
            .ok()?
            .iter()
            .find(|c| c.serial.eq_ignore_ascii_case(serial))
            .map(|c| c.key.clone())
    }

    /// Adds downloaded certificates (a serial already held is kept once).
    pub fn add_certificates(&self, fresh: Vec<Certificate>) {
        if let Ok(mut held) = self.certificates.write() {
            for c in fresh {
                if !held.iter().any(|h| h.serial == c.serial) {
                    held.push(c);
                }
            }
        }
    }

    /// For operators: each key's id and, for certificates, its expiry.
    pub fn describe(&self) -> Vec<(String, &'static str, Option<i64>)> {
        let mut out = Vec::new();
        if let Some((id, _)) = &self.public {
            out.push((id.clone(), "public_key", None));
        }
        if let Ok(certs) = self.certificates.read() {
            for c in certs.iter() {
                out.push((c.serial.clone(), "platform_certificate", Some(c.not_after)));
            }
        }
        out
    }
}

/// A private key from config, with what to call it in errors.
pub fn private_key(
    what: &str,
    inline: Option<&Secret>,
    file: Option<&Path>,
) -> Result<Option<PrivateKey>> {
    pem_text(what, inline, file)?
        .map(|pem| PrivateKey::from_pem(&pem).map_err(|e| Error::Config(format!("{what}: {e}"))))
        .transpose()
}
