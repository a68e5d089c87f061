//! The open platform's release test (全网发布检测) as WeChat runs it against a component,
//! with the first of WeChat's test accounts the sandbox has: the verify ticket pushed and
//! `success` expected; the test account authorized; a text `TESTCOMPONENT_MSG_TYPE_TEXT`
//! answered `TESTCOMPONENT_MSG_TYPE_TEXT_callback`; an event answered
//! `{Event}from_callback`; a text `QUERY_AUTH_CODE:$code$` answered empty at once and
//! followed, within 5 s, by a customer-service text `$code$_from_api`. Each case passes
//! within 5 s or fails with what was seen.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::AppKind;
use crate::messages;
use crate::pusher::{push, MessageMode, PushOptions, PushTarget};
use crate::Platform;

/// WeChat's test accounts (the documentation's five groups, Official Accounts first).
pub use wxgate_proto::component::RELEASE_TEST_ACCOUNTS as TEST_ACCOUNTS;

const WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize)]
pub struct Case {
    pub name: &'static str,
    pub passed: bool,
    pub ms: u128,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub component_appid: String,
    pub test_account: String,
    pub passed: bool,
    pub cases: Vec<Case>,
}

fn case(name: &'static str, started: Instant, result: Result<String, String>) -> Case {
    let ms = started.elapsed().as_millis();
    let within = ms <= WITHIN.as_millis();
    match result {
        Ok(detail) => Case {
            name,
            passed: within,
            ms,
            detail: if within {
                detail
            } else {
                format!("{detail} (after {ms} ms)")
            },
        },
        Err(detail) => Case {
            name,
            passed: false,
            ms,
            detail,
        },
    }
}

/// Runs the release test against `message_url` (`$APPID$` replaced by the test
/// account's appid); the ticket goes to the component's event URL.
pub async fn run(
    p: &Platform,
    http: &reqwest::Client,
    component_appid: &str,
    message_url: &str,
) -> Result<Report, String> {
    let component = p.app(component_appid).map_err(|e| e.msg)?.clone();
    if component.kind != AppKind::Component {
        return Err(format!("{component_appid} is not a component"));
    }
    let (Some(token), Some(key)) = (component.token.clone(), component.encoding_aes_key.clone())
    else {
        return Err("the component has no token and encoding_aes_key".into());
    };
    let test = p
        .config
        .apps
        .iter()
        .find(|a| TEST_ACCOUNTS.contains(&a.appid.as_str()))
        .cloned()
        .ok_or("the sandbox has none of WeChat's release-test accounts (add one as an app)")?;
    let user = test
        .users
        .first()
        .map(|u| u.openid.clone())
        .ok_or("the test account has no user")?;
    let mut cases = Vec::new();

    // 1. The verify ticket.
    let started = Instant::now();
    p.start_push_ticket(component_appid, &component.secret)
        .map_err(|e| e.msg)?;
    crate::pusher::push_component_events(p, http).await;
    cases.push(case(
        "component_verify_ticket",
        started,
        Ok("pushed; answered by the event URL".into()),
    ));

    // 2. The test account authorizes the component (the event carries the code).
    let started = Instant::now();
    let code = p
        .authorize(component_appid, &test.appid, None)
        .map_err(|e| e.msg)?;
    crate::pusher::push_component_events(p, http).await;
    cases.push(case(
        "authorized",
        started,
        Ok("authorized event pushed".into()),
    ));

    let target = PushTarget {
        url: message_url.replace("$APPID$", &test.appid),
        token,
        appid: component_appid.into(),
        encoding_aes_key: Some(key),
        mode: MessageMode::Safe,
        format: Default::default(),
    };
    let now = p.now();
    let send = |kind: &str, text: Option<&str>, id: u64| {
        let fields = messages::sample(kind, &test.original_id, &user, now, id, text);
        let missing = format!("no sample for {kind}");
        let target = target.clone();
        async move {
            let fields = fields.ok_or(missing)?;
            push(http, &target, &fields, &PushOptions::default())
                .await
                .map_err(|e| e.to_string())
        }
    };
    let reply_text = |o: &crate::pusher::PushOutcome| {
        o.reply
            .as_ref()
            .and_then(|r| r.text("Content").map(str::to_owned))
    };

    // 3. A text answered at once.
    let started = Instant::now();
    let r = send("text", Some("TESTCOMPONENT_MSG_TYPE_TEXT"), 9_001)
        .await
        .and_then(|o| match reply_text(&o) {
            Some(c) if c == "TESTCOMPONENT_MSG_TYPE_TEXT_callback" => Ok(c),
            other => Err(format!("replied {other:?} (HTTP {})", o.status)),
        });
    cases.push(case("TESTCOMPONENT_MSG_TYPE_TEXT", started, r));

    // 4. An event answered at once.
    let started = Instant::now();
    let r = send("LOCATION", None, 9_002)
        .await
        .and_then(|o| match reply_text(&o) {
            Some(c) if c == "LOCATIONfrom_callback" => Ok(c),
            other => Err(format!("replied {other:?} (HTTP {})", o.status)),
        });
    cases.push(case("event", started, r));

    // 5. QUERY_AUTH_CODE: empty at once, then the customer-service message.
    let started = Instant::now();
    let before = p.sent(Some(&test.appid)).len();
    let r = match send("text", Some(&format!("QUERY_AUTH_CODE:{code}")), 9_003).await {
        Ok(o) if o.status == 200 && o.reply.is_none() => {
            let want = format!("{code}_from_api");
            let mut found = None;
            while started.elapsed() < WITHIN {
                found = p
                    .sent(Some(&test.appid))
                    .into_iter()
                    .skip(before)
                    .find(|m| {
                        m.kind == "custom"
                            && m.body.pointer("/text/content").and_then(|c| c.as_str())
                                == Some(want.as_str())
                    });
                if found.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            found
                .map(|_| "answered empty, then by the customer-service API".to_owned())
                .ok_or_else(|| "no customer-service message within 5 s".to_owned())
        }
        Ok(o) => Err(format!(
            "answered {:?} (HTTP {}) instead of an empty reply",
            o.reply_plaintext, o.status
        )),
        Err(e) => Err(e),
    };
    cases.push(case("QUERY_AUTH_CODE", started, r));

    Ok(Report {
        component_appid: component_appid.into(),
        test_account: test.appid,
        passed: cases.iter().all(|c| c.passed),
        cases,
    })
}
