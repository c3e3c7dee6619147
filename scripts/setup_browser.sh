#!/usr/bin/env bash
# Headless browser for the report and portal tests: Debian's chromium (the tests drive it
# directly and through Playwright with executable_path, so no browser download is needed)
# and a CJK font so Chinese labels render in screenshots. Idempotent; run as root in CI set-up.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qiE "wenquanyi|noto sans cjk" || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
chromium --version
