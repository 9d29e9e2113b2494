#!/usr/bin/env bash
# Installs what the test suite needs, only what is missing (idempotent; root, no TTY).
#   Debian: kcat and confluent-kafka-python (the "older clients", on Debian's librdkafka 2.0.2; Confluent.Kafka runs on
#   librdkafka.redist from NuGet), kafka-python and its codecs, Go and sarama (the Go client driver IntegrationTests/go is built offline against
#   Debian's sarama sources in GOPATH mode; gcc for its cgo zstd binding). npm: kafkajs from IntegrationTests/js/package-lock.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi

wanted=(kcat python3-kafka python3-confluent-kafka golang-go golang-github-shopify-sarama-dev gcc libc6-dev)
# kafka-python's codecs (gzip is built in): python3-lz4 (lz4.frame), python3-snappy, python3-zstandard; python3-xxhash
# lets it write magic v0 LZ4 for Protocol's golden-data interop tests.
optional=(python3-lz4 python3-snappy python3-zstandard python3-xxhash)
command -v node >/dev/null 2>&1 || wanted+=(nodejs)
command -v npm >/dev/null 2>&1 || wanted+=(npm)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${wanted[@]}" "${optional[@]}"; do installed "$p" || missing+=("$p"); done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  to_install=()
  for p in "${missing[@]}"; do
    # Optional packages only if this Debian release has them.
    if printf '%s\n' "${optional[@]}" | grep -qx "$p"; then
      cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
      if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then echo "setup: $p not available, skipping"; continue; fi
    fi
    to_install+=("$p")
  done
  if [ "${#to_install[@]}" -gt 0 ]; then
    $SUDO apt-get install -y -q --no-install-recommends "${to_install[@]}"
  fi
else
  echo "setup: Debian packages present"
fi

if [ ! -d IntegrationTests/js/node_modules/kafkajs ]; then
  echo "setup: npm ci (kafkajs)"
  (cd IntegrationTests/js && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "setup: kafkajs present"
fi
