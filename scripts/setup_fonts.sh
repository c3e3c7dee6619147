#!/usr/bin/env bash
# The Chinese font the pictures (ring pictures, matplotlib) and the PDF print use: Debian's
# fonts-wqy-microhei (WenQuanYi Micro Hei, ~5 MB). pipeline/fonts.py finds it; without it the
# pictures carry English labels only. Idempotent; needs apt (run as root, or with sudo).
set -euo pipefail
if fc-list 2>/dev/null | grep -qiE "wenquanyi|noto sans cjk|source han sans"; then
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || { echo "setup_fonts: no apt-get; install a CJK font (e.g. WenQuanYi Micro Hei) by hand" >&2; exit 1; }
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends fonts-wqy-microhei fontconfig
