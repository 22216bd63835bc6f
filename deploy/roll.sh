#!/usr/bin/env bash
# roll.sh: a rolling upgrade of a Switchboard cluster, one node at a time,
# without dropping a session: each node is drained to empty (its sessions
# move to the other nodes, make-before-break), restarted on the new binary,
# and waited for until it is up again and the rooms' streams have every
# copy caught up (its own among them) before the next one, so that the
# rooms' storage keeps its quorum throughout.
#
# Copy it and set, in the environment:
#
#   NODES        the nodes in the order to roll, as ID=HTTP pairs:
#                "n1=10.0.0.1:7071 n2=10.0.0.2:7071 n3=10.0.0.3:7071"
#                (HTTP as an address, or a name the service publishes or
#                the node's --ws-origins names: its reads answer 421
#                under any other name)
#   RESTART      the command that restarts one node on the new binary and
#                returns once the old process has exited; it sees NODE_ID
#                and NODE_HTTP. For the systemd unit of docs/deploy.md:
#                'ssh "$NODE_ID" sudo systemctl restart switchboard'
#   CHECK        a command that checks the node's settings against the new
#                binary before the node is drained, and fails when the new
#                binary would refuse them (settings an earlier build took
#                may be refused by a later one); it sees NODE_ID and
#                NODE_HTTP. For example:
#                'ssh "$NODE_ID" /usr/local/bin/switchboard.new serve --config /etc/switchboard/switchboard.toml --check'
#                (default: none)
#   CLUSTER      every node's HTTP address (or ID=HTTP pair), when NODES
#                names only some of them (a roll run again for the nodes
#                left): whether the rooms' copies caught up is a sum over
#                all nodes (default: the HTTP addresses of NODES)
#   WITHIN       the drain's window (default 30s)
#   ADMIN_TOKEN  file holding the nodes' admin token (serve --admin-token);
#                without it the nodes accept drains from loopback only
#   READY_WAIT   how many seconds a restarted node may take to be up and
#                its copies to catch up, a whole number (default 120)
#   SWITCHBOARD  the switchboard binary that runs `probe` and `drain`
#                (default: on PATH)
#   HTTPS        1, true or yes: speak HTTPS to the nodes (serve
#                --http-tls), trusting the system's CAs, or CA when set;
#                empty (the default), 0, false or no: plain HTTP; any
#                other value is refused (exit 2)
#   CA           CA certificates (PEM) that verify the nodes' HTTPS; setting
#                it turns HTTPS on (HTTPS=0, false or no beside it is
#                refused)
#   TLS_NAME     the name the nodes' certificates must prove (serve
#                --service), needed when NODES gives IP addresses
#
# Each node's readiness is `switchboard probe` (GET /readyz), the copies'
# `switchboard probe --caught-up` over CLUSTER (GET /metrics: it always
# passes where the nodes use an external --bus, whose servers this script
# does not restart) and its drain `switchboard drain`, all with the HTTPS
# settings above.
#
# A node that does not come back up, or copies that do not catch up, stop
# the roll (exit 1) with the other nodes untouched: fix it, then run the
# script again for the nodes left (with CLUSTER set).
# A roll that stops between a node's drain and its return (the drain, the
# RESTART command or ssh failing, the node not back up, an interrupt)
# names the node it may have left draining, which admits no session until
# it restarts or its drain is undone, and prints the command that undoes
# it: `switchboard drain --undo` with the settings above (DELETE
# /v1/drain; without ADMIN_TOKEN only from the node's own host).
# Stopping a drained node is immediate (it holds no session), so RESTART
# need not wait out --drain-grace.
#
# It runs on bash 3.2 (macOS's /bin/bash) and later.
set -euo pipefail

: "${NODES:?set NODES to \"ID=HTTP ...\", the nodes in the order to roll}"
: "${RESTART:?set RESTART to the command that restarts NODE_ID}"
WITHIN=${WITHIN:-30s}
READY_WAIT=${READY_WAIT:-120}
if [[ ! $READY_WAIT =~ ^[0-9]+$ ]]; then
	echo "roll: READY_WAIT=$READY_WAIT: want a whole number of seconds (120, not 120s)" >&2
	exit 2
fi
SWITCHBOARD=${SWITCHBOARD:-switchboard}
# Arrays are expanded as ${a[@]+"${a[@]}"}: bash before 4.4 takes an empty
# "${a[@]}" for an unset variable under set -u.
token_args=()
if [[ -n "${ADMIN_TOKEN:-}" ]]; then
	token_args=(--admin-token "$ADMIN_TOKEN")
fi
https=${CA:+1}
case ${HTTPS:-} in
1 | true | TRUE | True | yes | YES | Yes) https=1 ;;
'' | 0 | false | FALSE | False | no | NO | No)
	if [[ -n "${HTTPS:-}" && -n "$https" ]]; then
		echo "roll: HTTPS=$HTTPS, but CA is set, which turns HTTPS on: unset one of them" >&2
		exit 2
	fi
	;;
*)
	echo "roll: HTTPS=$HTTPS: want 1, true or yes for HTTPS, or 0, false, no or nothing for plain HTTP" >&2
	exit 2
	;;
esac
tls_args=()
if [[ -n "$https" ]]; then
	tls_args=(--https)
fi
if [[ -n "${CA:-}" ]]; then
	tls_args+=(--ca "$CA")
fi
if [[ -n "${TLS_NAME:-}" ]]; then
	tls_args+=(--tls-name "$TLS_NAME")
fi

log() { printf '%s roll: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# draining_id, draining_http: the node drained and not yet seen up again,
# which a roll stopped now may leave draining (empty: none).
draining_id='' draining_http=''
left_draining() {
	local status=$? undo
	if [[ -z "$draining_id" ]]; then
		return "$status"
	fi
	undo=$(printf ' %q' "$SWITCHBOARD" drain --undo ${token_args[@]+"${token_args[@]}"} ${tls_args[@]+"${tls_args[@]}"} "$draining_http")
	log "stopped (exit $status) after draining $draining_id ($draining_http), before it was up again: unless it restarted, it is still draining and admits no session; to undo the drain:" >&2
	printf '    %s\n' "${undo# }" >&2
	return "$status"
}
trap left_draining EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ready HTTP: the node answers /readyz with 200 (up: it serves rooms).
ready() { "$SWITCHBOARD" probe --http "$1" --timeout 2s ${tls_args[@]+"${tls_args[@]}"} >/dev/null; }

cluster=()
for pair in ${CLUSTER:-$NODES}; do
	cluster+=("${pair#*=}")
done
# caught_up: every room stream has a leader and all its copies caught up,
# summed over the whole cluster.
caught_up() { "$SWITCHBOARD" probe --caught-up --timeout 2s ${tls_args[@]+"${tls_args[@]}"} ${cluster[@]+"${cluster[@]}"}; }

for pair in $NODES; do
	id=${pair%%=*}
	http=${pair#*=}
	if ! ready "$http"; then
		log "$id ($http) is not up before its turn; stopping the roll"
		exit 1
	fi
	if ! caught_up >/dev/null 2>&1; then
		log "the rooms' storage is not safe to roll before $id's turn (copies not caught up, or fewer than 3: the probe below says which); stopping the roll"
		caught_up || true
		exit 1
	fi
	if [[ -n "${CHECK:-}" ]] && ! NODE_ID=$id NODE_HTTP=$http bash -c "$CHECK"; then
		log "$id: CHECK failed: the new binary would refuse its settings; stopping the roll before draining it"
		exit 1
	fi
	log "$id: draining within $WITHIN"
	draining_id=$id draining_http=$http
	"$SWITCHBOARD" drain "$http" --within "$WITHIN" ${token_args[@]+"${token_args[@]}"} ${tls_args[@]+"${tls_args[@]}"}
	log "$id: restarting"
	NODE_ID=$id NODE_HTTP=$http bash -c "$RESTART"
	log "$id: waiting until it is up (at most ${READY_WAIT}s)"
	deadline=$((SECONDS + READY_WAIT))
	while :; do
		if ready "$http" 2>/dev/null; then
			draining_id='' draining_http=''
			break
		fi
		if ((SECONDS >= deadline)); then
			log "$id did not come back up within ${READY_WAIT}s; stopping the roll"
			exit 1
		fi
		sleep 1
	done
	log "$id: up again; waiting until the rooms' copies have caught up"
	while :; do
		if caught_up >/dev/null 2>&1; then
			break
		fi
		if ((SECONDS >= deadline)); then
			log "the rooms' copies did not catch up within ${READY_WAIT}s of $id's restart; stopping the roll"
			caught_up || true
			exit 1
		fi
		sleep 1
	done
	log "$id: done"
done
log "every node rolled"
