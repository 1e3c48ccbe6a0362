# SPDX-License-Identifier: GPL-2.0
#
# KTAP helpers for guest-side tests (sourced).

KTAP_N=0
KTAP_FAILED=0

ktap_header() {
	echo "KTAP version 1"
	echo "1..$1"
}

# ktap_result <0|nonzero> <name> [diagnostic...]
ktap_result() {
	local rc=$1 name=$2
	shift 2
	KTAP_N=$((KTAP_N + 1))
	# When each result came (seconds since boot), for finding what is slow.
	if [ -n "${OUT:-}" ]; then
		local up rest
		read -r up rest </proc/uptime
		echo "$up ${PART:-0} $name" >>"$OUT/times"
	fi
	if [ "$rc" -eq 0 ]; then
		echo "ok $KTAP_N $name"
	else
		# Every line of every diagnostic is a KTAP comment.
		[ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/# /'
		echo "not ok $KTAP_N $name"
		KTAP_FAILED=$((KTAP_FAILED + 1))
	fi
}

# ktap_check <name> <command...>: one test, passing when the command does.
ktap_check() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	[ -n "$out" ] && printf '%s\n' "$out" | head -40 | sed 's/^/# /'
	ktap_result "$rc" "$name"
}

ktap_diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

ktap_done() {
	[ "$KTAP_FAILED" -eq 0 ]
}
