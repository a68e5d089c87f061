"""A payment-notification handler written with wechatpayv3 (PyPI), unmodified: it trusts
the key it is given (wxgate's forwarding key, in place of WeChat Pay's public key) and
verifies and decrypts what reaches it with the SDK's own `callback`. Each verified
notification is written to OUT as a JSON line; anything else is answered 401.

usage: wechatpay_handler.py PORT OUT MCHID APIV3_KEY MERCHANT_KEY_PEM TRUSTED_PUB_PEM TRUSTED_KEY_ID
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from wechatpayv3 import WeChatPay, WeChatPayType

port, out, mchid, apiv3_key, merchant_key, trusted_pub, trusted_id = sys.argv[1:8]
pay = WeChatPay(
    wechatpay_type=WeChatPayType.NATIVE,
    mchid=mchid,
    private_key=open(merchant_key).read(),
    cert_serial_no="3775B6A45ACD588826D15E583A95F5DD23F7DA24",
    appid="wxsandbox0000001",
    apiv3_key=apiv3_key,
    public_key=open(trusted_pub).read(),
    public_key_id=trusted_id,
)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k: v for k, v in self.headers.items()}
        try:
            result = pay.callback(headers, body)
        except Exception as e:  # the SDK raises on an unknown signature type
            result = None
            print("callback raised", e, file=sys.stderr)
        if result and result.get("event_type"):
            with open(out, "a") as f:
                f.write(json.dumps(result) + "\n")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"code":"SUCCESS","message":"ok"}')
        else:
            self.send_response(401)
            self.end_headers()

    def log_message(self, *args):
        pass


print("ready", flush=True)
HTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
