//! Web origins (scheme, host, port) in allow-lists. `/wx/auth` sends a user back to an
//! allowed origin only, because the user comes back with their `userinfo` in the URL. A host alone
//! would let `http://allowed-host:9999/` (another port, another program on that
//! machine) or a plain-http page collect it.
//!
//! An entry of `auth_dest_hosts` is an origin (`https://h5.example.com`,
//! `http://127.0.0.1:8080`) or a bare host, which means that host on its default port:
//! https (443) and, unless `public_url` is https, http (80). An empty list means
//! `public_url`'s origin.

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    pub fn of(url: &url::Url) -> Option<Origin> {
        Some(Origin {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_owned(),
            port: url.port_or_known_default()?,
        })
    }

    pub fn allows(&self, url: &url::Url) -> bool {
        Origin::of(url).as_ref() == Some(self)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The origins one entry allows, or why it is not an origin.
pub fn parse_entry(entry: &str, public_https: bool) -> Result<Vec<Origin>, String> {
    if !entry.contains("://") {
        let mut out = Vec::new();
        for (scheme, port) in [("https", 443), ("http", 80)] {
            if scheme == "http" && public_https {
                continue;
            }
            let url = url::Url::parse(&format!("{scheme}://{entry}/"))
                .map_err(|e| format!("{entry:?} is not a host: {e}"))?;
            if url.port().is_some() || url.path() != "/" || !url.username().is_empty() {
                return Err(format!(
                    "{entry:?}: a bare host has no port or path (write an origin such as https://{entry})"
                ));
            }
            out.push(Origin {
                scheme: scheme.into(),
                host: url.host_str().unwrap_or_default().to_owned(),
                port,
            });
        }
        return Ok(out);
    }
    let url = url::Url::parse(entry).map_err(|e| format!("{entry:?} is not an origin: {e}"))?;
    let clean = matches!(url.scheme(), "http" | "https")
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    match Origin::of(&url) {
        Some(o) if clean => Ok(vec![o]),
        _ => Err(format!(
            "{entry:?} is not an origin like https://h5.example.com or http://127.0.0.1:8080"
        )),
    }
}

/// What `wxgate check` says about an account's `auth_dest_hosts` (`at` names it).
pub fn problems(entries: &[String], public_https: bool, at: &str) -> Vec<String> {
    let mut p = Vec::new();
    for entry in entries {
        match parse_entry(entry, public_https) {
            Err(e) => p.push(format!("{at}.auth_dest_hosts: {e}")),
            Ok(origins) if public_https && origins.iter().any(|o| o.scheme == "http") => {
                p.push(format!(
                    "{at}.auth_dest_hosts: {entry:?} is a plain-http origin while public_url is https: users would be sent back with their userinfo over http; use https"
                ))
            }
            Ok(_) => {}
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    fn allows(entries: &[&str], https: bool, dest: &str) -> bool {
        entries
            .iter()
            .flat_map(|e| parse_entry(e, https).unwrap())
            .any(|o| o.allows(&url(dest)))
    }

    #[test]
    fn a_bare_host_means_its_default_ports() {
        let hosts = ["wx.example.com"];
        assert!(allows(&hosts, false, "https://wx.example.com/page?x=1"));
        assert!(allows(&hosts, false, "http://wx.example.com/page"));
        assert!(allows(&hosts, false, "https://WX.example.com:443/page"));
        assert!(!allows(&hosts, false, "http://wx.example.com:9999/steal"));
        assert!(!allows(&hosts, false, "https://wx.example.com:8443/"));
        assert!(!allows(&hosts, false, "https://evil.wx.example.com/"));
        // An https public_url: https only.
        assert!(allows(&hosts, true, "https://wx.example.com/"));
        assert!(!allows(&hosts, true, "http://wx.example.com/"));
    }

    #[test]
    fn an_origin_is_exact() {
        let o = ["http://127.0.0.1:8080"];
        assert!(allows(&o, false, "http://127.0.0.1:8080/cb"));
        assert!(!allows(&o, false, "http://127.0.0.1:9999/steal"));
        assert!(!allows(&o, false, "https://127.0.0.1:8080/"));
        let o = ["https://h5.example.com"];
        assert!(allows(&o, false, "https://h5.example.com:443/"));
        assert!(!allows(&o, false, "http://h5.example.com/"));
    }

    #[test]
    fn entries_that_are_not_origins_are_refused() {
        for bad in [
            "https://h5.example.com/path",
            "ftp://h5.example.com",
            "https://user@h5.example.com",
            "h5.example.com:8080",
            "h5.example.com/x",
            "https://h5.example.com?x",
        ] {
            assert!(parse_entry(bad, false).is_err(), "{bad}");
        }
    }
}
