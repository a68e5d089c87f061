#!/usr/bin/env bash
# Installs what the tests need and a fresh machine may lack: redis-server (store tests;
# also run with --sentinel and --cluster-enabled) and redis-cli (creates the test Cluster),
# openssl (the Redis TLS test makes its own CA),
# chromium + chromedriver (the browser test), Python's wechatpy (interop) and selenium
# (drives the browser), node and npm's co-wechat-api (interop, in tests/interop).
# Idempotent and quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing (Debian): ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c "import wechatpy, wechatpayv3, cryptography, selenium" >/dev/null 2>&1; then
  echo "installing (PyPI): wechatpy wechatpayv3 cryptography selenium" >&2
  python3 -m pip install --quiet --disable-pip-version-check wechatpy wechatpayv3 cryptography selenium
fi

if [ ! -d tests/interop/node_modules/co-wechat-api ]; then
  echo "installing (npm): co-wechat-api" >&2
  npm install --silent --no-audit --no-fund --prefix tests/interop >/dev/null
fi
