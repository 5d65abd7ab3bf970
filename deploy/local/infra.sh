#!/usr/bin/env bash
# Real Kafka and a real MongoDB-protocol server on this machine, without Docker.
#   infra.sh up      install what is missing (cached), start both, wait until ready (idempotent)
#   infra.sh down    stop both
#   infra.sh status  say what runs
#   infra.sh stop-db | start-db            stop or start only the database (mongoserial and FerretDB)
#   infra.sh stop-kafka | start-kafka | restart-kafka   the same for the broker
#   infra.sh up-oidc | stop-oidc           build (cached) and start, or stop, only the OpenID provider
# Kafka: Apache Kafka 4.x jars resolved with mvn, run with the installed Java in KRaft mode.
# MongoDB protocol: FerretDB v1.24.2 built with Go, SQLite backend, with small changes that
# let SQLite use its indexes (patch_ferretdb), behind mongoserial (deploy/local/mongoserial:
# lets one write command run at a time, because FerretDB v1 loses concurrent single-document
# updates; MongoDB does not).
# OpenID provider: deploy/local/oidc, the example provider of github.com/zitadel/oidc/v3 with
# Lindungi's users and missions (shared/data, password or client secret dev-<id>), built with Go;
# issuer http://127.0.0.1:$LINDUNGI_OIDC_PORT/ (9096). Development and tests only.
# Everything is cached under .cache/ (git-ignored): a second `up` takes seconds.
# LINDUNGI_STATE moves what a running copy writes (data, pids, logs) away from the built parts
# (jars and binaries stay under LINDUNGI_CACHE): a second copy then starts without building.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${LINDUNGI_CACHE:-$ROOT/.cache}
HERE=$ROOT/deploy/local
STATE=${LINDUNGI_STATE:-$CACHE}
KAFKA_LIBS=$CACHE/kafka/libs
KAFKA_DIR=$STATE/kafka
FERRET_DIR=$STATE/ferretdb
FERRET_VERSION=v1.24.2
# What .cache/bin/ferretdb must be built from: the version plus the level of patch_ferretdb.
# Raise the level whenever patch_ferretdb changes: the next `up` rebuilds and restarts FerretDB.
FERRET_BUILD=$FERRET_VERSION+lindungi.12
# Ports can be moved (e.g. to run a second copy beside a running one).
KAFKA_PORT=${LINDUNGI_KAFKA_PORT:-9092}
CONTROLLER_PORT=${LINDUNGI_KAFKA_CONTROLLER_PORT:-19093}
MONGO_PORT=${LINDUNGI_MONGO_PORT:-27017}     # what clients use: mongoserial
FERRET_PORT=${LINDUNGI_FERRET_PORT:-27018}   # FerretDB itself, behind mongoserial
OIDC_PORT=${LINDUNGI_OIDC_PORT:-9096}        # the OpenID provider (issuer http://127.0.0.1:PORT/)
OIDC_DIR=$STATE/oidc
# Seconds the broker may take to listen (a busy machine can take minutes to start a JVM).
KAFKA_WAIT=${LINDUNGI_KAFKA_WAIT:-90}

say() { printf 'infra: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; $2"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_port() { # name port pidfile logfile seconds
  local i
  for ((i = 0; i < $5 * 5; i++)); do
    port_open "$2" && return 0
    alive "$3" || { tail -n 30 "$4" >&2 || true; die "$1 exited while starting (log: $4)"; }
    sleep 0.2
  done
  tail -n 30 "$4" >&2 || true
  die "$1 did not listen on 127.0.0.1:$2 within $5 s (log: $4)"
}

install_kafka() {
  [ -f "$KAFKA_LIBS/.complete" ] && return 0
  need java "install a Java 17+ runtime (Debian: openjdk-17-jre-headless)"
  need mvn "install Maven (Debian: maven) to resolve the Kafka jars"
  say "resolving Apache Kafka jars with mvn (once)..."
  rm -rf "$KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime >"$CACHE/kafka/mvn.log" 2>&1 ||
    { tail -n 20 "$CACHE/kafka/mvn.log" >&2; die "mvn could not resolve the Kafka jars"; }
  touch "$KAFKA_LIBS/.complete"
}

# patch_src file count old new: replace the literal text old by new in file; fail loudly unless
# it occurs exactly count times (so a changed FerretDB source stops the build, never miscompiles).
patch_src() {
  OLD=$3 NEW=$4 WANT=$2 perl -0777 -i -pe '
    my $n = s/\Q$ENV{OLD}\E/$ENV{NEW}/g || 0;
    die "found $n times, expected $ENV{WANT}\n" unless $n == $ENV{WANT};' "$1" ||
    die "could not patch FerretDB source $1: the text to replace is not as expected"
}

# Changes to FerretDB v1.24.2's SQLite backend (internal/backends/sqlite):
# 1. Its _id index is declared on `_ferretdb_sjson->"_id"` (metadata/registry.go), but finds,
#    updates and deletes by _id filter on IDColumn, `_ferretdb_sjson->'$._id'`. SQLite uses an
#    index on an expression only for the same expression, so every _id lookup scanned the table.
#    IDColumn becomes `_ferretdb_sjson->'_id'`: the same JSON value (SQLite reads a label X as
#    the path '$.X'), written as the index is, so SQLite plans SEARCH ... USING INDEX. Indexes are
#    unchanged: data files written by the unpatched build keep working and get the speed-up too.
# 2. _id was pushed down to SQLite only when it was the filter's only key: `{_id, status}` read
#    the whole table. Now it is pushed down whenever the filter has exactly one top-level _id key
#    (and, as before, only when its value is a string or an ObjectID). Safe: top-level keys are
#    ANDed, and the handler filters every document the backend returns by the whole filter again
#    (backends.Collection.Query: "Filter may be ignored, or safely applied partially or entirely").
# 3. Every other filter read the whole collection and decoded each document in Go. Plain string
#    and boolean equality and `$in` on top-level fields (array fields by their elements), and date
#    bounds (`$lt`, `$lte`, `$gt`, `$gte`), are now handed to SQLite too, written as FerretDB writes
#    its index expressions, so an index declared on the field answers the equalities
#    (deploy/local/ferretdb/lindungi_pushdown.go says why the result is never too small); so is
#    `_id: {$in: [...]}` of strings and ObjectIDs, answered by the _id index (a batch of marks by
#    ids read every document of the collection before).
# 5. Date bounds are compared as numbers, on `_ferretdb_sjson->>'field'`, which the declared
#    index (on the field's JSON text, `->`) cannot answer: a timer loop's `{due_at: {$lte: now}}`
#    read every pending timer. The registry now keeps, beside every index whose first key is a
#    plain top-level field, a SQLite index on that expression, made with the index (and made when
#    missing whenever indexes are created, so older data files get it at the services' next
#    start) and dropped with the last index starting with the field
#    (deploy/local/ferretdb/lindungi_indexes.go).
# 6. `{f: {$exists: true}}` read the whole collection: casework's sweep for pending claims read
#    and decoded every case every 5 s (33 s a pass at a national year, the store's CPU taken from
#    the incidents). It is handed to SQLite as `_ferretdb_sjson->'f' > ''`, which the declared
#    index on the field answers (lindungi_pushdown.go).
patch_ferretdb() { # src
  local sq=$1/internal/backends/sqlite
  # shellcheck disable=SC2016 # the $ in '$._id' is SQLite's, not the shell's
  patch_src "$sq/metadata/metadata.go" 1 'IDColumn = DefaultColumn + "->'\''$._id'\''"' \
    'IDColumn = DefaultColumn + "->'\''_id'\''"'
  patch_src "$sq/collection.go" 2 $'if params.Filter.Len() == 1 {\n\t\tv, _ := params.Filter.Get("_id")' \
    $'if lindungiOneID(params.Filter) {\n\t\tv, _ := params.Filter.Get("_id")'
  cat >>"$sq/collection.go" <<'EOF'

// lindungiOneID reports whether filter has exactly one top-level _id key (Lindungi's infra.sh:
// then _id can be pushed down whatever the other keys; the handler applies the whole filter).
func lindungiOneID(filter *types.Document) bool {
	n := 0
	for _, k := range filter.Keys() {
		if k == "_id" {
			n++
		}
	}
	return n == 1
}
EOF
  cp "$HERE/ferretdb/lindungi_pushdown.go" "$sq/lindungi_pushdown.go"
  cp "$HERE/ferretdb/lindungi_indexes.go" "$sq/metadata/lindungi_indexes.go"
  patch_src "$sq/metadata/registry.go" 1 $'\t\tcreated = append(created, index.Name)\n\t\tc.Settings.Indexes = append(c.Settings.Indexes, index)\n\t}\n' \
    $'\t\tcreated = append(created, index.Name)\n\t\tc.Settings.Indexes = append(c.Settings.Indexes, index)\n\t}\n\n\tif err := lindungiEnsureScalarIndexes(ctx, db, c); err != nil {\n\t\t_ = r.indexesDrop(ctx, dbName, collectionName, created)\n\t\treturn lazyerrors.Error(err)\n\t}\n'
  patch_src "$sq/metadata/registry.go" 1 $'\t\tc.Settings.Indexes = slices.Delete(c.Settings.Indexes, i, i+1)\n' \
    $'\t\tgone := c.Settings.Indexes[i]\n\t\tc.Settings.Indexes = slices.Delete(c.Settings.Indexes, i, i+1)\n\n\t\tif err := lindungiDropScalarIndex(ctx, db, c, gone); err != nil {\n\t\t\treturn lazyerrors.Error(err)\n\t\t}\n'
  patch_src "$sq/collection.go" 1 $'\n\tq += whereClause\n' \
    $'\n\twhereClause, args = lindungiWhere(params.Filter, whereClause, args)\n\tq += whereClause\n'
  patch_src "$sq/collection.go" 1 $'\n\torderByClause := prepareOrderByClause(params.Sort)\n' \
    $'\n\twhereClause, args = lindungiWhere(params.Filter, whereClause, args)\n\torderByClause := prepareOrderByClause(params.Sort)\n'
  # 4. An update that breaks a unique index failed as an internal error (the constraint's text),
  #    where MongoDB answers E11000 (pymongo's DuplicateKeyError) as it does for an insert. The
  #    backend now says so with the insert's code, which the update and findAndModify handlers
  #    already turn into E11000. Services then recognise a duplicate one way, by its code.
  patch_src "$sq/collection.go" 1 $'\t\t\tr, err := tx.ExecContext(ctx, q, string(b), arg)\n\t\t\tif err != nil {\n\t\t\t\treturn lazyerrors.Error(err)\n' \
    $'\t\t\tr, err := tx.ExecContext(ctx, q, string(b), arg)\n\t\t\tif err != nil {\n\t\t\t\tvar se *sqlite3.Error\n\t\t\t\tif errors.As(err, &se) && se.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE {\n\t\t\t\t\treturn backends.NewError(backends.ErrorCodeInsertDuplicateID, err)\n\t\t\t\t}\n\t\t\t\treturn lazyerrors.Error(err)\n'
  # 7. The update command stopped at its first duplicate key and answered it alone, at index 0,
  #    without the counts (pymongo's bulk_write failed on the missing `nModified`), even when
  #    unordered; a bulk write of guarded upserts could neither go on nor say which lost. Its
  #    statements now run one at a time (deploy/local/ferretdb/lindungi_update.go): a duplicate is
  #    that statement's write error at its own index, the others still run unless ordered, and the
  #    counts and upserted ids are answered beside the errors, as MongoDB answers.
  #    (build lindungi.9: `ordered`, which FerretDB 1.24 ignored, is read, true unless the command
  #    says false, as for insert and delete: an ordered command stops at its first write error.)
  cp "$HERE/ferretdb/lindungi_update.go" "$1/internal/handler/lindungi_update.go"
  patch_src "$1/internal/handler/common/update_params.go" 1 \
    'Ordered                  bool            `ferretdb:"ordered,ignored"`' \
    'Ordered                  bool            `ferretdb:"ordered,opt"`'
  patch_src "$1/internal/handler/common/update_params.go" 1 $'\tvar params UpdateParams\n' \
    $'\tparams := UpdateParams{Ordered: true}\n'
  patch_src "$1/internal/handler/msg_update.go" 1 \
    $'\tmatched, modified, upserted, err := h.updateDocument(connCtx, params)\n' \
    $'\tmatched, modified, upserted, writeErrors, err := lindungiUpdateEach(connCtx, h, params)\n'
  patch_src "$1/internal/handler/msg_update.go" 1 $'\tres.Set("nModified", modified)\n' \
    $'\tres.Set("nModified", modified)\n\n\tif writeErrors.Len() != 0 {\n\t\tres.Set("writeErrors", writeErrors)\n\t}\n'
  # 8. A sorted find or findAndModify decoded every document its filter let through, in Go, and
  #    sorted them before answering the first (FerretDB 1.24 hands SQLite no sort but $natural):
  #    the desk's queue page and claim-next grew with the queue's depth (0.12-0.35 s at a national
  #    year's thousand waiting cases, against 5-7 ms on an empty store). The handlers now offer
  #    their sort to the backend, which orders the rows in SQL as MongoDB does (plain top-level
  #    keys: by the rank of each value's type, then the value; a value of a type SQLite cannot
  #    order as MongoDB does comes first, and the handler sorts from there itself:
  #    deploy/local/ferretdb/lindungi_sort.go and lindungi_sort_handler.go say why that is exact),
  #    and the handler streams them through its filter to its limit. Where the filter's string
  #    equalities are an index's first keys and the sort its next ones, SQLite walks an order index
  #    made beside it at the first such read (metadata/lindungi_indexes.go), so a page costs its
  #    length, not the queue's depth. (build lindungi.10)
  cp "$HERE/ferretdb/lindungi_sort.go" "$sq/lindungi_sort.go"
  cp "$HERE/ferretdb/lindungi_sort_handler.go" "$1/internal/handler/lindungi_sort.go"
  patch_src "$1/internal/backends/collection.go" 1 $'\tSort   *types.Document\n\tLimit  int64\n\n\tOnlyRecordIDs bool\n' \
    $'\tSort   *types.Document\n\tLimit  int64\n\n\tLindungiSort *types.Document\n\n\tOnlyRecordIDs bool\n'
  patch_src "$1/internal/backends/collection.go" 1 $'type QueryResult struct {\n\tIter types.DocumentsIterator\n}\n' \
    $'type QueryResult struct {\n\tIter types.DocumentsIterator\n\n\tLindungiSorted bool\n}\n'
  patch_src "$sq/collection.go" 1 $'\tq += whereClause\n\tq += prepareOrderByClause(params.Sort)\n' \
    $'\tvar lindungiSorted bool\n\tlindungiOrderBy := ""\n\tif params.Sort.Len() == 0 && params.LindungiSort.Len() != 0 {\n\t\to, sortErr := lindungiOrder(ctx, db, meta, params.Filter, whereClause, args, params.LindungiSort)\n\t\tif sortErr != nil {\n\t\t\treturn nil, lazyerrors.Error(sortErr)\n\t\t}\n\t\tif o != nil {\n\t\t\tq += o.indexedBy\n\t\t\twhereClause, args, lindungiOrderBy, lindungiSorted = o.where, o.args, o.orderBy, true\n\t\t}\n\t}\n\tq += whereClause\n\tq += prepareOrderByClause(params.Sort)\n\tq += lindungiOrderBy\n'
  patch_src "$sq/collection.go" 1 $'\t\tIter: newQueryIterator(ctx, rows, params.OnlyRecordIDs),\n' \
    $'\t\tIter:           newQueryIterator(ctx, rows, params.OnlyRecordIDs),\n\t\tLindungiSorted: lindungiSorted,\n'
  patch_src "$1/internal/handler/msg_find.go" 1 $'\n\th.L.DebugContext(ctx, fmt.Sprintf("Converted %+v for %+v to %+v.", params, cInfo, qp))\n' \
    $'\n\tif !h.DisablePushdown && qp.Sort == nil {\n\t\tqp.LindungiSort = lindungiSortOffer(params.Sort)\n\t}\n\n\th.L.DebugContext(ctx, fmt.Sprintf("Converted %+v for %+v to %+v.", params, cInfo, qp))\n'
  patch_src "$1/internal/handler/msg_find.go" 1 'h.makeFindIter(queryRes.Iter, closer, params)' \
    'h.makeFindIter(lindungiOrdered(queryRes, params.Sort), closer, lindungiFindLeft(params, queryRes))'
  patch_src "$1/internal/handler/msg_getmore.go" 2 'h.makeFindIter(queryRes.Iter, closer, data.findParams)' \
    'h.makeFindIter(lindungiOrdered(queryRes, data.findParams.Sort), closer, lindungiFindLeft(data.findParams, queryRes))'
  patch_src "$1/internal/handler/msg_findandmodify.go" 1 $'\tif !h.DisablePushdown {\n\t\tqp.Filter = params.Query\n\t}\n' \
    $'\tif !h.DisablePushdown {\n\t\tqp.Filter = params.Query\n\t\tqp.LindungiSort = lindungiSortOffer(params.Sort)\n\t}\n'
  patch_src "$1/internal/handler/msg_findandmodify.go" 1 'common.FilterIterator(queryRes.Iter, closer, params.Query)' \
    'common.FilterIterator(lindungiOrdered(queryRes, params.Sort), closer, params.Query)'
  patch_src "$1/internal/handler/msg_findandmodify.go" 1 'common.SortIterator(iter, closer, params.Sort)' \
    'common.SortIterator(iter, closer, lindungiSortLeft(params.Sort, queryRes))'
  # explain says so (sortPushdown, and SQLite's plan of the ORDER BY) for a find's sort
  patch_src "$1/internal/backends/collection.go" 1 $'\tSort   *types.Document\n\tLimit  int64\n}\n\n// ExplainResult' \
    $'\tSort   *types.Document\n\tLimit  int64\n\n\tLindungiSort *types.Document\n}\n\n// ExplainResult'
  patch_src "$1/internal/handler/msg_explain.go" 1 $'\tres, err := coll.Explain(connCtx, qp)\n' \
    $'\tif !h.DisablePushdown && !params.Aggregate && qp.Sort == nil {\n\t\tqp.LindungiSort = lindungiSortOffer(params.Sort)\n\t}\n\n\tres, err := coll.Explain(connCtx, qp)\n'
  patch_src "$sq/collection.go" 1 $'\tsortPushdown := orderByClause != ""\n' \
    $'\tsortPushdown := orderByClause != ""\n\n\tif params.Sort.Len() == 0 && params.LindungiSort.Len() != 0 {\n\t\to, sortErr := lindungiOrder(ctx, db, meta, params.Filter, whereClause, args, params.LindungiSort)\n\t\tif sortErr != nil {\n\t\t\treturn nil, lazyerrors.Error(sortErr)\n\t\t}\n\t\tif o != nil {\n\t\t\tselectClause += o.indexedBy\n\t\t\twhereClause, args, orderByClause, sortPushdown = o.where, o.args, o.orderBy, true\n\t\t}\n\t}\n'
  # 9. Every document read from SQLite went through sjson.Unmarshal, which decodes the stored text
  #    several times over (the document into raw values, its schema by reflection, each value
  #    again with a decoder of its own, a nested document once per level): a third of the
  #    store's CPU under the casework benchmark. Unmarshal now first reads the text once, guided
  #    by the schema (deploy/local/ferretdb/lindungi_sjson.go), and falls back to its own way
  #    for any text that is not exactly what sjson.Marshal writes: the same document either way
  #    (lindungi_sjson_test.go checks both against each other). (build lindungi.11; lindungi.12
  #    leaves to FerretDB's decoder four kinds of text sjson.Marshal never writes, where a review
  #    found the two answering differently: a byte after the document, an object or array whose
  #    schema lacks its parts, a field named `$s`.)
  cp "$HERE/ferretdb/lindungi_sjson.go" "$1/internal/handler/sjson/lindungi_sjson.go"
  cp "$HERE/ferretdb/lindungi_sjson_test.go" "$1/internal/handler/sjson/lindungi_sjson_test.go"
  patch_src "$1/internal/handler/sjson/sjson.go" 1 \
    $'func Unmarshal(data []byte) (*types.Document, error) {\n\tvar v map[string]json.RawMessage\n' \
    $'func Unmarshal(data []byte) (*types.Document, error) {\n\tif d, ok := lindungiUnmarshal(data); ok {\n\t\treturn d, nil\n\t}\n\n\treturn unmarshalSlow(data)\n}\n\n// unmarshalSlow is FerretDB\'s own Unmarshal (Lindungi\'s infra.sh, change 9).\nfunc unmarshalSlow(data []byte) (*types.Document, error) {\n\tvar v map[string]json.RawMessage\n'
  # 10. Every iterator and cursor was registered with resource.Track, a leak detector of
  #    FerretDB's development: a pprof profile entry with its stack (runtime.Callers) and a
  #    finalizer that panics, taking the whole store down, if one is ever collected unclosed.
  #    6% of the store's CPU under load, for a check no user of this build reads. Track and
  #    Untrack now return at once. (build lindungi.11)
  patch_src "$1/internal/util/resource/resource.go" 1 \
    $'func Track(obj any, token *Token) {\n\tcheckArgs(obj, token)\n' \
    $'func Track(obj any, token *Token) {\n\tif lindungiUntracked {\n\t\treturn\n\t}\n\n\tcheckArgs(obj, token)\n'
  patch_src "$1/internal/util/resource/resource.go" 1 \
    $'func Untrack(obj any, token *Token) {\n\tcheckArgs(obj, token)\n' \
    $'func Untrack(obj any, token *Token) {\n\tif lindungiUntracked {\n\t\treturn\n\t}\n\n\tcheckArgs(obj, token)\n'
  printf '\n// lindungiUntracked turns Track and Untrack off (Lindungi'"'"'s infra.sh, change 10).\nconst lindungiUntracked = true\n' \
    >>"$1/internal/util/resource/resource.go"
}

install_ferretdb() {
  if [ -x "$CACHE/bin/ferretdb" ] && [ "$(cat "$CACHE/bin/ferretdb.build" 2>/dev/null)" = "$FERRET_BUILD" ]; then
    return 0
  fi
  need go "install Go 1.22+ to build FerretDB"
  need perl "install perl (Debian: perl-base) to patch FerretDB's source"
  say "building FerretDB $FERRET_BUILD with go (once, about a minute)..."
  local src dir
  dir=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRET_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [ -n "$dir" ] || die "go could not download FerretDB $FERRET_VERSION"
  # A plain `go install` of v1.24.2 panics at start: its module lacks build/version/version.txt
  # (made by FerretDB's own release tooling). Build a copy with that one file written.
  src=$CACHE/src/ferretdb
  rm -rf "$src"
  mkdir -p "$CACHE/src" "$CACHE/bin"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  echo "$FERRET_VERSION" >"$src/build/version/version.txt"
  patch_ferretdb "$src"
  # Built beside, then moved: a running FerretDB keeps its (old) file until start_ferretdb
  # restarts it.
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$CACHE/bin/ferretdb.new" ./cmd/ferretdb) ||
    die "go build of FerretDB failed"
  mv -f "$CACHE/bin/ferretdb.new" "$CACHE/bin/ferretdb"
  echo "$FERRET_BUILD" >"$CACHE/bin/ferretdb.build"
}

install_mongoserial() {
  local bin=$CACHE/bin/mongoserial src=$HERE/mongoserial
  if [ -x "$bin" ] && [ "$bin" -nt "$src/main.go" ]; then return 0; fi
  need go "install Go 1.22+ to build mongoserial"
  mkdir -p "$CACHE/bin"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$bin" .) || die "go build of mongoserial failed"
}

install_oidc() {
  local bin=$CACHE/bin/lindungi-oidc src=$HERE/oidc
  if [ -x "$bin" ] && [ "$bin" -nt "$src/main.go" ] && [ "$bin" -nt "$src/go.sum" ]; then return 0; fi
  need go "install Go 1.26+ to build the OpenID provider (github.com/zitadel/oidc/v3)"
  say "building the OpenID provider with go (once, about a minute)..."
  mkdir -p "$CACHE/bin"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$bin.new" .) || die "go build of the OpenID provider failed"
  mv -f "$bin.new" "$bin"
}

start_oidc() {
  local pid=$OIDC_DIR/oidc.pid log=$OIDC_DIR/oidc.log bin=$CACHE/bin/lindungi-oidc
  if alive "$pid" && [ "$bin" -nt "$pid" ]; then
    say "the OpenID provider (pid $(cat "$pid")) runs an older build: restarting it"
    stop_one oidc "$pid"
  fi
  if alive "$pid"; then say "OpenID provider already running (pid $(cat "$pid"))"; return 0; fi
  if port_open "$OIDC_PORT"; then say "something already listens on $OIDC_PORT: using it as the OpenID provider"; return 0; fi
  mkdir -p "$OIDC_DIR"
  say "starting the OpenID provider on http://127.0.0.1:$OIDC_PORT/"
  nohup "$bin" -port "$OIDC_PORT" -credentials "$ROOT/shared/data" >"$log" 2>&1 &
  echo $! >"$pid"
  wait_port oidc "$OIDC_PORT" "$pid" "$log" 20
}

start_kafka() {
  local pid=$KAFKA_DIR/kafka.pid log=$KAFKA_DIR/server.log
  if alive "$pid"; then say "kafka already running (pid $(cat "$pid"))"; return 0; fi
  if port_open $KAFKA_PORT; then say "something already listens on $KAFKA_PORT: using it as Kafka"; return 0; fi
  mkdir -p "$KAFKA_DIR/data"
  local conf=$KAFKA_DIR/server.properties
  {
    cat "$HERE/kafka/server.properties"
    echo "controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT"
    echo "listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
    echo "advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT"
    echo "log.dirs=$KAFKA_DIR/data"
  } >"$conf"
  local cp="$KAFKA_LIBS/*"
  local jvm=(-Xms256m -Xmx768m -XX:+UseG1GC -Dkafka.logs.dir="$KAFKA_DIR"
    -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties")
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    say "formatting Kafka storage (once)"
    java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format \
      -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)" \
      -c "$conf" >"$KAFKA_DIR/format.log" 2>&1 || { cat "$KAFKA_DIR/format.log" >&2; die "kafka storage format failed"; }
  fi
  say "starting kafka on 127.0.0.1:$KAFKA_PORT"
  nohup java "${jvm[@]}" -cp "$cp" kafka.Kafka "$conf" >"$KAFKA_DIR/stdout.log" 2>&1 &
  echo $! >"$pid"
  wait_port kafka $KAFKA_PORT "$pid" "$KAFKA_DIR/stdout.log" "$KAFKA_WAIT"
}

start_ferretdb() {
  local pid=$FERRET_DIR/ferretdb.pid log=$FERRET_DIR/ferretdb.log
  local spid=$FERRET_DIR/mongoserial.pid slog=$FERRET_DIR/mongoserial.log
  if alive "$pid" && [ "$(cat "$FERRET_DIR/ferretdb.build" 2>/dev/null)" != "$FERRET_BUILD" ]; then
    say "ferretdb (pid $(cat "$pid")) runs an older build than $FERRET_BUILD: restarting it"
    stop_one ferretdb "$pid"
  fi
  if alive "$pid" && alive "$spid"; then say "ferretdb already running (pid $(cat "$pid"))"; return 0; fi
  if ! alive "$spid" && port_open $MONGO_PORT; then
    say "something already listens on $MONGO_PORT: using it as MongoDB"; return 0
  fi
  mkdir -p "$FERRET_DIR/data" "$FERRET_DIR/state"
  if ! alive "$pid"; then
    say "starting ferretdb on 127.0.0.1:$FERRET_PORT"
    # GOGC=400: Go's collector runs a quarter as often (its default, 100, took an eighth of the
    # store's CPU under the casework benchmark); the heap may grow to five times what is live,
    # tens of megabytes more here.
    GOGC=${LINDUNGI_FERRET_GOGC:-400} nohup "$CACHE/bin/ferretdb" --handler=sqlite --sqlite-url="file:$FERRET_DIR/data/" \
      --listen-addr="127.0.0.1:$FERRET_PORT" --state-dir="$FERRET_DIR/state" --debug-addr=- \
      --telemetry=disable --log-level=warn >"$log" 2>&1 &
    echo $! >"$pid"
    echo "$FERRET_BUILD" >"$FERRET_DIR/ferretdb.build"
    wait_port ferretdb $FERRET_PORT "$pid" "$log" 30
  fi
  if ! alive "$spid"; then
    say "starting mongoserial on 127.0.0.1:$MONGO_PORT (in front of ferretdb)"
    nohup "$CACHE/bin/mongoserial" -listen "127.0.0.1:$MONGO_PORT" -upstream "127.0.0.1:$FERRET_PORT" >"$slog" 2>&1 &
    echo $! >"$spid"
    wait_port mongoserial $MONGO_PORT "$spid" "$slog" 10
  fi
}

stop_one() { # name pidfile
  if alive "$2"; then
    local p
    p=$(cat "$2")
    say "stopping $1 (pid $p)"
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$p" 2>/dev/null || true
  fi
  rm -f "$2"
}

case "${1:-up}" in
  up)
    mkdir -p "$CACHE"
    install_kafka
    install_ferretdb
    install_mongoserial
    install_oidc
    start_ferretdb
    start_kafka
    start_oidc
    say "ready: kafka 127.0.0.1:$KAFKA_PORT, mongodb (ferretdb) 127.0.0.1:$MONGO_PORT, OpenID provider http://127.0.0.1:$OIDC_PORT/"
    ;;
  up-oidc)
    mkdir -p "$CACHE"
    install_oidc
    start_oidc
    ;;
  stop-oidc)
    stop_one oidc "$OIDC_DIR/oidc.pid"
    ;;
  down)
    stop_one oidc "$OIDC_DIR/oidc.pid"
    stop_one kafka "$KAFKA_DIR/kafka.pid"
    stop_one mongoserial "$FERRET_DIR/mongoserial.pid"
    stop_one ferretdb "$FERRET_DIR/ferretdb.pid"
    ;;
  status)
    alive "$KAFKA_DIR/kafka.pid" && say "kafka running" || say "kafka stopped"
    alive "$FERRET_DIR/ferretdb.pid" && say "ferretdb running" || say "ferretdb stopped"
    alive "$FERRET_DIR/mongoserial.pid" && say "mongoserial running" || say "mongoserial stopped"
    alive "$OIDC_DIR/oidc.pid" && say "OpenID provider running (http://127.0.0.1:$OIDC_PORT/)" || say "OpenID provider stopped"
    ;;
  stop-db)
    stop_one mongoserial "$FERRET_DIR/mongoserial.pid"
    stop_one ferretdb "$FERRET_DIR/ferretdb.pid"
    ;;
  start-db)
    start_ferretdb
    ;;
  stop-kafka)
    stop_one kafka "$KAFKA_DIR/kafka.pid"
    ;;
  start-kafka)
    start_kafka
    ;;
  restart-kafka)
    stop_one kafka "$KAFKA_DIR/kafka.pid"
    start_kafka
    ;;
  *) die "usage: $0 up|down|status|stop-db|start-db|stop-kafka|start-kafka|restart-kafka|up-oidc|stop-oidc" ;;
esac
