// Lindungi's addition to FerretDB v1.24.2's SQLite backend (copied into
// internal/backends/sqlite by deploy/local/infra.sh at build time; see patch_ferretdb there).
//
// FerretDB 1.24 gives SQLite no filter but a scalar `_id`: every other query reads and decodes
// every document of the collection in Go, then filters. lindungiWhere also hands SQLite the plain
// equality and `$in` terms of string values on top-level fields, written as FerretDB writes its
// index expressions (`_ferretdb_sjson->'field'`), so SQLite can answer them from an index
// declared on the field (or at least scan in C without decoding); `_id: {$in: [...]}` of strings
// and ObjectIDs, on the expression of the `_id` index (metadata.IDColumn as infra.sh patches it);
// and date bounds on `_ferretdb_sjson->>'field'`, which the scalar index the registry keeps beside
// an index starting with the field answers (metadata/lindungi_indexes.go).
//
// Always a superset of the true answer, never a subset, because the handler filters every
// document the backend returns by the whole filter again (backends.Collection.Query: "Filter
// may be ignored, or safely applied partially or entirely"):
//   - only top-level keys of letters, digits and underscores, each present once;
//   - only string and boolean values (`{f: "x"}`, `{f: {$in: ["x", "y"]}}`, `{f: true}`):
//     compared as the same JSON text that FerretDB stores (sjson.MarshalSingleValue, as for
//     `_id`); and date bounds (`{f: {$lte: t}}`, `{f: {$gte: a, $lt: b}}`), compared as the
//     milliseconds FerretDB stores a date as (a number of another kind may pass; the handler
//     drops it);
//   - `_id` (never an array in MongoDB) only by `$in` of strings and ObjectIDs, compared as the
//     JSON text FerretDB stores, exactly as FerretDB's own scalar `_id` pushdown does;
//   - `{f: {$exists: true}}` as the field's JSON text being present (`> ''`: every JSON text
//     is longer than nothing), so an index declared on the field answers a sweeper's read of
//     the few documents carrying a marker;
//   - an `$in` of more than lindungiMaxIn values is not pushed down (SQLite takes at most 32766
//     parameters a statement);
//   - a document whose field holds an array (which MongoDB matches by its elements) passes when
//     one of its elements is one of the values (SQLite's json_each decodes each element; a
//     nested array's text may also compare equal, which only makes the answer larger): the JSON
//     text of an array, and only of an array, starts with '['.

package sqlite

import (
	"fmt"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// lindungiMaxIn is the most values of an `$in` pushed down.
const lindungiMaxIn = 1000

// lindungiValues returns the values a filter term asks a field to equal (strings or booleans,
// each as FerretDB stores it and as SQLite's json_each gives an array element), or nil.
func lindungiValues(v any) (stored []any, elements []any) {
	one := func(x any) (any, any, bool) {
		switch x := x.(type) {
		case string:
			return string(must.NotFail(sjson.MarshalSingleValue(x))), x, true
		case bool:
			if x {
				return "true", 1, true
			}
			return "false", 0, true
		}
		return nil, nil, false
	}
	if d, ok := v.(*types.Document); ok {
		if d.Len() != 1 || d.Keys()[0] != "$in" {
			return nil, nil
		}
		arr, ok := must.NotFail(d.Get("$in")).(*types.Array)
		if !ok || arr.Len() == 0 || arr.Len() > lindungiMaxIn {
			return nil, nil
		}
		for i := 0; i < arr.Len(); i++ {
			s, e, ok := one(must.NotFail(arr.Get(i)))
			if !ok {
				return nil, nil
			}
			stored, elements = append(stored, s), append(elements, e)
		}
		return stored, elements
	}
	if s, e, ok := one(v); ok {
		return []any{s}, []any{e}
	}
	return nil, nil
}

// lindungiRanges returns SQL comparisons for a term of date bounds ({$lt: t}, {$gte: a, $lt: b},
// ...) and their arguments (milliseconds since the epoch, as FerretDB stores a date), or "".
func lindungiRanges(v any, field string) (string, []any) {
	d, ok := v.(*types.Document)
	if !ok || d.Len() == 0 {
		return "", nil
	}
	ops := map[string]string{"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
	var parts []string
	var args []any
	for _, k := range d.Keys() {
		op, known := ops[k]
		t, isTime := must.NotFail(d.Get(k)).(time.Time)
		if !known || !isTime {
			return "", nil
		}
		parts = append(parts, fmt.Sprintf("%s %s ?", metadata.LindungiScalarExpr(field), op))
		args = append(args, t.UnixMilli())
	}
	return strings.Join(parts, " AND "), args
}

// lindungiIDs returns the `_id` values of `{$in: [...]}` (strings and ObjectIDs, as FerretDB
// stores them), or nil.
func lindungiIDs(v any) []any {
	d, ok := v.(*types.Document)
	if !ok || d.Len() != 1 || d.Keys()[0] != "$in" {
		return nil
	}
	arr, ok := must.NotFail(d.Get("$in")).(*types.Array)
	if !ok || arr.Len() == 0 || arr.Len() > lindungiMaxIn {
		return nil
	}
	ids := make([]any, 0, arr.Len())
	for i := 0; i < arr.Len(); i++ {
		switch x := must.NotFail(arr.Get(i)).(type) {
		case string, types.ObjectID:
			ids = append(ids, string(must.NotFail(sjson.MarshalSingleValue(x))))
		default:
			return nil
		}
	}
	return ids
}

// lindungiExists reports whether a term is `{$exists: true}` (a marker left for a sweeper to
// find: casework's pending claims).
func lindungiExists(v any) bool {
	d, ok := v.(*types.Document)
	if !ok || d.Len() != 1 || d.Keys()[0] != "$exists" {
		return false
	}
	b, ok := must.NotFail(d.Get("$exists")).(bool)
	return ok && b
}

// lindungiWhere extends where (and its args) with the filter's plain terms; see above.
func lindungiWhere(filter *types.Document, where string, args []any) (string, []any) {
	if filter == nil {
		return where, args
	}
	seen := map[string]int{}
	for _, k := range filter.Keys() {
		seen[k]++
	}
	var terms []string
	for _, k := range filter.Keys() {
		if seen[k] != 1 || !metadata.LindungiPlainKey.MatchString(k) {
			continue
		}
		v := must.NotFail(filter.Get(k))
		if k == "_id" {
			if ids := lindungiIDs(v); len(ids) > 0 {
				marks := strings.Repeat("?, ", len(ids)-1) + "?"
				terms = append(terms, fmt.Sprintf("%s IN (%s)", metadata.IDColumn, marks))
				args = append(args, ids...)
			}
			continue
		}
		col := fmt.Sprintf("%s->'%s'", metadata.DefaultColumn, k)
		isArray := fmt.Sprintf("(%s >= '[' AND %s < '\\')", col, col)
		if cmp, cmpArgs := lindungiRanges(v, k); cmp != "" {
			// A date within the bounds, or an array (MongoDB compares its elements; kept whole).
			terms = append(terms, fmt.Sprintf("((%s) OR %s)", cmp, isArray))
			args = append(args, cmpArgs...)
			continue
		}
		if lindungiExists(v) {
			// Present, whatever its value (null too): the field's JSON text, which is never
			// empty, compares above ''; absent, `->` gives NULL. A range the declared index
			// answers (SQLite reads `IS NOT NULL` by scanning the table).
			terms = append(terms, fmt.Sprintf("%s > ''", col))
			continue
		}
		stored, elements := lindungiValues(v)
		if len(stored) == 0 {
			continue
		}
		marks := strings.Repeat("?, ", len(stored)-1) + "?"
		args = append(args, stored...)
		args = append(args, elements...)
		// A scalar equal to one of the values (index-served), or an array (the range, also
		// index-served) holding one of them as an element (json_each gives elements decoded).
		terms = append(terms, fmt.Sprintf(
			`(%s IN (%s) OR (%s AND EXISTS (SELECT 1 FROM json_each(%s, '$.%s') WHERE value IN (%s))))`,
			col, marks, isArray, metadata.DefaultColumn, k, marks))
	}
	if len(terms) == 0 {
		return where, args
	}
	if where == "" {
		return " WHERE " + strings.Join(terms, " AND "), args
	}
	return where + " AND " + strings.Join(terms, " AND "), args
}
