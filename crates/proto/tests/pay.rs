//! WeChat Pay v3 rules (`wxgate_proto::pay`): the documented signature string, keys and
//! certificates, the signed notification's checks and the encrypted resource.

use wxgate_proto::pay::{
    request_message, Authorization, Certificate, PrivateKey, PublicKey, Resource, Signed,
};
use wxgate_proto::Error;

const MERCHANT_KEY: &str = include_str!("../../sandbox/keys/merchant.key.pem");
const MERCHANT_PUB: &str = include_str!("../../sandbox/keys/merchant.pub.pem");
const PLATFORM_KEY: &str = include_str!("../../sandbox/keys/platform.key.pem");
const PLATFORM_CERT: &str = include_str!("../../sandbox/keys/platform.cert.pem");
const PUBLIC_PUB: &str = include_str!("../../sandbox/keys/public.pub.pem");
const APIV3_KEY: &str = "wxgateSandboxApiV3Key00000000001";

/// 签名生成: the signature string of WeChat Pay's own example, verbatim.
#[test]
fn the_documented_signature_string() {
    let m = request_message(
        "GET",
        "/v3/certificates",
        "1554208460",
        "593BEC0C930BF1AFEB40B4A08C8FB242",
        b"",
    );
    assert_eq!(
        m,
        b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    );
}

#[test]
fn a_signed_request_verifies_with_the_merchant_key_only() {
    let key = PrivateKey::from_pem(MERCHANT_KEY).unwrap();
    let body = br#"{"mchid":"1900000001"}"#;
    let auth = Authorization::sign(
        &key,
        "1900000001",
        "3775B6A45ACD588826D15E583A95F5DD23F7DA24",
        ("POST", "/v3/pay/transactions/jsapi", body),
        1554208460,
        "593BEC0C930BF1AFEB40B4A08C8FB242",
    );
    let header = auth.header();
    assert!(header.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900000001\",nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",signature=\""), "{header}");
    let parsed = Authorization::parse(&header).unwrap();
    assert_eq!(parsed, auth);
    let merchant = PublicKey::from_pem(MERCHANT_PUB).unwrap();
    assert!(parsed.verify(&merchant, "POST", "/v3/pay/transactions/jsapi", body));
    assert!(!parsed.verify(&merchant, "POST", "/v3/pay/transactions/native", body));
    assert!(!parsed.verify(&merchant, "POST", "/v3/pay/transactions/jsapi", b"{}"));
    let other = PublicKey::from_pem(PUBLIC_PUB).unwrap();
    assert!(!parsed.verify(&other, "POST", "/v3/pay/transactions/jsapi", body));
    for bad in [
        "Bearer x",
        "WECHATPAY2-SHA256-RSA2048 mchid=\"1\"",
        "WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str=\"a\",signature=\"b\",timestamp=\"1\",serial_no=\"s\"",
        "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",mchid=\"2\",nonce_str=\"a\",signature=\"b\",timestamp=\"1\",serial_no=\"s\"",
    ] {
        assert!(Authorization::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_platform_certificate_names_its_serial_and_expiry() {
    let cert = Certificate::from_pem(PLATFORM_CERT).unwrap();
    assert_eq!(cert.serial, "5157F09EFDC096DE15EBE81A47057A7232F1B8E1");
    assert!(cert.not_after > cert.not_before + 3000 * 86400, "{cert:?}");
    let key = PrivateKey::from_pem(PLATFORM_KEY).unwrap();
    let body = br#"{"id":"EV-2018022511223320873"}"#;
    let sig = key.sign(&wxgate_proto::pay::notification::signed_message(
        "1700000000",
        "n",
        body,
    ));
    let signed = Signed {
        timestamp: "1700000000",
        nonce: "n",
        signature: &sig,
        serial: &cert.serial,
    };
    assert_eq!(
        signed.verify(body, 1700000100, |s| (s == cert.serial)
            .then_some(&cert.key)),
        Ok(())
    );
    // Tampered, probed, skewed, from an unknown key.
    assert_eq!(
        signed.verify(b"{}", 1700000100, |_| Some(&cert.key)),
        Err(Error::SignatureMismatch)
    );
    let probe = format!("WECHATPAY/SIGNTEST/{sig}");
    let probed = Signed {
        signature: &probe,
        ..signed
    };
    assert_eq!(
        probed.verify(body, 1700000100, |_| Some(&cert.key)),
        Err(Error::SignTest)
    );
    assert_eq!(
        signed.verify(body, 1700000300, |_| Some(&cert.key)),
        Err(Error::Skewed { by: -300 })
    );
    assert_eq!(signed.verify(body, 1699999701, |_| Some(&cert.key)), Ok(()));
    assert!(matches!(
        signed.verify(body, 1700000000, |_| None),
        Err(Error::UnknownSerial(_))
    ));
    let stale = Signed {
        timestamp: "soon",
        ..signed
    };
    assert!(stale.verify(body, 1700000000, |_| Some(&cert.key)).is_err());
}

#[test]
fn the_resource_opens_only_with_its_key_nonce_and_associated_data() {
    let plain = r#"{"mchid":"1900000001","out_trade_no":"T1","trade_state":"SUCCESS"}"#;
    let r = Resource::encrypt(
        APIV3_KEY,
        "fdasflkja484",
        "transaction",
        "transaction",
        plain,
    )
    .unwrap();
    assert_eq!(r.algorithm, "AEAD_AES_256_GCM");
    assert_eq!(r.decrypt(APIV3_KEY).unwrap(), plain);
    let wrong = |f: &dyn Fn(&mut Resource)| {
        let mut r = r.clone();
        f(&mut r);
        r.decrypt(APIV3_KEY)
    };
    assert_eq!(
        wrong(&|r| r.associated_data = "refund".into()),
        Err(Error::Aead)
    );
    assert_eq!(
        wrong(&|r| r.nonce = "fdasflkja485".into()),
        Err(Error::Aead)
    );
    assert!(wrong(&|r| r.nonce = "short".into()).is_err());
    assert_eq!(
        wrong(&|r| r.ciphertext = r.ciphertext.replacen('A', "B", 1)),
        Err(Error::Aead)
    );
    assert!(wrong(&|r| r.ciphertext = "not base64!".into()).is_err());
    assert!(wrong(&|r| r.algorithm = "AEAD_SM4_GCM".into()).is_err());
    assert_eq!(
        r.decrypt("wxgateSandboxApiV3Key00000000002"),
        Err(Error::Aead)
    );
    assert!(r.decrypt("short").is_err());
}

#[test]
fn keys_refuse_what_is_not_theirs() {
    assert!(PrivateKey::from_pem("nothing").is_err());
    assert!(PrivateKey::from_pem(MERCHANT_PUB).is_err());
    assert!(PublicKey::from_pem(MERCHANT_KEY).is_err());
    assert!(Certificate::from_pem(PUBLIC_PUB).is_err());
    let garbage = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----";
    assert!(PublicKey::from_pem(garbage).is_err());
    assert!(!PublicKey::from_pem(PUBLIC_PUB)
        .unwrap()
        .verify(b"m", "not base64"));
}
