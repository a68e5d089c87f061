//! Sends distinct, correctly signed pushes to a gateway, made on the fly (no file of a
//! million pushes), and watches the gateway's memory: what `bench/run.sh` uses to measure
//! the bytes a remembered push costs and the RSS of a sustained rate over time.
//!
//! Usage:
//!   pushflood flood  URL PID TOKEN AES_KEY APPID MODE COUNT CONNECTIONS
//!   pushflood steady URL PID TOKEN AES_KEY APPID MODE RATE SECONDS SAMPLE_SECONDS
//!
//! URL is the account's push URL (`http://127.0.0.1:PORT/wx/service`), PID the gateway's
//! process, MODE `safe` or `plaintext`. `flood` sends COUNT pushes as fast as
//! CONNECTIONS connections allow and prints one JSON line: the RSS before (after a
//! warm-up of 10,000 pushes) and after, and the bytes per push. `steady` sends RATE
//! pushes a second for SECONDS and prints the RSS every SAMPLE_SECONDS, then a JSON
//! summary. Only loopback URLs are accepted, and every loop is bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::signature::server_signature;
use wxgate_proto::Envelope;

struct Pusher {
    url: String,
    token: String,
    crypt: Option<MsgCrypt>,
    base_id: u64,
    next: AtomicU64,
    ok: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    http: reqwest::Client,
}

impl Pusher {
    /// The next distinct push: its URL and body.
    fn make(&self) -> (String, String) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let id = self.base_id + i;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (ts, nonce) = (now.to_string(), id.to_string());
        let msg = format!(
            "<xml><ToUserName><![CDATA[gh_sandbox00001]]></ToUserName><FromUserName><![CDATA[oSandboxUser000000000000001]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>{id}</MsgId></xml>"
        );
        let mut url = format!(
            "{}?signature={}&timestamp={ts}&nonce={nonce}&openid=oSandboxUser000000000000001",
            self.url,
            server_signature(&self.token, &ts, &nonce)
        );
        let body = match &self.crypt {
            None => msg,
            Some(c) => {
                let sealed = c.seal(&msg, &ts, &nonce);
                url.push_str("&encrypt_type=aes&msg_signature=");
                url.push_str(&sealed.msg_signature);
                Envelope::to_xml("gh_sandbox00001", &sealed.encrypt)
            }
        };
        (url, body)
    }

    async fn send_one(&self) {
        let (url, body) = self.make();
        match self.http.post(url).body(body).send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => {
                let _ = r.bytes().await;
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// VmRSS of the process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// `count` pushes over `connections` concurrent senders.
async fn flood(p: &Arc<Pusher>, count: u64, connections: u64) {
    let left = Arc::new(AtomicU64::new(count));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (p, left) = (p.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                p.send_one().await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: pushflood flood URL PID TOKEN AES_KEY APPID MODE COUNT CONNECTIONS\n       pushflood steady URL PID TOKEN AES_KEY APPID MODE RATE SECONDS SAMPLE_SECONDS";
    if a.len() < 10 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let (what, url, pid) = (
        a[1].as_str(),
        a[2].clone(),
        a[3].parse::<u32>().expect("PID"),
    );
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "pushflood sends to 127.0.0.1 only"
    );
    let crypt = match a[7].as_str() {
        "safe" => Some(MsgCrypt::new(&a[4], &a[5], &a[6]).expect("valid settings")),
        "plaintext" => None,
        other => panic!("MODE is safe or plaintext, not {other}"),
    };
    let p = Arc::new(Pusher {
        url,
        token: a[4].clone(),
        crypt,
        base_id: u64::from(rand::random::<u32>()) * 10_000_000,
        next: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        // Idle connections are let go before the gateway's 10 s keep-alive deadline
        // (`server.header_read_timeout_ms`): reusing one the server is closing fails the
        // push in flight, as 3 of 3,000,000 did in a steady run with reqwest's 90 s.
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap(),
    });
    match what {
        "flood" => {
            let count: u64 = a[8].parse().expect("COUNT");
            let connections: u64 = a[9].parse().expect("CONNECTIONS");
            let warm = 10_000.min(count);
            flood(&p, warm, connections).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = rss(pid);
            let started = Instant::now();
            flood(&p, count - warm, connections).await;
            let secs = started.elapsed().as_secs_f64();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = rss(pid);
            let sent = count - warm;
            println!(
                "{{\"pushes\": {count}, \"measured\": {sent}, \"seconds\": {secs:.1}, \"ok\": {}, \"refused\": {}, \"failed\": {}, \"rss_before\": {before}, \"rss_after\": {after}, \"bytes_per_push\": {:.1}}}",
                p.ok.load(Ordering::Relaxed),
                p.refused.load(Ordering::Relaxed),
                p.failed.load(Ordering::Relaxed),
                after.saturating_sub(before) as f64 / sent as f64
            );
        }
        "steady" => {
            let rate: u64 = a[8].parse().expect("RATE");
            let seconds: u64 = a[9].parse().expect("SECONDS");
            let sample: u64 = a.get(10).and_then(|s| s.parse().ok()).unwrap_or(30);
            // Ticks of 10 ms, each sending its share; at most 4096 in flight.
            let limit = Arc::new(tokio::sync::Semaphore::new(4096));
            let started = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut sent = 0u64;
            let mut next_sample = 0u64;
            let mut peak = 0u64;
            eprintln!("seconds  sent  ok  refused  failed  rss_mib");
            while started.elapsed() < Duration::from_secs(seconds) {
                tick.tick().await;
                let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
                while sent < due {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        break;
                    };
                    let p = p.clone();
                    tokio::spawn(async move {
                        p.send_one().await;
                        drop(permit);
                    });
                    sent += 1;
                }
                let t = started.elapsed().as_secs();
                if t >= next_sample {
                    let r = rss(pid);
                    peak = peak.max(r);
                    println!(
                        "{{\"t\": {t}, \"sent\": {sent}, \"ok\": {}, \"refused\": {}, \"failed\": {}, \"rss\": {r}}}",
                        p.ok.load(Ordering::Relaxed),
                        p.refused.load(Ordering::Relaxed),
                        p.failed.load(Ordering::Relaxed)
                    );
                    next_sample += sample;
                }
            }
            let _ = limit.acquire_many(4096).await;
            let r = rss(pid);
            println!(
                "{{\"t\": {}, \"sent\": {sent}, \"ok\": {}, \"refused\": {}, \"failed\": {}, \"rss\": {r}, \"peak_rss\": {}, \"rate\": {:.0}}}",
                started.elapsed().as_secs(),
                p.ok.load(Ordering::Relaxed),
                p.refused.load(Ordering::Relaxed),
                p.failed.load(Ordering::Relaxed),
                peak.max(r),
                sent as f64 / started.elapsed().as_secs_f64()
            );
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
