// Lindungi's addition to FerretDB v1.24.2's sjson package (copied into internal/handler/sjson
// by deploy/local/infra.sh at build time; see patch_ferretdb there, change 9).
//
// Every document FerretDB reads from SQLite goes through sjson.Unmarshal, which decodes the
// stored JSON text several times over: the whole document into a map of raw values, the schema
// `$s` by reflection, then each value again with a json.Decoder of its own (a nested document's
// bytes once per level). Under the casework benchmark that was a third of the store's CPU.
//
// lindungiUnmarshal reads the text once, left to right, guided by the schema, and builds the same
// *types.Document. It understands only the text sjson.Marshal writes: `$s` first, then the keys
// in the schema's order, each value of its schema's type. Anything else (another key order, an
// unexpected byte, a number that does not parse, a type it does not decode itself) makes it
// answer ok=false, and Unmarshal then does what it always did: the answer is the same either way,
// only the work differs. Binary data, regular expressions and timestamps are handed to
// unmarshalSingleValue, FerretDB's own decoder, with their exact bytes. Decoded schemas are
// kept by their text (a collection's documents mostly share a few shapes), and never changed.
//
// lindungi_sjson_test.go checks it against FerretDB's decoder on generated documents and, with
// LINDUNGI_SJSON_DATA=<a FerretDB SQLite directory>, on every stored document there.

package sjson

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// lindungiSchemasMax bounds the decoded schemas kept; the cache is emptied when it is full.
const lindungiSchemasMax = 4096

var (
	lindungiSchemasMu sync.Mutex
	lindungiSchemas   = map[string]*schema{}
)

// lindungiSchema decodes a document's `$s` exactly as Unmarshal does, once per distinct text.
func lindungiSchema(raw []byte) (*schema, bool) {
	lindungiSchemasMu.Lock()
	sch, ok := lindungiSchemas[string(raw)]
	lindungiSchemasMu.Unlock()

	if ok {
		return sch, true
	}

	sch = new(schema)
	r := bytes.NewReader(raw)
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()

	if err := dec.Decode(sch); err != nil {
		return nil, false
	}

	if err := checkConsumed(dec, r); err != nil {
		return nil, false
	}

	lindungiSchemasMu.Lock()
	if len(lindungiSchemas) >= lindungiSchemasMax {
		lindungiSchemas = map[string]*schema{}
	}
	lindungiSchemas[string(raw)] = sch
	lindungiSchemasMu.Unlock()

	return sch, true
}

// lindungiReader walks one stored document's text.
type lindungiReader struct {
	b []byte
	i int
}

func (r *lindungiReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c, if it comes next.
func (r *lindungiReader) next(c byte) bool {
	r.ws()

	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}

	return false
}

func (r *lindungiReader) peek() byte {
	r.ws()

	if r.i < len(r.b) {
		return r.b[r.i]
	}

	return 0
}

// span returns the bytes of the JSON value that starts here and moves past it; nil if there is
// none or the text ends first. Only the value's extent is found here; its decoder checks it.
func (r *lindungiReader) span() []byte {
	r.ws()
	start, depth := r.i, 0
	done := func() []byte {
		if r.i == start {
			return nil
		}

		return r.b[start:r.i]
	}

	for r.i < len(r.b) {
		c := r.b[r.i]

		switch {
		case c == '"':
			if !r.skipString() {
				return nil
			}

			if depth == 0 {
				return done()
			}
		case c == '{' || c == '[':
			depth++
			r.i++
		case c == '}' || c == ']':
			if depth == 0 { // a number or literal, ended by its container's close
				return done()
			}

			depth--
			r.i++

			if depth == 0 {
				return done()
			}
		case depth == 0 && (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return done()
		default:
			r.i++
		}
	}

	if depth == 0 {
		return done()
	}

	return nil
}

// skipString moves past the string that starts here (at its opening quote).
func (r *lindungiReader) skipString() bool {
	r.i++

	for r.i < len(r.b) {
		switch r.b[r.i] {
		case '\\':
			r.i += 2
		case '"':
			r.i++
			return true
		default:
			r.i++
		}
	}

	return false
}

// str decodes the string that starts here, as encoding/json would.
func (r *lindungiReader) str() (string, bool) {
	if r.peek() != '"' {
		return "", false
	}

	start := r.i
	if !r.skipString() {
		return "", false
	}

	raw := r.b[start:r.i]
	inner := raw[1 : len(raw)-1]
	plain := true

	for _, c := range inner {
		if c < 0x20 || c == '\\' || c == '"' {
			plain = false
			break
		}
	}

	if plain && utf8.Valid(inner) {
		return string(inner), true
	}

	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}

	return s, true
}

// lindungiUnmarshal is Unmarshal's answer for the text sjson.Marshal writes; ok=false otherwise.
func lindungiUnmarshal(data []byte) (*types.Document, bool) {
	r := &lindungiReader{b: data}

	if !r.next('{') {
		return nil, false
	}

	if k, ok := r.str(); !ok || k != "$s" || !r.next(':') {
		return nil, false
	}

	raw := r.span()
	if raw == nil || raw[0] != '{' {
		return nil, false
	}

	sch, ok := lindungiSchema(raw)
	if !ok {
		return nil, false
	}

	// as Unmarshal: the schema's keys, each once, and no other field; `$s` came first
	d, ok := r.fields(sch, true)
	if !ok {
		return nil, false
	}

	// nothing after it, not even white space: FerretDB's decoder refuses any byte left over
	if r.i != len(r.b) {
		return nil, false
	}

	return d, true
}

// value decodes the value that starts here as unmarshalSingleValue would decode its bytes.
func (r *lindungiReader) value(sch *elem) (any, bool) {
	if r.peek() == 'n' {
		if !bytes.HasPrefix(r.b[r.i:], []byte("null")) {
			return nil, false
		}

		r.i += 4

		return types.Null, true
	}

	if sch == nil {
		return nil, false
	}

	switch sch.Type {
	case elemTypeObject:
		if sch.Schema == nil { // unmarshalSingleValue refuses it before it looks at the value
			return nil, false
		}

		return r.document(sch.Schema)
	case elemTypeArray:
		if sch.Items == nil { // likewise, even for an empty array
			return nil, false
		}

		return r.array(sch.Items)
	case elemTypeString:
		return r.str()
	case elemTypeObjectID:
		s, ok := r.str()
		if !ok || len(s) != 2*types.ObjectIDLen {
			return nil, false
		}

		var id types.ObjectID
		if n, err := hex.Decode(id[:], []byte(s)); err != nil || n != types.ObjectIDLen {
			return nil, false
		}

		return id, true
	case elemTypeBool:
		switch {
		case bytes.HasPrefix(r.b[r.i:], []byte("true")):
			r.i += 4
			return true, true
		case bytes.HasPrefix(r.b[r.i:], []byte("false")):
			r.i += 5
			return false, true
		}

		return nil, false
	case elemTypeDouble:
		n := r.number()
		if n == nil {
			return nil, false
		}

		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return nil, false
		}

		return f, true
	case elemTypeInt:
		i, ok := r.integer(32)
		return int32(i), ok
	case elemTypeLong:
		return r.integer(64)
	case elemTypeDate:
		i, ok := r.integer(64)
		return time.UnixMilli(i), ok
	case elemTypeBinData, elemTypeRegex, elemTypeTimestamp:
		raw := r.span()
		if raw == nil {
			return nil, false
		}

		v, err := unmarshalSingleValue(raw, sch)
		if err != nil {
			return nil, false
		}

		return v, true
	}

	return nil, false
}

// integer returns the JSON integer of at most bits bits that starts here, as encoding/json reads one.
func (r *lindungiReader) integer(bits int) (int64, bool) {
	n := r.number()
	if n == nil {
		return 0, false
	}

	i, err := strconv.ParseInt(string(n), 10, bits)

	return i, err == nil
}

// number returns the JSON number that starts here and moves past it.
func (r *lindungiReader) number() []byte {
	r.ws()
	start := r.i

	for r.i < len(r.b) {
		c := r.b[r.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			r.i++
			continue
		}

		break
	}

	if r.i == start {
		return nil
	}

	n := r.b[start:r.i]
	// JSON's grammar, which strconv is laxer than: no '+' in front, no leading zeros, digits on
	// both sides of '.'; anything else is left to FerretDB's decoder (which refuses it)
	if !json.Valid(n) {
		return nil
	}

	return n
}

// document decodes a nested document (no `$s`: its schema is its parent's).
func (r *lindungiReader) document(sch *schema) (any, bool) {
	if !r.next('{') {
		return nil, false
	}

	if r.next('}') {
		return new(types.Document), true // as documentType's decoder: an empty document whatever its schema
	}

	if sch == nil || len(sch.Keys) == 0 {
		return nil, false
	}

	return r.fields(sch, false)
}

// fields decodes a document's fields, in its schema's order, each once, to its closing brace;
// `more`: a field came before them (the top level's `$s`), so each is preceded by a comma.
func (r *lindungiReader) fields(sch *schema, more bool) (*types.Document, bool) {
	seen := make(map[string]struct{}, len(sch.Keys))
	d := must.NotFail(types.NewDocument())

	for n, key := range sch.Keys {
		if _, dup := seen[key]; dup {
			return nil, false
		}

		if more && key == "$s" { // FerretDB's decoder would take a second `$s` for the schema
			return nil, false
		}
		seen[key] = struct{}{}

		if (more || n > 0) && !r.next(',') {
			return nil, false
		}

		if k, ok := r.str(); !ok || k != key || !r.next(':') {
			return nil, false
		}

		v, ok := r.value(sch.Properties[key])
		if !ok {
			return nil, false
		}

		d.Set(key, v)
	}

	if !r.next('}') {
		return nil, false
	}

	return d, true
}

// array decodes an array, each element by its own schema.
func (r *lindungiReader) array(items []*elem) (any, bool) {
	if !r.next('[') {
		return nil, false
	}

	a := types.MakeArray(len(items))

	if r.next(']') {
		if len(items) != 0 {
			return nil, false
		}

		return a, true
	}

	for n, item := range items {
		if n > 0 && !r.next(',') {
			return nil, false
		}

		v, ok := r.value(item)
		if !ok {
			return nil, false
		}

		a.Append(v)
	}

	if !r.next(']') {
		return nil, false
	}

	return a, true
}
