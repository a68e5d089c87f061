"""An independent WeChat implementation against wxgate's /wx/service: wechatpy's own
WeChatCrypto encrypts a push, wxgate answers, and wechatpy decrypts and parses the reply.

Usage: python3 wechatpy_push.py SERVICE_URL TOKEN ENCODING_AES_KEY APPID CONTENT
Prints the parsed reply as JSON.
"""

import json
import sys
import time
import urllib.parse
import urllib.request

import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature


def main():
    url, token, key, appid, content = sys.argv[1:6]
    crypto = WeChatCrypto(token, key, appid)
    timestamp = str(int(time.time()))
    nonce = "wechatpy%d" % int(time.time() * 1000 % 100000)
    openid = "oSandboxUser000000000000001"
    message = (
        "<xml><ToUserName><![CDATA[gh_sandbox00001]]></ToUserName>"
        "<FromUserName><![CDATA[%s]]></FromUserName>"
        "<CreateTime>%s</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[%s]]></Content><MsgId>%s</MsgId></xml>"
    ) % (openid, timestamp, content, int(time.time() * 1000))
    # wechatpy produces the encrypted form; a push carries Encrypt in the body and the
    # signatures in the query, as WeChat sends it.
    sealed = xmltodict.parse(crypto.encrypt_message(message, nonce, timestamp))["xml"]
    body = (
        "<xml><ToUserName><![CDATA[gh_sandbox00001]]></ToUserName>"
        "<Encrypt><![CDATA[%s]]></Encrypt></xml>"
    ) % sealed["Encrypt"]
    import hashlib
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    check_signature(token, signature, timestamp, nonce)
    query = urllib.parse.urlencode({
        "signature": signature,
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": openid,
        "encrypt_type": "aes",
        "msg_signature": sealed["MsgSignature"],
    })
    req = urllib.request.Request(url + "?" + query, data=body.encode(), method="POST",
                                 headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer = resp.read().decode()
    envelope = xmltodict.parse(answer)["xml"]
    plain = crypto.decrypt_message(answer, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
    reply = parse_message(plain)
    print(json.dumps({
        "type": reply.type,
        "content": getattr(reply, "content", None),
        "source": reply.source,
        "target": reply.target,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
