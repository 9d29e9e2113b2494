#!/usr/bin/env bash
# The project's one test command: setup, then every test project in Kayak.slnx. Exits with dotnet test's code and
# ends with the names of failed tests and one summary line "N passed, N failed" summed over the test assemblies.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

log="$(mktemp -t kayak-test.XXXXXX.log)"
dotnet test Kayak.slnx --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# Per test assembly, VSTest's normal console verbosity ends with a block
#   Total tests: N / Passed: N / Failed: N / Skipped: N / Total time: ...
# (minimal verbosity prints "Passed!  - Failed: X, Passed: Y, ..." instead): sum either form.
read -r passed failed < <(awk '
  /^Total tests: *[0-9]+/ { inblock = 1; next }
  inblock && /^ *Passed: *[0-9]+ *$/ { v = $0; sub(/.*Passed: */, "", v); p += v + 0; next }
  inblock && /^ *Failed: *[0-9]+ *$/ { v = $0; sub(/.*Failed: */, "", v); f += v + 0; next }
  inblock && /Total time:/ { inblock = 0; next }
  /(Passed|Failed)! +- +Failed: *[0-9]+, *Passed: *[0-9]+/ {
    v = $0; sub(/.*Failed: */, "", v); f += v + 0
    v = $0; sub(/.*Passed: */, "", v); p += v + 0
  }
  END { printf "%d %d\n", p, f }' "$log")
# The CI log keeps only its tail: name the failed tests next to the summary so a failure is traceable from there.
grep -E '^ +Failed [^:]' "$log" | sort -u | head -50
rm -f "$log"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # build or host failure: no per-assembly line reported the failure
fi
echo "${passed} passed, ${failed} failed"
exit "$rc"
