#!/usr/bin/env bash
# Install the Debian packages the test suite drives, when they are missing.
# Tests that need one that is still missing skip with the reason; nothing here is required
# to run webserv itself.
set -u
packages=(
  php-cgi:php-cgi          # CGI tests run real PHP pages
  chromium:chromium        # the status page and forms in a real browser
  tcpdump:tcpdump          # the recorded SYN is compared with the wire
  ip:iproute2              # network namespaces for the delayed-path tests
  curl:curl
  strace:strace            # proves `lifecycle off` reads nothing from the kernel
  nginx:nginx-light        # the conformance corpus's and REDbot's nginx column
  htpasswd:apache2-utils   # auth_basic tests write their user files with the real tool
  haproxy:haproxy          # a real balancer speaking PROXY protocol v1/v2 (tests/proxy/)
)
missing=()
for entry in "${packages[@]}"; do
  cmd=${entry%%:*}; pkg=${entry#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: not root or no apt-get; missing ${missing[*]} (tests that need them will skip)"
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null \
  || echo "system-deps: apt-get failed; tests that need ${missing[*]} will skip"
exit 0
