# The pass/fail tally of the checks in scripts/checks/ (sourced, not run): `ok NAME` and
# `fail NAME` print one line each and count; `failures` lists what failed.
passed=0
failed=0
failures=()
ok() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); failures+=("$1"); }
