"""An independent WeChat client against the sandbox: wechatpy's own, unmodified client
code obtains a token, a jsapi ticket and the follower list.

Usage: python3 wechatpy_client.py SANDBOX_BASE_URL APPID SECRET

wechatpy builds most URLs from WeChatClient.API_BASE_URL, but fetch_access_token uses the
absolute https://api.weixin.qq.com/cgi-bin/token. So besides API_BASE_URL, the requests
session gets a transport adapter that sends api.weixin.qq.com to the sandbox: the only
thing changed is where requests go, never wechatpy's code or calls.
"""

import json
import sys

from wechatpy.client import WeChatClient

from to_host import point_at


def main():
    base, appid, secret = sys.argv[1:4]
    client = WeChatClient(appid, secret)
    point_at(client, base)

    token = client.access_token
    assert isinstance(token, str) and len(token) > 32, token
    ticket = client.jsapi.get_jsapi_ticket()
    assert isinstance(ticket, str) and len(ticket) > 32, ticket
    followers = client.user.get_followers()
    assert followers["total"] >= 1, followers
    openids = followers["data"]["openid"]
    info = client.user.get(openids[0])
    assert info["openid"] == openids[0], info
    print(json.dumps({
        "access_token": token,
        "ticket": ticket,
        "total": followers["total"],
        "openids": openids,
        "first_user": info["openid"],
    }))


if __name__ == "__main__":
    main()
