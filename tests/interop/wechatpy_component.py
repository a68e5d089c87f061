"""wechatpy's component client (PyPI, unmodified) pointed at wxgate's compatible API: it
asks for the component token with a client secret and no ticket of its own, and for an
authorizer's client with a placeholder refresh token; wxgate answers the managed tokens.

usage: wechatpy_component.py BASE COMPONENT_APPID CLIENT_SECRET TOKEN AES_KEY AUTHORIZER_APPID
prints: {"component_access_token": ..., "authorizer_access_token": ...}
"""
import json
import sys

from wechatpy.component import BaseWeChatComponent, WeChatComponent

base, appid, secret, token, aes_key, authorizer = sys.argv[1:7]
BaseWeChatComponent.API_BASE_URL = base + "/cgi-bin"
component = WeChatComponent(appid, secret, token, aes_key)
component_token = component.access_token
# The SDK wants a refresh token of its own before it asks; wxgate keeps the real one.
component.session.set("{0}_refresh_token".format(authorizer), "managed-by-wxgate")
client = component.get_client_by_appid(authorizer)
print(json.dumps({
    "component_access_token": component_token,
    "authorizer_access_token": client.access_token,
    "refresh_token_kept": component.session.get("{0}_refresh_token".format(authorizer)),
}))
