"""Sends wechatpy's absolute https://api.weixin.qq.com/ requests to another host (the
sandbox, or wxgate): the one thing the interop scripts change, never wechatpy's code."""

from requests.adapters import HTTPAdapter

WECHAT = "https://api.weixin.qq.com/"


class ToHost(HTTPAdapter):
    def __init__(self, base):
        super().__init__()
        self.base = base.rstrip("/") + "/"

    def send(self, request, **kwargs):
        request.url = self.base + request.url[len(WECHAT):]
        return super().send(request, **kwargs)


def point_at(client, base):
    """wechatpy's documented API_BASE_URL, plus the adapter for its absolute token URL."""
    client.API_BASE_URL = base.rstrip("/") + "/cgi-bin/"
    client._http.mount(WECHAT, ToHost(base))
