#!/usr/bin/env bash
# Checks the packaging in deploy/ as far as a machine without a Docker
# engine allows. Installs what it needs on a fresh Debian machine, prints
# each check, and exits non-zero if any check found a real problem.
#
#   Dockerfile   essentials by grep; dockerfile-utils lint (npm); its go build
#                line run as written, the result checked static and stamped
#   compose.yaml yamllint; `docker compose config` (or Debian's docker-compose
#                v1, which needs no engine); the cluster's shape; then the three
#                nodes' exact command lines run in network namespaces as uid
#                65532, probed with the image's HEALTHCHECK command, asked for
#                the directory through n1's DNS responder, and n3 stopped with
#                SIGTERM as `docker stop` would
#   systemd unit systemd-analyze verify; systemd-analyze security under a
#                threshold; the hardening lines it must keep
set -euo pipefail
cd "$(dirname "$0")/.."

failures=0
ok() { echo "  ok    $*"; }
bad() { echo "  FAIL  $*"; failures=$((failures + 1)); }
skip() { echo "  skip  $*"; }

# --- installs ---------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
need=()
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v file >/dev/null 2>&1 || need+=(file)
command -v yamllint >/dev/null 2>&1 || need+=(yamllint)
/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || need+=(python3-yaml)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v npm >/dev/null 2>&1 || need+=(npm)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  need+=(docker-compose) # v1 from Debian: validates a compose file without an engine
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >/dev/null
fi
tools=${XDG_CACHE_HOME:-$HOME/.cache}/switchboard-ci
dfu=$tools/node_modules/.bin/dockerfile-utils
if [ ! -x "$dfu" ]; then
  echo "installing: dockerfile-utils (npm)"
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --silent dockerfile-utils@0.16.3 >/dev/null
fi

tmp=$(mktemp -d)
pids=()
namespaces=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in "${namespaces[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- Dockerfile -------------------------------------------------------------
df=deploy/Dockerfile
echo "== $df"
from_count=$(grep -cE '^FROM ' $df || true)
[ "$from_count" -ge 2 ] && ok "multi-stage ($from_count FROM lines)" || bad "not multi-stage"
final_from=$(grep -E '^FROM ' $df | tail -1 | awk '{print $2}')
case "$final_from" in
  scratch | gcr.io/distroless/static*) ok "final stage is $final_from" ;;
  *) bad "final stage $final_from is neither scratch nor distroless/static" ;;
esac
user=$(grep -E '^USER ' $df | tail -1 | awk '{print $2}')
if [[ "$user" =~ ^[0-9]+(:[0-9]+)?$ ]] && [ "${user%%:*}" != 0 ]; then
  ok "runs as numeric non-root USER $user"
else
  bad "last USER '$user' is not a numeric non-root user"
fi
if grep -qiE '^ADD[[:space:]].*(https?|ftp)://' $df; then bad "ADD fetches a URL"; else ok "no ADD of URLs"; fi
build_line=$(grep -E '^RUN .*go build' $df | head -1 | sed 's/^RUN //')
for want in CGO_ENABLED=0 -trimpath '-X main.version=${VERSION}'; do
  [[ "$build_line" == *"$want"* ]] && ok "go build has $want" || bad "go build line lacks $want"
done
grep -qE '^VOLUME .*"/data"' $df && ok "VOLUME /data" || bad "no VOLUME /data"
for port in 7070/tcp 7071/tcp 7072/tcp 5353/udp; do
  grep -qE "^EXPOSE .*\b$port\b" $df && ok "EXPOSE $port" || bad "no EXPOSE $port"
done
grep -qE '^HEALTHCHECK ' $df && ok "HEALTHCHECK present" || bad "no HEALTHCHECK"
if "$dfu" lint $df >"$tmp/dfu.out" 2>&1; then
  ok "dockerfile-utils lint: no problems"
else
  sed 's/^/        /' "$tmp/dfu.out"
  bad "dockerfile-utils lint"
fi

# The build step exactly as the Dockerfile runs it, into $tmp instead of /out.
version=packaging-check
if (VERSION=$version bash -c "${build_line//\/out\//$tmp/}") >"$tmp/build.out" 2>&1; then
  ok "built with the Dockerfile's line: $build_line"
else
  sed 's/^/        /' "$tmp/build.out"
  bad "the Dockerfile's go build line fails"
fi
bin=$tmp/switchboard
if [ -x "$bin" ]; then
  if file "$bin" | grep -q 'statically linked' && ! ldd "$bin" >/dev/null 2>&1; then
    ok "binary is statically linked"
  else
    bad "binary is not static: $(file -b "$bin")"
  fi
  got=$("$bin" version 2>&1 || true)
  [[ "$got" == *"$version"* ]] && ok "version stamped ($got)" || bad "version not stamped: $got"
fi

# --- compose.yaml -----------------------------------------------------------
cf=deploy/compose.yaml
echo "== $cf"
if yamllint -d '{extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: {check-keys: false}}}' $cf >"$tmp/yl.out" 2>&1; then
  ok "yamllint"
else
  sed 's/^/        /' "$tmp/yl.out"
  bad "yamllint"
fi
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  compose=(docker-compose)
fi
if "${compose[@]}" -f $cf config -q >"$tmp/cc.out" 2>&1; then
  ok "${compose[*]} config: valid"
else
  sed 's/^/        /' "$tmp/cc.out"
  bad "${compose[*]} config"
fi
# The cluster's shape, and each node's command line for the run below.
if /usr/bin/python3 - $cf >"$tmp/nodes.tsv" 2>"$tmp/shape.err" <<'PY'; then
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
services = doc["services"]
problems = []
if sorted(services) != ["n1", "n2", "n3"]:
    problems.append("services are %s, want n1 n2 n3" % sorted(services))
dns, volumes, joins, ips = 0, set(), {}, {}
for name in sorted(services):
    s = services[name]
    cmd = s.get("command") or []
    args = dict(a[2:].split("=", 1) for a in cmd if a.startswith("--") and "=" in a)
    ip = s["networks"]["switchboard"]["ipv4_address"]
    if cmd[:1] != ["serve"]:
        problems.append(name + ": command is not serve")
    if args.get("advertise") != ip + ":7070":
        problems.append(name + ": --advertise is not its network address " + ip)
    if args.get("data") != "/data" or not any(v.endswith(":/data") for v in s.get("volumes", [])):
        problems.append(name + ": no volume on --data=/data")
    volumes.update(v.split(":")[0] for v in s.get("volumes", []))
    joins[name] = sorted(a.strip() for a in args.get("join", "").split(",") if a.strip())
    ips[name] = ip
    if not args.get("group"):
        problems.append(name + ": no --group")
    dns += "dns" in args
    print("\t".join([name, ip] + cmd))
# Each node names the other two, so the rooms' storage starts with 3
# copies and a node restarted alone finds the cluster through either.
for name in sorted(joins):
    want = sorted(ips[o] + ":7072" for o in ips if o != name)
    if joins[name] != want:
        problems.append("%s: --join is %s, want the other two: %s" % (name, ",".join(joins[name]), ",".join(want)))
if len(volumes) != 3:
    problems.append("want a data volume per node, have %s" % sorted(volumes))
if dns != 3:
    problems.append("want a DNS responder on every node (the NS records name them all), have %d" % dns)
if problems:
    sys.exit("; ".join(problems))
PY
  ok "three nodes, each joining the other two, a group, a data volume and a DNS responder each"
else
  bad "cluster shape: $(cat "$tmp/shape.err")"
fi

# Run the compose file's command lines on three network namespaces, one per
# container, with /etc/hosts naming n1-n3 as Docker's DNS would.
health=$(grep -E '^[[:space:]]+CMD \[' $df | head -1 | sed 's/^[[:space:]]*CMD //' |
  /usr/bin/python3 -c 'import json,sys; print("\t".join(json.load(sys.stdin)[1:]))')
sfx=$$
if [ -x "$bin" ] && [ -s "$tmp/nodes.tsv" ] && ip netns add "sbk$sfx-sw" 2>/dev/null; then
  namespaces+=("sbk$sfx-sw")
  ip -n "sbk$sfx-sw" link add br0 type bridge
  ip -n "sbk$sfx-sw" link set br0 up
  hosts=$tmp/hosts
  printf '127.0.0.1 localhost\n' >"$hosts"
  while IFS=$'\t' read -r name ip _; do printf '%s %s\n' "$ip" "$name" >>"$hosts"; done <"$tmp/nodes.tsv"
  chmod 0755 "$tmp"
  cp "$bin" "$tmp/sb" && chmod 0755 "$tmp/sb"
  # The compose file mounts the cluster's secret at /run/secrets; here it is
  # a file of the same kind, owned by the containers' uid.
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/cluster_secret"
  chown 65532:65532 "$tmp/cluster_secret" && chmod 0600 "$tmp/cluster_secret"
  declare -A nodepid nodeip
  while IFS=$'\t' read -r -a f; do
    name=${f[0]} ip=${f[1]} ns=sbk$sfx-${f[0]}
    ip netns add "$ns"
    namespaces+=("$ns")
    mkdir -p "/etc/netns/$ns" && cp "$hosts" "/etc/netns/$ns/hosts"
    ip link add "sb${sfx}${name}" type veth peer name eth0 netns "$ns"
    ip link set "sb${sfx}${name}" netns "sbk$sfx-sw"
    ip -n "sbk$sfx-sw" link set "sb${sfx}${name}" master br0 up
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    mkdir -m 0700 "$tmp/$name-data" && chown 65532:65532 "$tmp/$name-data"
    args=("${f[@]:2}") # the command: serve --flag=value ...
    args=("${args[@]/#--data=\/data/--data=$tmp/$name-data}")
    args=("${args[@]/#--cluster-secret-file=\/run\/secrets\/cluster_secret/--cluster-secret-file=$tmp/cluster_secret}")
    ip netns exec "$ns" setpriv --reuid=65532 --regid=65532 --clear-groups \
      "$tmp/sb" "${args[@]}" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
    nodepid[$name]=$!
    nodeip[$name]=$ip
  done <"$tmp/nodes.tsv"
  IFS=$'\t' read -r -a probe <<<"$health"
  for name in n1 n2 n3; do
    healthy=no
    for _ in $(seq 1 50); do
      if ip netns exec "sbk$sfx-$name" setpriv --reuid=65532 --regid=65532 --clear-groups \
        "$tmp/sb" "${probe[@]}" >/dev/null 2>&1; then healthy=yes && break; fi
      sleep 0.2
    done
    if [ $healthy = yes ]; then ok "$name up as uid 65532, HEALTHCHECK passes"; else
      sed 's/^/        /' "$tmp/$name.log"
      bad "$name: HEALTHCHECK never passed"
    fi
  done
  seen=""
  # Up (not starting) means each node's rooms are ready; a fresh cluster's
  # first election can take several seconds on a loaded machine.
  for _ in $(seq 1 150); do
    seen=$(ip netns exec "sbk$sfx-n3" "$tmp/sb" dir --via chat.local --resolver "${nodeip[n1]}:5353" --json 2>"$tmp/dir.err" |
      /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(sorted(n["id"]+"@"+n["addr"]+"/"+n["status"] for n in d["nodes"])))' 2>/dev/null || true)
    [[ "$seen" == *n1@*/up*n2@*/up*n3@*/up ]] && break
    sleep 0.2
  done
  if [[ "$seen" == "n1@${nodeip[n1]}:7070/up n2@${nodeip[n2]}:7070/up n3@${nodeip[n3]}:7070/up" ]]; then
    ok "through n1's DNS responder, n3 sees the directory: $seen"
  else
    sed 's/^/        /' "$tmp/dir.err"
    bad "directory via DNS from n3: '$seen'"
  fi
  # Joined to each other, the three create the rooms' storage with 3 copies.
  created=$(grep -h "created the rooms' storage" "$tmp"/n[123].log || true)
  if [[ "$created" == *"replicas=3"* ]]; then
    ok "the rooms' storage created with 3 replicas"
  else
    bad "the rooms' storage not created with 3 replicas: '${created:-no such log line}'"
  fi
  kill -TERM "${nodepid[n3]}"
  start=$SECONDS
  if wait "${nodepid[n3]}"; then
    ok "n3 stopped cleanly on SIGTERM in $((SECONDS - start)) s (stop_grace_period is 35 s)"
  else
    sed 's/^/        /' "$tmp/n3.log"
    bad "n3 exited non-zero on SIGTERM"
  fi
else
  skip "cluster run: needs the built binary, the node list and 'ip netns add' (root)"
fi

# --- systemd unit -----------------------------------------------------------
unit=deploy/switchboard.service
echo "== $unit"
# verify wants ExecStart's binary to exist: point it at the one just built
# (or at a stand-in when the build failed, which is reported above).
mkdir -p "$tmp/unit"
exe=$bin
[ -x "$exe" ] || exe=/bin/true
sed "s#/usr/local/bin/switchboard#$exe#" $unit >"$tmp/unit/switchboard.service"
if systemd-analyze verify "$tmp/unit/switchboard.service" >"$tmp/sv.out" 2>&1 && [ ! -s "$tmp/sv.out" ]; then
  ok "systemd-analyze verify: clean"
else
  sed 's/^/        /' "$tmp/sv.out"
  bad "systemd-analyze verify"
fi
if systemd-analyze security --offline=yes --threshold=20 "$tmp/unit/switchboard.service" >"$tmp/sa.out" 2>&1; then
  ok "systemd-analyze security: $(grep -o 'exposure level.*' "$tmp/sa.out" | tail -1) (threshold 2.0)"
else
  grep -E '✗|exposure' "$tmp/sa.out" | sed 's/^/        /'
  bad "systemd-analyze security above 2.0"
fi
for line in DynamicUser=yes StateDirectory=switchboard NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
  PrivateTmp=yes PrivateDevices=yes CapabilityBoundingSet= MemoryDenyWriteExecute=yes \
  SystemCallFilter=@system-service 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' Restart=on-failure \
  KillSignal=SIGTERM EnvironmentFile=-/etc/switchboard/env; do
  grep -qE "^${line}( |\$)" $unit && ok "$line" || bad "unit lacks $line"
done
# The example environment file: every variable it sets must be one that
# serve takes, which `serve --check` reports by name.
envf=deploy/switchboard.env
if [ -x "$bin" ]; then
  mapfile -t vars < <(grep -E '^[A-Z_]+=' $envf)
  # Files the example points at (the cluster's secret) are made here, as
  # docs/deploy.md makes them: mode 600, owned by the user the unit runs
  # as; serve --check then runs as that user (uid 65533 here), not root.
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/env-cluster.secret"
  chmod 0600 "$tmp/env-cluster.secret"
  vars=("${vars[@]//\/etc\/switchboard\/cluster.secret/$tmp/env-cluster.secret}")
  as=() exe=$bin
  if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    chmod 0755 "$tmp"
    exe=$tmp/sb-check
    cp "$bin" "$exe" && chmod 0755 "$exe"
    mkdir -m 0700 "$tmp/check-data"
    chown 65533:65533 "$tmp/env-cluster.secret" "$tmp/check-data"
    as=(setpriv --reuid=65533 --regid=65533 --clear-groups)
  fi
  if env -i "${vars[@]}" "${as[@]}" "$exe" serve --check --data="$tmp/check-data" >"$tmp/check.out" 2>&1; then
    missing=()
    for v in "${vars[@]}"; do grep -q "from ${v%%=*}\$" "$tmp/check.out" || missing+=("${v%%=*}"); done
    if [ ${#missing[@]} -eq 0 ]; then ok "$envf: serve --check takes all ${#vars[@]} variables"; else
      sed 's/^/        /' "$tmp/check.out"
      bad "$envf: serve ignores ${missing[*]}"
    fi
  else
    sed 's/^/        /' "$tmp/check.out"
    bad "$envf: serve --check refuses it"
  fi
fi
# With DynamicUser alone the node would run as a transient uid that cannot
# read a secret file of root's with mode 600: the unit names the system
# user that owns them (docs/deploy.md, "systemd").
grep -qE '^User=switchboard$' $unit && grep -qE '^Group=switchboard$' $unit && ok "runs as the user switchboard when it exists" || bad "unit lacks User=switchboard and Group=switchboard"
grep -qE '^LimitNOFILE=[0-9]+' $unit && ok "LimitNOFILE set" || bad "no LimitNOFILE"
grep -qE '^TimeoutStopSec=' $unit && ok "TimeoutStopSec set" || bad "no TimeoutStopSec"
grep -qE '^ExecStart=.* --data=\$\{STATE_DIRECTORY\}' $unit && ok "--data is the StateDirectory" || bad "--data is not \${STATE_DIRECTORY}"

echo
if [ $failures -gt 0 ]; then
  echo "packaging: $failures problem(s)"
  exit 1
fi
echo "packaging: all checks passed"
