//! A push's answer, what dedup remembers and dispatch produces: its own module so that
//! both read it and neither imports the other for it.

use wxgate_proto::Reply;

use crate::store::PUSH_DONE;

/// A push's answer: a reply made at a time, or `None` for `success`.
pub type Answer = Option<(i64, Reply)>;

/// The stored form: `done:` for success, `done:{create_time}:{reply JSON}` for a reply.
/// The reply XML is made again from it for a retry (the retry names the same sender and
/// account), which keeps a dedup entry small.
pub fn encode_answer(answer: &Answer) -> String {
    let Some((t, r)) = answer else {
        return PUSH_DONE.to_owned();
    };
    // Written into one buffer: `format!` around `serde_json::to_string` cost a push
    // 2,600 instructions, two thirds of them in the formatting machinery.
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(PUSH_DONE.as_bytes());
    // serde_json writes an integer without the formatting machinery too.
    let written = serde_json::to_writer(&mut out, t).and_then(|()| {
        out.push(b':');
        serde_json::to_writer(&mut out, r)
    });
    if written.is_err() {
        out.truncate(PUSH_DONE.len());
    }
    // serde_json writes UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

pub fn decode_answer(v: &str) -> Option<Answer> {
    let rest = v.strip_prefix(PUSH_DONE)?;
    if rest.is_empty() {
        return Some(None);
    }
    let (t, json) = rest.split_once(':')?;
    Some(Some((t.parse().ok()?, serde_json::from_str(json).ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_back_as_it_was_stored() {
        let reply = Reply::Text {
            content: "你好 \"]]> :".into(),
        };
        for answer in [None, Some((1_700_000_000, reply))] {
            let encoded = encode_answer(&answer);
            assert_eq!(decode_answer(&encoded), Some(answer), "{encoded}");
        }
        assert_eq!(
            encode_answer(&Some((
                7,
                Reply::Image {
                    media_id: "m".into()
                }
            ))),
            r#"done:7:{"type":"image","media_id":"m"}"#
        );
    }
}
