#!/usr/bin/env bash
# Install Debian's headless Chromium for the browser test (tests/test_browser.py).
#
# Idempotent: a quick no-op when /usr/bin/chromium is already there. Playwright's own browser
# download (`playwright install`) does not work offline, so the test drives this Chromium through
# the `playwright` Python package with executable_path=/usr/bin/chromium.
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ]; then
    echo "chromium already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "error: need root (or sudo) to apt-get install chromium" >&2; exit 1; }
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# fonts-liberation: readable text in screenshots; the rest comes with the chromium package.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
echo "installed: $("$CHROMIUM" --version)"
