"""Verifies a WeChat Pay v3 request signature with Python's `cryptography`, a second
implementation of the rules: reads the request as JSON on stdin
{"authorization", "method", "url", "body", "public_key"} and exits 0 only if the
`Authorization` header is WECHATPAY2-SHA256-RSA2048 with a valid SHA256-with-RSA
(PKCS#1 v1.5) signature over "METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n"."""
import base64
import json
import re
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

req = json.load(sys.stdin)
scheme, _, params = req["authorization"].partition(" ")
assert scheme == "WECHATPAY2-SHA256-RSA2048", scheme
fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
message = "%s\n%s\n%s\n%s\n%s\n" % (
    req["method"], req["url"], fields["timestamp"], fields["nonce_str"], req["body"])
key = serialization.load_pem_public_key(req["public_key"].encode())
key.verify(base64.b64decode(fields["signature"]), message.encode(), padding.PKCS1v15(), hashes.SHA256())
print(json.dumps({"ok": True, "mchid": fields["mchid"], "serial_no": fields["serial_no"]}))
