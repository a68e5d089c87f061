//! `wxgate sign`, `wxgate crypto` and `wxgate miniprogram`: the protocol core on the command
//! line, for the developer staring at "invalid signature".

use clap::Subcommand;
use wxgate_proto::crypto::{self, EncodingAesKey, MsgCrypt};
use wxgate_proto::reply::parse_encrypted_reply;
use wxgate_proto::signature::{server_signature, verify_msg_signature};
use wxgate_proto::xml::{self, DEFAULT_LIMIT};
use wxgate_proto::{jssdk, miniprogram, Envelope};

use super::{read_stdin, Failure};

#[derive(Debug, Subcommand)]
pub enum SignCommand {
    /// The server signature WeChat sends as `signature` (URL verification and pushes).
    Server {
        #[arg(long)]
        token: String,
        #[arg(long)]
        timestamp: String,
        #[arg(long)]
        nonce: String,
    },
    /// The JS-SDK `wx.config` signature.
    Jssdk {
        #[arg(long)]
        ticket: String,
        #[arg(long)]
        noncestr: String,
        #[arg(long)]
        timestamp: String,
        /// The page URL (location.href); anything after '#' is not signed.
        #[arg(long)]
        url: String,
        /// Also print the exact string that was hashed.
        #[arg(long)]
        explain: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Read a message XML on stdin and print the encrypted envelope WeChat would send.
    Encrypt {
        /// The account's EncodingAESKey (43 characters).
        #[arg(long)]
        aes_key: String,
        #[arg(long)]
        app_id: String,
        #[arg(long)]
        token: String,
        /// Defaults to now.
        #[arg(long)]
        timestamp: Option<String>,
        /// Defaults to a random nonce.
        #[arg(long)]
        nonce: Option<String>,
        /// Also print the query string WeChat would put on the push URL.
        #[arg(long)]
        show_query: bool,
    },
    /// Read an envelope XML (or a bare Encrypt value) on stdin and print the plaintext.
    Decrypt {
        #[arg(long)]
        aes_key: String,
        #[arg(long)]
        app_id: String,
        /// Needed to check --msg-signature.
        #[arg(long)]
        token: Option<String>,
        #[arg(long, requires_all = ["timestamp", "nonce", "token"])]
        msg_signature: Option<String>,
        #[arg(long)]
        timestamp: Option<String>,
        #[arg(long)]
        nonce: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MiniProgramCommand {
    /// Read encryptedData on stdin and print the decrypted JSON (watermark appid checked).
    Decrypt {
        #[arg(long)]
        session_key: String,
        #[arg(long)]
        iv: String,
        #[arg(long)]
        app_id: String,
    },
    /// Read rawData on stdin and check sha1(rawData + session_key) against --signature.
    /// One trailing newline (as `echo` adds) is not part of rawData.
    Verify {
        #[arg(long)]
        session_key: String,
        #[arg(long)]
        signature: String,
    },
}

fn now() -> String {
    crate::clock::Clock::system().now().to_string()
}

pub fn sign(cmd: SignCommand) -> Result<(), Failure> {
    match cmd {
        SignCommand::Server {
            token,
            timestamp,
            nonce,
        } => println!("{}", server_signature(&token, &timestamp, &nonce)),
        SignCommand::Jssdk {
            ticket,
            noncestr,
            timestamp,
            url,
            explain,
        } => {
            let signature = jssdk::signature(&ticket, &noncestr, &timestamp, &url);
            if explain {
                println!(
                    "string1: {}",
                    jssdk::string_to_sign(&ticket, &noncestr, &timestamp, &url)
                );
                if url.contains('#') {
                    println!("note: the #fragment is not signed");
                }
                println!("signature: {signature}");
            } else {
                println!("{signature}");
            }
        }
    }
    Ok(())
}

pub fn crypto(cmd: CryptoCommand) -> Result<(), Failure> {
    match cmd {
        CryptoCommand::Encrypt {
            aes_key,
            app_id,
            token,
            timestamp,
            nonce,
            show_query,
        } => {
            let crypt = MsgCrypt::new(&token, &aes_key, &app_id)?;
            let message = read_stdin()?;
            let message = message.trim();
            let doc = xml::parse(message, DEFAULT_LIMIT)?;
            let to_user = doc.fields.text("ToUserName").unwrap_or_default();
            let timestamp = timestamp.unwrap_or_else(now);
            let nonce = nonce.unwrap_or_else(|| jssdk::nonce_str(10));
            let sealed = crypt.seal(message, &timestamp, &nonce);
            println!("{}", Envelope::to_xml(to_user, &sealed.encrypt));
            if show_query {
                println!(
                    "?signature={}&timestamp={timestamp}&nonce={nonce}&encrypt_type=aes&msg_signature={}",
                    server_signature(&token, &timestamp, &nonce),
                    sealed.msg_signature
                );
            }
        }
        CryptoCommand::Decrypt {
            aes_key,
            app_id,
            token,
            msg_signature,
            timestamp,
            nonce,
        } => {
            let key = EncodingAesKey::parse(&aes_key)?;
            let input = read_stdin()?;
            let input = input.trim();
            let encrypt = if input.starts_with('<') {
                match Envelope::parse(input, DEFAULT_LIMIT) {
                    Ok(env) => env.encrypt,
                    // A safe-mode reply envelope also carries Encrypt.
                    Err(e) => parse_encrypted_reply(input, DEFAULT_LIMIT)
                        .map(|s| s.encrypt)
                        .map_err(|_| e)?,
                }
            } else {
                input.to_owned()
            };
            if let (Some(sig), Some(ts), Some(n), Some(t)) =
                (&msg_signature, &timestamp, &nonce, &token)
            {
                if !verify_msg_signature(t, ts, n, &encrypt, sig) {
                    return Err(wxgate_proto::Error::SignatureMismatch.into());
                }
            }
            let d = crypto::decrypt(&key, &app_id, &encrypt)?;
            println!("{}", d.message);
        }
    }
    Ok(())
}

pub fn miniprogram(cmd: MiniProgramCommand) -> Result<(), Failure> {
    match cmd {
        MiniProgramCommand::Decrypt {
            session_key,
            iv,
            app_id,
        } => {
            let data = read_stdin()?;
            let open = miniprogram::decrypt(&session_key, &iv, data.trim(), &app_id).map_err(|e| {
                Failure::new(format!(
                    "{e} ({}); a session_key that no longer matches the client's is the usual cause: log in again",
                    e.sample_code()
                ))
            })?;
            println!("{}", open.text);
        }
        MiniProgramCommand::Verify {
            session_key,
            signature,
        } => {
            let raw = read_stdin()?;
            let raw = raw
                .strip_suffix("\r\n")
                .or_else(|| raw.strip_suffix('\n'))
                .unwrap_or(&raw);
            if miniprogram::verify_raw_data(raw, &session_key, &signature) {
                println!("valid");
            } else {
                return Err(Failure::new(format!(
                    "invalid signature: sha1(rawData + session_key) is {}",
                    miniprogram::raw_data_signature(raw, &session_key)
                )));
            }
        }
    }
    Ok(())
}
