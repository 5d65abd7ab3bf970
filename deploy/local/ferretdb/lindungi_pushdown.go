// Lindungi's addition to FerretDB v1.24.2's SQLite backend (copied into
// internal/backends/sqlite by deploy/local/infra.sh at build time; see patch_ferretdb there).
//
// FerretDB 1.24 gives SQLite no filter but `_id`: every other query reads and decodes every
// document of the collection in Go, then filters. lindungiWhere also hands SQLite the plain
// equality and `$in` terms of string values on top-level fields, written as FerretDB writes its
// index expressions (`_ferretdb_sjson->'field'`), so SQLite can answer them from an index
// declared on the field (or at least scan in C without decoding).
//
// Always a superset of the true answer, never a subset, because the handler filters every
// document the backend returns by the whole filter again (backends.Collection.Query: "Filter
// may be ignored, or safely applied partially or entirely"):
//   - only top-level keys of letters, digits and underscores, each present once;
//   - only string values (`{f: "x"}`, `{f: {$in: ["x", "y"]}}`): compared as the same JSON
//     text that FerretDB stores (sjson.MarshalSingleValue, as for `_id`);
//   - a document whose field holds an array (which MongoDB matches by its elements) passes when
//     one of its elements is one of the values (SQLite's json_each decodes each element; a
//     nested array's text may also compare equal, which only makes the answer larger): the JSON
//     text of an array, and only of an array, starts with '['.

package sqlite

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

var lindungiPlainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// lindungiStrings returns the string values a filter term asks a field to equal, or nil.
func lindungiStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case *types.Document:
		if v.Len() != 1 || v.Keys()[0] != "$in" {
			return nil
		}
		arr, ok := must.NotFail(v.Get("$in")).(*types.Array)
		if !ok || arr.Len() == 0 {
			return nil
		}
		out := make([]string, 0, arr.Len())
		for i := 0; i < arr.Len(); i++ {
			s, ok := must.NotFail(arr.Get(i)).(string)
			if !ok {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	return nil
}

// lindungiWhere extends where (and its args) with the filter's string terms; see above.
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
		if k == "_id" || seen[k] != 1 || !lindungiPlainKey.MatchString(k) {
			continue
		}
		vals := lindungiStrings(must.NotFail(filter.Get(k)))
		if len(vals) == 0 {
			continue
		}
		col := fmt.Sprintf("%s->'%s'", metadata.DefaultColumn, k)
		marks := strings.Repeat("?, ", len(vals)-1) + "?"
		for _, s := range vals {
			args = append(args, string(must.NotFail(sjson.MarshalSingleValue(s))))
		}
		for _, s := range vals {
			args = append(args, s)
		}
		// A scalar equal to one of the values (index-served), or an array (the range, also
		// index-served) holding one of them as an element (json_each gives elements decoded).
		terms = append(terms, fmt.Sprintf(
			`(%s IN (%s) OR (%s >= '[' AND %s < '\' AND EXISTS (SELECT 1 FROM json_each(%s, '$.%s') WHERE value IN (%s))))`,
			col, marks, col, col, metadata.DefaultColumn, k, marks))
	}
	if len(terms) == 0 {
		return where, args
	}
	if where == "" {
		return " WHERE " + strings.Join(terms, " AND "), args
	}
	return where + " AND " + strings.Join(terms, " AND "), args
}
