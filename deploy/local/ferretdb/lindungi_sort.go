// Lindungi's addition to FerretDB v1.24.2's SQLite backend (copied into
// internal/backends/sqlite by deploy/local/infra.sh at build time; see patch_ferretdb there).
//
// FerretDB 1.24 hands SQLite no sort but `$natural`: a sorted read decodes every document its
// pushed filter lets through, in Go, and sorts them there before the first one is answered. The
// desk's queue page and claim-next sort a queue's waiting cases; at a national year a queue holds
// about a thousand, and each read took 0.1-0.35 s where an empty store's took 5-7 ms.
//
// lindungiOrder hands SQLite the sort (of plain top-level keys, 1 or -1 each), ordering each key
// by its metadata.LindungiOrderExprs: MongoDB's rank of the value's type, then the value, which
// SQLite orders as MongoDB does within the types it ranks (numbers numerically, int, long and
// double together; strings byte by byte, MongoDB's simple comparison and SQLite's BINARY
// collation on UTF-8; ObjectIDs as the lowercase hex FerretDB stores, in the order of their
// bytes; booleans as 0 and 1; dates as the milliseconds FerretDB stores). Any other type ranks
// first in its key's order, so the handler meets such a document before any it would have to
// follow; it then sorts the rest itself (handler/lindungi_sort.go says why that is exact). The
// handler still applies the whole filter: the pushed one is a superset, and a subsequence of a
// sorted sequence is sorted. Ties fall in no particular order, as in MongoDB.
//
// Two ways, the answer the same:
//   - an index of the collection whose first keys the filter asks to equal strings (`{queue:
//     "q"}`), followed by exactly the sort's keys and directions: SQLite walks its order index
//     (metadata/lindungi_indexes.go; made here at the first read it serves, so that only the
//     indexes serving a sort cost writes the extra columns) from the first match, in order, and
//     the handler reads only
//     as far as its limit: a page costs its own length, not the queue's depth. A document whose
//     field holds an array (MongoDB matches `{f: "q"}` against its elements) is not in that
//     range: if one of the equality fields holds anything but a scalar in a matching document
//     (one index seek each tells), the other way is taken;
//   - otherwise, SQLite sorts what the pushed filter selects (in C, without decoding a document
//     in Go) and the handler reads as far as its limit.

package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// lindungiOrderMade holds the order indexes this process has made or found (by database pool and
// index name: true), or failed to make (the time: not tried again before lindungiOrderRetry).
var lindungiOrderMade sync.Map

// lindungiOrderRetry is how long a failed build of an order index is not tried again (a build holds
// the database's write lock for as long as it reads the table: on a large table made by an older
// build, the first read that would use it makes it, once).
const lindungiOrderRetry = time.Minute

// lindungiSortKeys returns the keys and directions of a sort of plain top-level fields, 1 or -1
// each, or nil.
func lindungiSortKeys(sort *types.Document) []metadata.IndexKeyPair {
	if sort.Len() == 0 {
		return nil
	}
	seen := map[string]bool{}
	keys := make([]metadata.IndexKeyPair, 0, sort.Len())
	for _, k := range sort.Keys() {
		if seen[k] || !metadata.LindungiPlainKey.MatchString(k) {
			return nil
		}
		seen[k] = true
		d, ok := must.NotFail(sort.Get(k)).(int64)
		if !ok || (d != 1 && d != -1) {
			return nil
		}
		keys = append(keys, metadata.IndexKeyPair{Field: k, Descending: d == -1})
	}
	return keys
}

// lindungiEqualString returns the string a filter asks a top-level field to equal (`{f: "s"}`).
func lindungiEqualString(filter *types.Document, field string) (string, bool) {
	if filter == nil {
		return "", false
	}
	n := 0
	for _, k := range filter.Keys() {
		if k == field {
			n++
		}
	}
	if n != 1 {
		return "", false
	}
	s, ok := must.NotFail(filter.Get(field)).(string)
	return s, ok
}

// lindungiOrdered is how a sorted query is asked of SQLite.
type lindungiOrdered struct {
	indexedBy string // " INDEXED BY ..." after the table, or ""
	where     string
	args      []any
	orderBy   string
}

// lindungiOrder returns how to ask SQLite for the rows where (with args) selects in the order of
// sort, or nil when the sort cannot be pushed down (the handler sorts, as before).
func lindungiOrder(ctx context.Context, db *fsql.DB, meta *metadata.Collection, filter *types.Document, where string, args []any, sort *types.Document) (*lindungiOrdered, error) {
	keys := lindungiSortKeys(sort)
	if keys == nil {
		return nil, nil
	}
	if o, err := lindungiByIndex(ctx, db, meta, filter, where, args, keys); o != nil || err != nil {
		return o, err
	}
	return &lindungiOrdered{where: where, args: args, orderBy: " ORDER BY " + metadata.LindungiOrderTerms(keys)}, nil
}

// lindungiByIndex returns the walk of an order index that yields the filter's rows in the
// sort's order, or nil if no index serves it (or one of its equality fields holds an array).
func lindungiByIndex(ctx context.Context, db *fsql.DB, meta *metadata.Collection, filter *types.Document, where string, args []any, keys []metadata.IndexKeyPair) (*lindungiOrdered, error) {
	for _, index := range meta.Settings.Indexes {
		name, ok := metadata.LindungiOrderIndexName(meta.TableName, index)
		if !ok {
			continue
		}
		// the index's first keys the filter asks to equal a string
		var eq []string
		var eqArgs []any
		m := 0
		for m < len(index.Key) {
			s, ok := lindungiEqualString(filter, index.Key[m].Field)
			if !ok {
				break
			}
			rank, value := metadata.LindungiOrderExprs(index.Key[m].Field, index.Key[m].Descending)
			eq = append(eq, rank+" = 4", value+" = ?")
			eqArgs = append(eqArgs, s)
			m++
		}
		// then exactly the sort's keys and directions (the index may go on: ties in the sort)
		if m == 0 || len(index.Key)-m < len(keys) {
			continue
		}
		same := true
		for i, k := range keys {
			same = same && index.Key[m+i] == k
		}
		if !same {
			continue
		}
		// the order index, made at the first read it serves (by this process: CREATE ... IF NOT
		// EXISTS once, then remembered; forgotten when a read finds it gone)
		made := fmt.Sprintf("%p\x00%s", db, name) // the database's pool (a file), the index
		was, _ := lindungiOrderMade.Load(made)
		if failed, ok := was.(time.Time); ok && time.Since(failed) < lindungiOrderRetry {
			return nil, nil // sort without it
		}
		if was != true {
			q := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %q ON %q (%s)", name, meta.TableName, metadata.LindungiOrderTerms(index.Key))
			if _, err := db.ExecContext(ctx, q); err != nil {
				lindungiOrderMade.Store(made, time.Now())
				return nil, nil // sort without it
			}
			lindungiOrderMade.Store(made, true)
		}
		// a matching document whose equality field is not a scalar (an array holding the string)
		// is outside the range walked: then this index does not serve the query
		var probes []string
		var probeArgs []any
		for j := 0; j < m; j++ {
			rank, _ := metadata.LindungiOrderExprs(index.Key[j].Field, index.Key[j].Descending)
			odd := metadata.LindungiOddRank(index.Key[j].Descending)
			cond := append(append([]string{}, eq[:2*j]...), fmt.Sprintf("%s = %d", rank, odd))
			probes = append(probes, fmt.Sprintf(
				"EXISTS (SELECT 1 FROM %q INDEXED BY %q WHERE %s)", meta.TableName, name, strings.Join(cond, " AND "),
			))
			probeArgs = append(probeArgs, eqArgs[:j]...)
		}
		var found bool
		q := "SELECT " + strings.Join(probes, " OR ")
		if err := db.QueryRowContext(ctx, q, probeArgs...).Scan(&found); err != nil {
			// the order index is gone (its collection dropped and made again): sort without it
			// now, make it again at the next read
			lindungiOrderMade.Delete(made)
			return nil, nil
		}
		if found {
			return nil, nil
		}
		cond := strings.Join(eq, " AND ")
		if where == "" {
			where = " WHERE " + cond
		} else {
			where = " WHERE " + cond + " AND " + strings.TrimPrefix(where, " WHERE ")
		}
		return &lindungiOrdered{
			indexedBy: fmt.Sprintf(" INDEXED BY %q", name),
			where:     where,
			args:      append(append([]any{}, eqArgs...), args...),
			orderBy:   " ORDER BY " + metadata.LindungiOrderTerms(keys),
		}, nil
	}
	return nil, nil
}
