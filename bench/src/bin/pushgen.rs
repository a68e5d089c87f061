//! Writes distinct, correctly signed safe-mode pushes for wrk to replay, one per line:
//! `PATH?QUERY<TAB>BODY`. Every push has its own MsgId, nonce and ciphertext, so the
//! benchmark measures the whole path (decrypt, parse, dedup, replay checks, rule, reply,
//! encrypt) and never the dedup shortcut.
//!
//! Usage: pushgen OUT COUNT TOKEN ENCODING_AES_KEY APPID [CONTENT]

use std::io::Write;

use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::signature::server_signature;
use wxgate_proto::Envelope;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        eprintln!("usage: pushgen OUT COUNT TOKEN ENCODING_AES_KEY APPID [CONTENT]");
        std::process::exit(2);
    }
    let (out, count, token, key, appid) = (
        &a[1],
        a[2].parse::<u64>().expect("COUNT"),
        &a[3],
        &a[4],
        &a[5],
    );
    let content = a.get(6).map(String::as_str).unwrap_or("hello");
    let crypt = MsgCrypt::new(token, key, appid).expect("valid settings");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let base_id: u64 = rand::random::<u32>() as u64 * 1_000_000;
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).expect("create OUT"));
    for i in 0..count {
        let ts = now.to_string();
        let nonce = format!("{}", base_id + i);
        let msg = format!(
            "<xml><ToUserName><![CDATA[gh_sandbox00001]]></ToUserName><FromUserName><![CDATA[oSandboxUser000000000000001]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{}</MsgId></xml>",
            base_id + i
        );
        let sealed = crypt.seal(&msg, &ts, &nonce);
        writeln!(
            w,
            "/wx/service?signature={}&timestamp={ts}&nonce={nonce}&openid=oSandboxUser000000000000001&encrypt_type=aes&msg_signature={}\t{}",
            server_signature(token, &ts, &nonce),
            sealed.msg_signature,
            Envelope::to_xml("gh_sandbox00001", &sealed.encrypt)
        )
        .expect("write");
    }
}
