#!/usr/bin/env bash
# Installs what the tests need and a fresh machine may lack. Idempotent and quiet when
# everything is there.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python's wechatpy: an independent WeChat implementation the interop tests run against.
if ! python3 -c "import wechatpy, cryptography" >/dev/null 2>&1; then
  echo "installing: wechatpy (PyPI)" >&2
  python3 -m pip install --quiet --disable-pip-version-check wechatpy cryptography
fi
