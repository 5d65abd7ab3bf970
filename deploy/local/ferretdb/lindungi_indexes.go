// Lindungi's addition to FerretDB v1.24.2's SQLite backend metadata (copied into
// internal/backends/sqlite/metadata by deploy/local/infra.sh at build time; see patch_ferretdb
// there).
//
// FerretDB declares an index on a field as an index on `_ferretdb_sjson->"field"`: the field's
// JSON text. That serves equality (lindungiWhere compares the same JSON text), but not the date
// bounds lindungiRanges hands SQLite (`_ferretdb_sjson->>'field' <= ?`: the field as an SQL
// value, a date being the integer of its milliseconds), because SQLite uses an index on an
// expression only for that same expression; a JSON text compares as text, not as a number.
// So for every index whose first key is a plain top-level field other than _id, the registry
// also keeps a "scalar" index on `_ferretdb_sjson->>'field'` (one per table and field, however
// many indexes start with it), made with the index and dropped with the last index that starts
// with the field. It is also made, if missing, whenever indexes are created on the collection
// (even indexes that exist already, as services do at every start), so data files written by an
// earlier build get it too. It changes no answer: it is an index, the query text is the same.
//
// An index of two keys or more, all plain top-level fields, may also have an "order" index on
// each key's LindungiOrderExprs, in the index's directions: what a sort pushed down to SQLite
// orders by (../lindungi_sort.go, which makes it at the first sorted read it would serve, so
// only indexes that serve a sort cost their writes the extra columns). With the filter's string
// equalities on the index's first keys, SQLite walks it in the sort's order and the handler stops
// at its limit, however many documents match. It is dropped with its index.

package metadata

import (
	"context"
	"crypto/sha256"
	"fmt"
	"regexp"
	"strings"

	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
)

// LindungiPlainKey matches the top-level field names lindungiWhere pushes down (and writes
// into SQL text unquoted: letters, digits and underscores only).
var LindungiPlainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// LindungiScalarExpr is the field's value as an SQL value (a date: its milliseconds, an
// integer), the expression lindungiRanges compares and the scalar index is declared on.
func LindungiScalarExpr(field string) string {
	return fmt.Sprintf("%s->>'%s'", DefaultColumn, field)
}

// LindungiOrderExprs returns the two SQL expressions a sort key orders by, for a sort pushed
// down to SQLite and for the order index that serves it: MongoDB's rank of the value's BSON type
// among the types SQLite orders as MongoDB does within them (2 missing or null, 3 numbers,
// 4 strings, 8 ObjectIDs, 9 booleans, 10 dates; read from the type FerretDB records for the
// field in the document's schema, `$s`), then the value as SQLite reads it (`->>`). Any other
// type (an array, a document, binary data, a timestamp, a regular expression) ranks 0 in an
// ascending key and 99 in a descending one: first in the key's order either way, where the
// handler meets it before any document it would have to follow, and sorts the rest itself.
func LindungiOrderExprs(field string, desc bool) (rank, value string) {
	t := fmt.Sprintf(`%s->>'$."$s".p.%s.t'`, DefaultColumn, field)
	rank = fmt.Sprintf(
		`(CASE %s WHEN 'null' THEN 2 WHEN 'int' THEN 3 WHEN 'long' THEN 3 WHEN 'double' THEN 3 `+
			`WHEN 'string' THEN 4 WHEN 'objectId' THEN 8 WHEN 'bool' THEN 9 WHEN 'date' THEN 10 `+
			`ELSE (CASE WHEN %s IS NULL THEN 2 ELSE %d END) END)`, t, t, LindungiOddRank(desc))
	return rank, LindungiScalarExpr(field)
}

// LindungiOddRank is the rank of a type SQLite cannot order as MongoDB does: first in the key's order.
func LindungiOddRank(desc bool) int {
	if desc {
		return 99
	}
	return 0
}

// LindungiOrderIndexName returns the name of the order index of an index of c, if it has one.
func LindungiOrderIndexName(table string, index IndexInfo) (string, bool) {
	if len(index.Key) < 2 {
		return "", false
	}
	for _, k := range index.Key {
		if !LindungiPlainKey.MatchString(k.Field) {
			return "", false
		}
	}
	// named by its columns too: an index dropped and made again with other keys under the same
	// name never meets an order index of the old keys
	sum := sha256.Sum256([]byte(LindungiOrderTerms(index.Key)))
	return fmt.Sprintf("%s_lindungi_order_%s_%x", table, index.Name, sum[:4]), true
}

// LindungiOrderTerms returns each key's LindungiOrderExprs in its direction: the order index's
// columns for an index's keys, and the ORDER BY of a sort by these keys (the same text, so that
// SQLite knows the index gives that order).
func LindungiOrderTerms(keys []IndexKeyPair) string {
	var terms []string
	for _, k := range keys {
		rank, value := LindungiOrderExprs(k.Field, k.Descending)
		dir := ""
		if k.Descending {
			dir = " DESC"
		}
		terms = append(terms, rank+dir, value+dir)
	}
	return strings.Join(terms, ", ")
}

// lindungiScalarField returns the field an index's scalar index is on, if it has one.
func lindungiScalarField(index IndexInfo) (string, bool) {
	if len(index.Key) == 0 {
		return "", false
	}
	f := index.Key[0].Field
	return f, f != "_id" && LindungiPlainKey.MatchString(f)
}

func lindungiScalarIndexName(table, field string) string {
	return table + "_lindungi_scalar_" + field
}

// lindungiEnsureScalarIndexes makes the scalar index of every index of c that lacks it.
func lindungiEnsureScalarIndexes(ctx context.Context, db *fsql.DB, c *Collection) error {
	done := map[string]bool{}
	for _, index := range c.Settings.Indexes {
		f, ok := lindungiScalarField(index)
		if !ok || done[f] {
			continue
		}
		done[f] = true
		q := fmt.Sprintf(
			"CREATE INDEX IF NOT EXISTS %q ON %q (%s)",
			lindungiScalarIndexName(c.TableName, f), c.TableName, LindungiScalarExpr(f),
		)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return lazyerrors.Error(err)
		}
	}
	return nil
}

// lindungiDropScalarIndex drops the order index of a dropped index (gone), and its scalar index
// unless another index of c (which no longer lists gone) still starts with the same field.
func lindungiDropScalarIndex(ctx context.Context, db *fsql.DB, c *Collection, gone IndexInfo) error {
	if name, ok := LindungiOrderIndexName(c.TableName, gone); ok {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("DROP INDEX IF EXISTS %q", name)); err != nil {
			return lazyerrors.Error(err)
		}
	}
	f, ok := lindungiScalarField(gone)
	if !ok {
		return nil
	}
	for _, index := range c.Settings.Indexes {
		if g, ok := lindungiScalarField(index); ok && g == f {
			return nil
		}
	}
	q := fmt.Sprintf("DROP INDEX IF EXISTS %q", lindungiScalarIndexName(c.TableName, f))
	if _, err := db.ExecContext(ctx, q); err != nil {
		return lazyerrors.Error(err)
	}
	return nil
}
