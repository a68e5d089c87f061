"""wechatpy, unmodified, pointed at wxgate's WeChat-compatible API instead of WeChat.

Usage: python3 wechatpy_compat.py GATEWAY_URL APPID CLIENT_SECRET OPENID CALLS

The only setting changed is where requests go: WeChatClient.API_BASE_URL (wechatpy's
documented base URL) and, because fetch_access_token uses the absolute
https://api.weixin.qq.com/cgi-bin/token, a transport adapter on its requests session
that sends api.weixin.qq.com to the gateway. The secret is a client secret of
[[compat.clients]], not the AppSecret.

Fetches a token, the jsapi ticket, the followers and one user, sends a customer-service
message, then makes CALLS more follower calls; prints what it saw as JSON.
"""

import json
import sys

from wechatpy.client import WeChatClient

from to_host import point_at


def main():
    base, appid, secret, openid, calls = sys.argv[1:6]
    client = WeChatClient(appid, secret)
    point_at(client, base)

    token = client.access_token
    ticket = client.jsapi.get_jsapi_ticket()
    followers = client.user.get_followers()
    info = client.user.get(openid)
    sent = client.message.send_text(openid, "hello from wechatpy through wxgate")
    totals = [client.user.get_followers()["total"] for _ in range(int(calls))]
    print(json.dumps({
        "access_token": token,
        "ticket": ticket,
        "total": followers["total"],
        "user": info["openid"],
        "sent": sent.get("errcode", 0),
        "calls": len(totals),
    }))


if __name__ == "__main__":
    main()
