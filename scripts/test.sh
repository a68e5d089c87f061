#!/usr/bin/env bash
# The whole check, as CI runs it: installs what is missing, then formatting, lints and
# every test. Run from anywhere: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# A target directory outside the clone, so repeated clean clones reuse the build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wxgate-target}"

scripts/install-deps.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# No import cycle between the modules of any crate (the gateway's features never import
# `http`; the sandbox's platform never imports its routes).
for crate in crates/*/src bench/src; do python3 scripts/module_cycles.py "$crate"; done
# The gateway library builds without the sandbox (the `sandbox` feature is the binary's).
cargo check -q -p wxgate --no-default-features
cargo test --workspace
