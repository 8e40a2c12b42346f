#!/usr/bin/env bash
# The DBA's first hour, as one script: npm start -> watch a legacy table -> write as the legacy app ->
# audit --tenant, audit --limit, tail -> a second npm start, stopped -> the first one still serves.
#
#   bash examples/dba/first-hour.sh            # in this checkout (after npm install)
#   FRESH=1 bash examples/dba/first-hour.sh    # in a fresh clone under a new 0700 temp folder (git clone + npm ci first)
#
# It uses the embedded Postgres of npm start (no DATABASE_URL) and ports 8080 and 18080; every command it runs is
# printed with a `$` first, followed by what it printed. It stops what it started, by pid.
set -euo pipefail

cd "$(dirname "$0")/../.."
if [ "${FRESH:-}" = 1 ]; then
  dir="$(mktemp -d)"   # mode 0700: as root, the postgres user cannot read this checkout (pgrelay copes)
  echo "\$ git clone $PWD $dir/pgrelay && cd $dir/pgrelay && npm ci"
  git clone -q "$PWD" "$dir/pgrelay" && cd "$dir/pgrelay" && npm ci --no-audit --no-fund >/dev/null
fi

# A data folder of its own, so that a run starts from nothing (leave RELAY_DATA_DIR unset to use ./.pgrelay).
export RELAY_DATA_DIR="${RELAY_DATA_DIR:-$(mktemp -d)/pgrelay-data}"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

run() { echo "\$ $*"; "$@"; echo; }
# One SQL statement as the legacy point-of-sale app would send it (its own application_name, no pgrelay anywhere).
sql() { echo "\$ psql -c \"$1\"   # as application_name=caja-1"
  node -e "const pg=require('pg');const c=new pg.Client({connectionString:require('fs').readFileSync(process.env.RELAY_DATA_DIR+'/database-url','utf8').trim(),application_name:'caja-1'});
c.connect().then(()=>c.query(process.argv[1])).then(()=>c.end()).catch(e=>{console.error(e.message);process.exit(1)})" "$1"; echo; }
wait_for() { for _ in $(seq 1 300); do grep -q "$2" "$1" && return 0; sleep 0.2; done; echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1; }

echo '$ PORT=8080 npm start   # in another terminal'
PORT=8080 node dist/relay/cli.js start > first-start.log 2>&1 & pids+=($!)   # what npm start runs (its own pid, for Ctrl-C)
wait_for first-start.log 'pgrelay listening on'
grep -o '"msg":"[^"]*"' first-start.log | sed 's/"msg":/  log: /'; echo

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
node dist/relay/cli.js tail --since 0 > tail.log 2>&1 & tail_pid=$!; pids+=($tail_pid)
wait_for tail.log 'following from'
sql "insert into ventas (folio, caja, idnegocio, total) values (4, 1, 1, 9.99)"
wait_for tail.log '#5 '
kill -INT "$tail_pid"; wait "$tail_pid" || true
cat tail.log; echo

echo '$ PORT=18080 npm start   # a second relay on the same data, then Ctrl-C'
PORT=18080 node dist/relay/cli.js start > second-start.log 2>&1 & second=$!; pids+=($second)
wait_for second-start.log 'pgrelay listening on'
kill -INT "$second"; wait "$second" || true
grep -o '"msg":"[^"]*"' second-start.log | grep -E 'attached|left running|stopped' | sed 's/"msg":/  log: /'; echo

echo '$ curl -s localhost:8080/readyz   # the first relay still serves'
node -e "fetch('http://127.0.0.1:8080/readyz').then(r=>r.text()).then(t=>console.log(t))"; echo
sql "insert into ventas (folio, caja, idnegocio, total) values (5, 1, 1, 1.00)"
run npm run --silent pgrelay -- audit --limit 1

kill -INT "${pids[0]}"; wait "${pids[0]}" || true
grep -o '"msg":"embedded Postgres stopped"' first-start.log | sed 's/"msg":/  log: /'
rm -f first-start.log second-start.log tail.log
