// Lindungi's check of lindungi_sjson.go against FerretDB's own decoder (copied into
// internal/handler/sjson with it). Run from the patched source tree, .cache/src/ferretdb
// (FerretDB's test helpers look for a .git directory, hence the mkdir):
//
//	mkdir -p .git && go test ./internal/handler/sjson -run Lindungi
//	LINDUNGI_SJSON_DATA=$PWD/../../ferretdb/data go test ./internal/handler/sjson -run Lindungi -v
//
// The second also decodes every document stored under that directory both ways.

package sjson

import (
	"database/sql"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// lindungiSame decodes data both ways; the fast way must agree with FerretDB's whenever it answers.
func lindungiSame(t *testing.T, data []byte, mustAnswer bool) {
	t.Helper()

	fast, ok := lindungiUnmarshal(data)
	slow, err := unmarshalSlow(data)

	if !ok {
		if mustAnswer {
			t.Fatalf("the fast decoder did not answer for text sjson.Marshal wrote: %s", data)
		}

		return
	}

	if err != nil {
		t.Fatalf("the fast decoder answered where FerretDB's refuses (%v): %s", err, data)
	}

	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("the decoders differ for %s:\nfast %#v\nslow %#v", data, fast, slow)
	}

	again := must.NotFail(Marshal(fast))
	if string(again) != string(must.NotFail(Marshal(slow))) {
		t.Fatalf("the decoders' documents write differently for %s", data)
	}
}

func lindungiRandomValue(rng *rand.Rand, depth int) any {
	strs := []string{"", "a", "kbri-seoul", "Siti Rahayu", "é ü 漢字 🙂", "quote \" back \\ slash", "tab\tnl\n", "\x01ctl", "<html>&", "\u2028", "{\"x\":[1,2]}", "null", "true"}

	switch k := rng.Intn(14); {
	case k == 0 && depth < 4:
		d := must.NotFail(types.NewDocument())
		for i := 0; i < rng.Intn(5); i++ {
			d.Set(fmt.Sprintf("k%d_%s", i, []string{"a", "b", "é", "x y", "$z"}[rng.Intn(5)]), lindungiRandomValue(rng, depth+1))
		}
		return d
	case k == 1 && depth < 4:
		a := types.MakeArray(0)
		for i := 0; i < rng.Intn(5); i++ {
			a.Append(lindungiRandomValue(rng, depth+1))
		}
		return a
	case k == 2:
		return []float64{0, math.Copysign(0, -1), 1.5, -2.25e-300, 1e300, 3, math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789.125}[rng.Intn(9)]
	case k == 3:
		return strs[rng.Intn(len(strs))]
	case k == 4:
		return types.Binary{Subtype: types.BinaryGeneric, B: []byte{0, 1, 2, byte(rng.Intn(256))}}
	case k == 5:
		return types.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, byte(rng.Intn(256))}
	case k == 6:
		return rng.Intn(2) == 0
	case k == 7:
		return time.UnixMilli(rng.Int63n(4e12) - 1e12)
	case k == 8:
		return types.Null
	case k == 9:
		return types.Regex{Pattern: "^a.*\"b", Options: "i"}
	case k == 10:
		return []int32{0, -1, math.MaxInt32, math.MinInt32, int32(rng.Intn(1000))}[rng.Intn(5)]
	case k == 11:
		return types.Timestamp(rng.Uint64() >> 1)
	case k == 12:
		return []int64{0, -1, math.MaxInt64, math.MinInt64, rng.Int63()}[rng.Intn(5)]
	default:
		return strs[rng.Intn(len(strs))]
	}
}

func TestLindungiUnmarshalGenerated(t *testing.T) {
	rng := rand.New(rand.NewSource(1))

	for n := 0; n < 20000; n++ {
		d := must.NotFail(types.NewDocument())
		d.Set("_id", []any{"case-1", types.ObjectID{1}, int32(7)}[rng.Intn(3)])

		for i := 0; i < rng.Intn(12); i++ {
			d.Set(fmt.Sprintf("f%d", i), lindungiRandomValue(rng, 0))
		}

		data, err := Marshal(d)
		if err != nil {
			continue
		}

		lindungiSame(t, data, true)

		// damaged texts: whatever the fast decoder accepts, FerretDB's must read the same way
		for j := 0; j < 8; j++ {
			bad := []byte(string(data))
			switch rng.Intn(3) {
			case 0:
				bad[rng.Intn(len(bad))] = "{}[],:\" \\0123456789.eE-+ntfa"[rng.Intn(28)]
			case 1:
				i := rng.Intn(len(bad))
				bad = append(bad[:i], bad[i+1:]...)
			default:
				i := rng.Intn(len(bad) + 1) // the very end too
				bad = append(bad[:i], append([]byte{" ,1\"}]\n"[rng.Intn(7)]}, bad[i:]...)...)
			}

			lindungiSame(t, bad, false)
		}
	}
}

// Texts sjson.Marshal never writes, where the two decoders once differed (found by a review):
// the fast one must leave them to FerretDB's.
func TestLindungiUnmarshalRefusesWhatFerretDBRefuses(t *testing.T) {
	s := `{"p":{"a":{"t":"int"}},"$k":["a"]}`

	for _, text := range []string{
		`{"$s":` + s + `,"a":1}` + "\n", // a byte after the document
		`{"$s":` + s + `,"a":1} `,
		`{"$s":{"p":{"a":{"t":"object"}},"$k":["a"]},"a":{}}`, // an object with no schema of its own
		`{"$s":{"p":{"a":{"t":"array"}},"$k":["a"]},"a":[]}`,  // an array with no items' schemas
		`{"$s":{"p":{"a":{"t":"array","i":null}},"$k":["a"]},"a":[]}`,
		`{"$s":{"$k":["$s"],"p":{"$s":{"t":"object","$s":{}}}},"$s":{}}`, // a field named $s
		`{"$s":{"$k":["$s"],"p":{"$s":{"t":"string"}}},"$s":"x"}`,
	} {
		if _, ok := lindungiUnmarshal([]byte(text)); ok {
			t.Errorf("the fast decoder answered for %s", text)
		}

		lindungiSame(t, []byte(text), false)
	}
}

func TestLindungiUnmarshalStored(t *testing.T) {
	dir := os.Getenv("LINDUNGI_SJSON_DATA")
	if dir == "" {
		t.Skip("LINDUNGI_SJSON_DATA is not set")
	}

	files, err := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no SQLite files under %s", dir)
	}

	total := 0

	for _, f := range files {
		db, err := sql.Open("sqlite", "file:"+f+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}

		rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
		if err != nil {
			t.Fatal(err)
		}

		var tables []string

		for rows.Next() {
			var name string
			must.NoError(rows.Scan(&name))
			tables = append(tables, name)
		}

		must.NoError(rows.Close())

		for _, table := range tables {
			docs, err := db.Query(`SELECT _ferretdb_sjson FROM "` + strings.ReplaceAll(table, `"`, `""`) + `"`)
			if err != nil {
				continue // not a collection's table
			}

			for docs.Next() {
				var data []byte
				must.NoError(docs.Scan(&data))
				lindungiSame(t, data, true)
				total++
			}

			must.NoError(docs.Close())
		}

		must.NoError(db.Close())
	}

	t.Logf("%d stored documents decoded both ways, the same", total)
}
