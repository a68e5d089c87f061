//! The Redis store over TLS (`rediss://`), as a managed Redis serves it: a real
//! `redis-server --tls-port` with a certificate from a CA the test makes with `openssl`;
//! the gateway trusts that CA through `store.redis_ca_file`, and refuses a server whose
//! certificate another CA signed, saying so.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use wxgate::config::{StoreConfig, StoreKind};
use wxgate::store::{self, PushClaim};

fn openssl(dir: &TempDir, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("openssl runs (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA named `name` (`name.crt`, `name.key`) in `dir`.
fn ca(dir: &TempDir, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=wxgate test {name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// `server.crt` for 127.0.0.1, signed by the CA `name`.
fn server_cert(dir: &TempDir, name: &str) {
    std::fs::write(dir.path().join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{name}.crt"),
            "-CAkey",
            &format!("{name}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
}

struct TlsRedis {
    port: u16,
    child: Child,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_redis(dir: &TempDir) -> TlsRedis {
    let port = free_port();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            &p("server.crt"),
            "--tls-key-file",
            &p("server.key"),
            "--tls-ca-cert-file",
            &p("ca.crt"),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs");
    wait_for_port(port);
    TlsRedis { port, child }
}

fn config(port: u16, ca: Option<std::path::PathBuf>) -> StoreConfig {
    StoreConfig {
        kind: StoreKind::Redis,
        redis_url: Some(format!("rediss://127.0.0.1:{port}/0")),
        redis_ca_file: ca,
        ..StoreConfig::default()
    }
}

#[tokio::test]
async fn rediss_with_the_servers_ca_works_and_another_ca_is_refused() {
    let dir = TempDir::new("redis-tls");
    ca(&dir, "ca");
    ca(&dir, "other-ca");
    server_cert(&dir, "ca");
    let redis = tls_redis(&dir);

    // The CA that signed the server's certificate: the store works, pushes included.
    let s = store::open(
        &config(redis.port, Some(dir.path().join("ca.crt"))),
        dir.path(),
    )
    .await
    .unwrap();
    s.set("tls:k", "over TLS", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(s.get("tls:k").await.unwrap().as_deref(), Some("over TLS"));
    let minute = Duration::from_secs(60);
    assert_eq!(
        s.claim_push("tls:d", "tls:n", minute, minute)
            .await
            .unwrap(),
        PushClaim::Claimed
    );

    // Another CA: every operation fails, and says why.
    let wrong = store::open(
        &config(redis.port, Some(dir.path().join("other-ca.crt"))),
        dir.path(),
    )
    .await
    .unwrap();
    let e = wrong.ping().await.unwrap_err().to_string();
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"),
        "{e}"
    );
    assert!(wrong.get("tls:k").await.is_err());

    // A gateway on the right CA is ready; on the wrong one /readyz says what is wrong.
    for (ca_file, ready) in [("ca.crt", true), ("other-ca.crt", false)] {
        let h = Setup::new()
            .tag("redis-tls-gw")
            .store(&format!(
                "kind = \"redis\"\nredis_url = \"rediss://127.0.0.1:{}/0\"\nredis_ca_file = \"{}\"",
                redis.port,
                dir.path().join(ca_file).display()
            ))
            .start()
            .await;
        let r = reqwest::get(h.url("/readyz")).await.unwrap();
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["store"]["ok"], ready, "{ca_file}: {v}");
        if !ready {
            assert_eq!(status, 503);
            let e = v["store"]["error"].as_str().unwrap().to_lowercase();
            assert!(
                e.contains("certificate") || e.contains("unknownissuer"),
                "{e}"
            );
        }
    }

    // A CA file beside a plain redis:// URL is a configuration error, not ignored.
    let mut plain = config(redis.port, Some(dir.path().join("ca.crt")));
    plain.redis_url = Some(format!("redis://127.0.0.1:{}/0", redis.port));
    let e = store::open(&plain, dir.path())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("rediss://"), "{e}");
}
