"""A real browser through the demo: headless Chromium (Debian's chromium and chromedriver)
loads the pages `wxgate demo` serves, gets a wx.config the sandbox accepts, clicks
through the sandbox's consent page, lands on the page showing the userinfo, and comes
back a second time without consent; chats with the account through /wx/service in safe
mode; drives the simulated Mini Program; and logs in to the console, watches the push
chart move while messages are pushed through the sandbox, and forces a refresh.

Usage: python3 demo_browser.py GATEWAY_URL SANDBOX_URL SCREENSHOT_DIR CONSOLE_KEY
Prints a JSON summary; exits non-zero on any failed expectation.
"""

import json
import sys
import tempfile
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAITING = "waiting…"


def browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1000,900", "--user-data-dir=" + profile,
    ]:
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def calls(sandbox, path):
    with urllib.request.urlopen(sandbox + "/admin/calls", timeout=5) as r:
        return json.load(r).get(path, {}).get("total", 0)


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def status_of(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def chat(d, wait, gateway, shots, result):
    d.get(gateway + "/demo/chat.html")
    box = d.find_element(By.ID, "text")
    box.clear()
    box.send_keys("hello")
    d.find_element(By.CSS_SELECTOR, "#chat button").click()
    wait.until(lambda d: d.find_elements(By.ID, "last-reply"))
    reply = d.find_element(By.ID, "last-reply").text
    result["chat_reply"] = reply
    assert "you said hello" in reply, reply
    sent = d.find_element(By.ID, "sent").text
    answer = d.find_element(By.ID, "answer").text
    # The envelopes are sealed; their plaintext twins are not.
    assert "<Encrypt>" in sent and "hello" not in sent, sent
    assert "<Encrypt>" in answer and "<MsgSignature>" in answer, answer
    assert "<Content><![CDATA[hello]]></Content>" in d.find_element(By.ID, "sent-plaintext").text
    assert "you said hello" in d.find_element(By.ID, "reply-plaintext").text
    d.save_screenshot(shots + "/chat.png")


def mini_program(d, wait, gateway, shots, result):
    d.get(gateway + "/demo/miniprogram.html")
    text = lambda i: d.find_element(By.ID, i).text
    d.find_element(By.ID, "login").click()
    wait.until(lambda d: text("openid").startswith("o"))
    result["mp_openid"] = text("openid")
    d.find_element(By.ID, "phone").click()
    wait.until(lambda d: text("phone-number") != "")
    d.find_element(By.ID, "userinfo").click()
    wait.until(lambda d: text("nickname") != "")
    d.find_element(By.ID, "check").click()
    wait.until(lambda d: text("checked") != "")
    result["mp_phone"] = text("phone-number")
    result["mp_nickname"] = text("nickname")
    result["mp_session_check"] = text("checked")
    assert text("error") == "", text("error")
    assert result["mp_session_check"] == "valid", result
    d.save_screenshot(shots + "/miniprogram.png")


def component(d, wait, gateway, shots, result):
    # A merchant authorizes the demo platform on WeChat's page (the sandbox's), comes
    # back, and a fan's push is answered for it.
    d.get(gateway + "/demo/component.html")
    d.find_element(By.ID, "authorize").click()
    wait.until(lambda d: "componentloginpage" in d.current_url)
    d.save_screenshot(shots + "/component-consent.png")
    d.find_element(By.ID, "allow").click()
    wait.until(lambda d: "/demo/component.html?" in d.current_url
               and d.find_element(By.ID, "authorizer").text.startswith("wx"))
    result["component_authorizer"] = d.find_element(By.ID, "authorizer").text
    # The page is the merchant's too: a JS-SDK signature with its ticket, held by the
    # platform, which the sandbox's check accepts.
    wait.until(lambda d: d.find_element(By.ID, "merchant-jssdk").text not in ("", "(authorize first)"))
    result["component_jssdk"] = d.find_element(By.ID, "merchant-jssdk").text
    d.find_element(By.ID, "push").click()
    wait.until(lambda d: d.find_element(By.ID, "reply").text != "" or d.find_element(By.ID, "error").text != "")
    assert d.find_element(By.ID, "error").text == "", d.find_element(By.ID, "error").text
    result["component_reply"] = d.find_element(By.ID, "reply").text
    d.save_screenshot(shots + "/component.png")


def pay(d, wait, gateway, shots, result):
    d.get(gateway + "/demo/pay.html")
    text = lambda i: d.find_element(By.ID, i).text
    d.find_element(By.ID, "pay").click()
    wait.until(lambda d: text("delivered") != "" or text("error") != "")
    assert text("error") == "", text("error")
    result["pay_delivered"] = text("delivered")
    result["pay_notification"] = text("notification")
    d.save_screenshot(shots + "/pay.png")


def console(d, wait, gateway, sandbox, shots, console_key, result):
    # No session: every data route says 401, a forged cookie too.
    for path in ("overview", "traffic", "problems"):
        url = gateway + "/console/api/" + path
        assert status_of(url) == 401, path
        assert status_of(url, {"Cookie": "wxgate_console=v1.9999999999.abc.0123"}) == 401, path
    d.get(gateway + "/console")
    wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())
    d.find_element(By.ID, "key").send_keys("not the key")
    d.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait.until(lambda d: d.find_element(By.ID, "login-error").text != "")
    d.find_element(By.ID, "key").clear()
    d.find_element(By.ID, "key").send_keys(console_key)
    d.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait.until(lambda d: d.find_element(By.ID, "dashboard").is_displayed()
               and d.find_elements(By.CSS_SELECTOR, ".account[data-account='default'] .cred[data-kind='access_token'][data-expires-at]"))
    accounts = [e.get_attribute("data-account") for e in d.find_elements(By.CSS_SELECTOR, ".account")]
    result["console_accounts"] = accounts
    assert sorted(accounts) == ["default", "mini"], accounts
    # Read in one script: the page redraws every few seconds, so an element found in
    # one call may be gone in the next.
    def token(attr):
        return d.execute_script(
            "const e = document.querySelector(\".account[data-account='default'] .cred[data-kind='access_token']\");"
            "return e ? e.getAttribute(arguments[0]) : null;", attr)
    fetched, expires, refresh = (int(token(a)) for a in ("data-fetched-at", "data-expires-at", "data-refresh-at"))
    # The sandbox issues tokens for 7200 s by its clock; refresh is due before expiry.
    assert expires - fetched == 7200, (fetched, expires)
    assert fetched < refresh < expires, (fetched, refresh, expires)
    result["console_token_lifetime"] = expires - fetched

    # The push chart moves while messages go through the sandbox.
    before = int(d.execute_script("return document.getElementById('push-total').textContent"))
    for i in range(5):
        post(sandbox + "/admin/push", {"url": gateway + "/wx/service", "appid": "wxsandbox0000001",
                                        "mode": "safe", "kind": "text", "text": "hello %d" % i})
    wait_long = WebDriverWait(d, 30)
    pushes = lambda: int(d.execute_script("return document.getElementById('push-total').textContent"))
    wait_long.until(lambda d: pushes() >= before + 5)
    result["console_pushes_seen"] = pushes() - before
    d.set_window_size(1100, 1500)
    d.save_screenshot(shots + "/console.png")

    # Force a refresh: the token's issue time and digest change.
    digest = token("data-digest")
    fetches_before = calls(sandbox, "/cgi-bin/stable_token")
    d.find_element(By.CSS_SELECTOR, ".account[data-account='default'] button.refresh").click()
    wait.until(lambda d: d.switch_to.alert)
    d.switch_to.alert.accept()
    # A new value, issued later than the one the page showed first.
    wait.until(lambda d: token("data-digest") not in (None, digest)
               and int(token("data-fetched-at")) > fetched)
    result["console_issued_before_after"] = [fetched, int(token("data-fetched-at"))]
    result["console_refresh_fetches"] = calls(sandbox, "/cgi-bin/stable_token") - fetches_before
    # A stable token WeChat still hands back costs a second, forced call (the
    # compare-and-refresh of /api/v1/.../token/refresh): one refresh, at most two calls.
    assert result["console_refresh_fetches"] in (1, 2), result
    d.save_screenshot(shots + "/console-refreshed.png")


def main():
    gateway, sandbox, shots, console_key = sys.argv[1:5]
    result = {}
    with tempfile.TemporaryDirectory() as profile:
        d = browser(profile)
        try:
            wait = WebDriverWait(d, 20)
            # JS-SDK: both ways of getting the config, checked by the sandbox.
            d.get(gateway + "/demo/jssdk.html")
            wait.until(lambda d: all(d.find_element(By.ID, "verdict-" + k).text not in ("", WAITING)
                                     for k in ("jsonp", "fetch")))
            for k in ("jsonp", "fetch"):
                verdict = d.find_element(By.ID, "verdict-" + k).text
                result["jssdk_" + k] = verdict
                assert verdict == "config:ok", (k, verdict, d.find_element(By.ID, "config-" + k).text)
            d.save_screenshot(shots + "/jssdk.png")

            # OAuth: through the consent page.
            d.get(gateway + "/demo/oauth.html")
            d.find_element(By.ID, "login").click()
            wait.until(lambda d: d.current_url.startswith(sandbox) and d.find_elements(By.ID, "allow"))
            result["consent_page"] = d.current_url.split("?")[0]
            d.save_screenshot(shots + "/consent.png")
            d.find_element(By.ID, "allow").click()
            wait.until(lambda d: d.current_url.startswith(gateway + "/demo/oauth.html")
                       and d.find_element(By.ID, "nickname").text != "(not logged in)")
            result["nickname"] = d.find_element(By.ID, "nickname").text
            userinfo = json.loads(d.find_element(By.ID, "userinfo").text)
            result["openid"] = userinfo["openid"]
            assert result["nickname"] == "Band", result
            d.save_screenshot(shots + "/oauth.png")

            # The return visit: straight back, no consent page.
            authorize_before = calls(sandbox, "/connect/oauth2/authorize")
            d.get(gateway + "/demo/oauth.html")
            d.find_element(By.ID, "login").click()
            wait.until(lambda d: "userinfo=" in d.current_url
                       and d.find_element(By.ID, "nickname").text == "Band")
            result["return_visit_consent_pages"] = calls(sandbox, "/connect/oauth2/authorize") - authorize_before
            assert result["return_visit_consent_pages"] == 0, result

            chat(d, wait, gateway, shots, result)
            mini_program(d, wait, gateway, shots, result)
            pay(d, wait, gateway, shots, result)
            component(d, wait, gateway, shots, result)
            console(d, wait, gateway, sandbox, shots, console_key, result)
        finally:
            d.quit()
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
