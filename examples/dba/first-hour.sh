#!/usr/bin/env bash
# The DBA's first hour, as one script: npm start -> watch a legacy table -> write as the legacy app ->
# audit --tenant, audit --limit, tail -> a second npm start, stopped -> the first one still serves.
#
#   bash examples/dba/first-hour.sh            # in this checkout (after npm install)
#   FRESH=1 bash examples/dba/first-hour.sh    # in a fresh clone under a new 0700 temp folder (git clone + npm ci first)
#   PORT=9000 SECOND_PORT=9001 bash examples/dba/first-hour.sh   # the two relays' ports (default: two free ports)
#
# It uses the embedded Postgres of npm start (no DATABASE_URL) in a data folder of its own; every command it runs is
# printed with a `$` first, followed by what it printed. It stops what it started, by pid, and removes what it made:
# the data folder, the cluster (wherever Postgres had to put it), the logs and the fresh clone. A RELAY_DATA_DIR you
# give is yours: it is used and kept.
set -euo pipefail

cd "$(dirname "$0")/../.."
work="$(mktemp -d)"   # mode 0700: as root, the postgres user cannot read it (pgrelay copes: see "Where data lives")
# A data folder of its own, so that a run starts from nothing (set RELAY_DATA_DIR to use yours, e.g. ./.pgrelay).
if [ -n "${RELAY_DATA_DIR:-}" ]; then keep_data=1; else keep_data=''; export RELAY_DATA_DIR="$work/pgrelay-data"; fi
# As root in a folder postgres cannot read, pgrelay runs Postgres from a copy of its binaries, kept per version under the
# OS temp folder for every later start: one this run makes (a fresh clone) goes with it, one that was there stays.
copies() { ls -d "${TMPDIR:-/tmp}"/pgrelay-postgres-* 2>/dev/null || true; }
copies_before="$(copies)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "$keep_data" ]; then
    # the cluster: where state.json says (under the OS temp folder when postgres cannot reach the data folder)
    cluster="$(node -e "try{console.log(JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')).dataDir||'')}catch{}" "$RELAY_DATA_DIR/state.json" 2>/dev/null || true)"
    if [ -n "$cluster" ] && [ -f "$cluster/postmaster.pid" ]; then
      # a relay that died without stopping it: a fast shutdown, by the postmaster's pid
      pm="$(head -1 "$cluster/postmaster.pid")"; kill -INT "$pm" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pm" 2>/dev/null || break; sleep 0.1; done
    fi
    case "$cluster" in "$RELAY_DATA_DIR"/*|'') ;; *) rm -rf "$(dirname "$cluster")" ;; esac
    rm -rf "$RELAY_DATA_DIR"
  fi
  if [ "${FRESH:-}" = 1 ]; then for copy in $(copies); do grep -qxF "$copy" <<< "$copies_before" || rm -rf "$copy"; done; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${FRESH:-}" = 1 ]; then
  echo "\$ git clone $PWD $work/pgrelay && cd $work/pgrelay && npm ci"
  git clone -q "$PWD" "$work/pgrelay" && cd "$work/pgrelay" && npm ci --no-audit --no-fund >/dev/null
fi

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
port="${PORT:-$(free_port)}"
second_port="${SECOND_PORT:-$(free_port)}"
while [ "$second_port" = "$port" ]; do second_port="$(free_port)"; done
unset PORT

run() { echo "\$ $*"; "$@"; echo; }
# One SQL statement as the legacy point-of-sale app would send it (its own application_name, no pgrelay anywhere).
sql() { echo "\$ psql -c \"$1\"   # as application_name=caja-1"
  node -e "const pg=require('pg');const c=new pg.Client({connectionString:require('fs').readFileSync(process.env.RELAY_DATA_DIR+'/database-url','utf8').trim(),application_name:'caja-1'});
c.connect().then(()=>c.query(process.argv[1])).then(()=>c.end()).catch(e=>{console.error(e.message);process.exit(1)})" "$1"; echo; }
# Waits for a line in a log, or for its process to end (then shows the log and stops the script).
wait_for() { for _ in $(seq 1 600); do grep -q "$2" "$1" && return 0; kill -0 "$3" 2>/dev/null || break; sleep 0.2; done
  echo "'$2' did not show in $1:" >&2; cat "$1" >&2; exit 1; }

echo "\$ PORT=$port npm start   # in another terminal"
PORT=$port node dist/relay/cli.js start > "$work/first-start.log" 2>&1 & first=$!; pids+=($first)   # what npm start runs (its own pid, for Ctrl-C)
wait_for "$work/first-start.log" 'pgrelay listening on' "$first"
grep -o '"msg":"[^"]*"' "$work/first-start.log" | sed 's/"msg":/  log: /'; echo

# a legacy table with no primary key, only a unique index on NOT NULL columns: pgrelay keys its rows by that index
sql "create table ventas (folio int not null, caja int not null, idnegocio int not null, total numeric(10,2), pagado boolean not null default false); create unique index ventas_folio_caja on ventas (folio, caja)"
run npm run --silent pgrelay -- watch ventas --tenant-column idnegocio
run npm run --silent pgrelay -- watched

sql "insert into ventas (folio, caja, idnegocio, total) values (1, 1, 1, 120.50), (2, 1, 1, 75.00), (3, 2, 2, 310.25)"
sql "update ventas set pagado = true, total = 121.00 where folio = 1"
sql "update ventas set idnegocio = 2 where folio = 2"
sql "delete from ventas where folio = 3"

run npm run --silent pgrelay -- audit --tenant 1
run npm run --silent pgrelay -- audit --limit 3
echo '$ npm run pgrelay -- tail --since 0   # Ctrl-C after a moment'
node dist/relay/cli.js tail --since 0 > "$work/tail.log" 2>&1 & tail_pid=$!; pids+=($tail_pid)
wait_for "$work/tail.log" 'following from' "$tail_pid"
sql "insert into ventas (folio, caja, idnegocio, total) values (4, 1, 1, 9.99)"
wait_for "$work/tail.log" '#5 ' "$tail_pid"
kill -INT "$tail_pid"; wait "$tail_pid" || true
cat "$work/tail.log"; echo

echo "\$ PORT=$second_port npm start   # a second relay on the same data (and another port), then Ctrl-C"
PORT=$second_port node dist/relay/cli.js start > "$work/second-start.log" 2>&1 & second=$!; pids+=($second)
wait_for "$work/second-start.log" 'pgrelay listening on' "$second"
kill -INT "$second"; wait "$second" || true
grep -o '"msg":"[^"]*"' "$work/second-start.log" | grep -E 'attached|left running|stopped' | sed 's/"msg":/  log: /'; echo

echo "\$ curl -s localhost:$port/readyz   # the first relay still serves"
node -e "fetch('http://127.0.0.1:$port/readyz').then(r=>r.text()).then(t=>console.log(t))"; echo
sql "insert into ventas (folio, caja, idnegocio, total) values (5, 1, 1, 1.00)"
run npm run --silent pgrelay -- audit --limit 1

kill -INT "$first"; wait "$first" || true
grep -o '"msg":"embedded Postgres stopped"' "$work/first-start.log" | sed 's/"msg":/  log: /'
