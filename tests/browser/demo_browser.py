"""A real browser through the demo: headless Chromium (Debian's chromium and chromedriver)
loads the pages `wxgate demo` serves, gets a wx.config the sandbox accepts, clicks
through the sandbox's consent page, lands on the page showing the userinfo, and comes
back a second time without consent.

Usage: python3 demo_browser.py GATEWAY_URL SANDBOX_URL SCREENSHOT_DIR
Prints a JSON summary; exits non-zero on any failed expectation.
"""

import json
import sys
import tempfile
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


def main():
    gateway, sandbox, shots = sys.argv[1:4]
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
        finally:
            d.quit()
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
