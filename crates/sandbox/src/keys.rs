//! The bundled sandbox keys (`crates/sandbox/keys`): WeChat Pay's platform certificate
//! and public key, a merchant's API key, and a key a gateway re-signs forwards with.
//! Public by design: never for real money.

pub const PLATFORM_KEY: &str = include_str!("../keys/platform.key.pem");
pub const PLATFORM_CERT: &str = include_str!("../keys/platform.cert.pem");
/// The platform certificate's serial (WeChat's documented example serial).
pub const PLATFORM_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
pub const PUBLIC_KEY: &str = include_str!("../keys/public.key.pem");
pub const PUBLIC_KEY_PEM: &str = include_str!("../keys/public.pub.pem");
pub const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000000012026120700000000000001";
pub const MERCHANT_KEY: &str = include_str!("../keys/merchant.key.pem");
pub const MERCHANT_PUBLIC: &str = include_str!("../keys/merchant.pub.pem");
pub const MERCHANT_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD23F7DA24";
pub const FORWARD_KEY: &str = include_str!("../keys/forward.key.pem");
pub const FORWARD_PUBLIC: &str = include_str!("../keys/forward.pub.pem");
