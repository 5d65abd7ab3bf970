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

package metadata

import (
	"context"
	"fmt"
	"regexp"

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

// lindungiDropScalarIndex drops the scalar index of a dropped index (gone), unless another index
// of c (which no longer lists gone) still starts with the same field.
func lindungiDropScalarIndex(ctx context.Context, db *fsql.DB, c *Collection, gone IndexInfo) error {
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
