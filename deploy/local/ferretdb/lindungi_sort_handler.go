// Lindungi's addition to FerretDB v1.24.2's handler (copied into internal/handler by
// deploy/local/infra.sh at build time; see patch_ferretdb there): find and findAndModify offer
// their sort to the backend (backends.QueryParams.LindungiSort). When the backend orders the
// documents (backends.QueryResult.LindungiSorted; internal/backends/sqlite/lindungi_sort.go),
// the handler reads them in that order through lindungiOrderedIter, filters them and stops at
// its limit, instead of reading and sorting every one first.
//
// The backend orders each key by MongoDB's rank of the value's type, then the value, for the
// types whose order within their type SQLite shares with MongoDB (missing and null, numbers,
// strings, ObjectIDs, booleans, dates: "plain" below); a value of any other type ranks first in
// its key's direction. lindungiOrderedIter passes documents on while their sort keys are plain.
// At the first that is not, every document passed on comes before every one not yet read in
// MongoDB's order too. Take a passed document P (plain values only) and an unread one U, which
// SQLite put after P, and the first sort key where their (rank, value) differ: the keys before
// it are equal plain values in both, equal for MongoDB too. If U's value at that key is plain,
// SQLite and MongoDB order the two values alike, P's first. If it is not, it ranks first in that
// key: SQLite would have put U before P, which it did not. So from that document on, the
// iterator reads the rest and sorts it with FerretDB's own sort, as before, and the answer is
// MongoDB's either way.

package handler

import (
	"time"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// lindungiSortOffer returns sort with each direction as int64 1 or -1, for the backend, or nil
// (no sort, `$natural`, or a value other than 1 or -1 of a number type).
func lindungiSortOffer(sort *types.Document) *types.Document {
	if sort.Len() == 0 {
		return nil
	}
	out := types.MakeDocument(sort.Len())
	for _, k := range sort.Keys() {
		if k == "$natural" || out.Has(k) {
			return nil
		}
		var d int64
		switch v := must.NotFail(sort.Get(k)).(type) {
		case int32:
			d = int64(v)
		case int64:
			d = v
		case float64:
			d = int64(v)
			if float64(d) != v {
				return nil
			}
		default:
			return nil
		}
		if d != 1 && d != -1 {
			return nil
		}
		out.Set(k, d)
	}
	return out
}

// lindungiPlain reports whether every sort key of doc is missing or of a type the backend
// orders as MongoDB does.
func lindungiPlain(doc *types.Document, sort *types.Document) bool {
	for _, k := range sort.Keys() {
		v, err := doc.Get(k)
		if err != nil {
			continue // missing: sorts as null
		}
		switch v.(type) {
		case types.NullType, int32, int64, float64, string, types.ObjectID, bool, time.Time:
		default:
			return false
		}
	}
	return true
}

// lindungiOrderedIter passes on the backend's documents in its order while they are plain, then
// sorts the rest (see above).
type lindungiOrderedIter struct {
	iter types.DocumentsIterator
	sort *types.Document
	rest types.DocumentsIterator
}

// Next implements iterator.Interface.
func (it *lindungiOrderedIter) Next() (struct{}, *types.Document, error) {
	if it.rest != nil {
		return it.rest.Next()
	}
	_, doc, err := it.iter.Next()
	if err != nil {
		return struct{}{}, nil, err
	}
	if lindungiPlain(doc, it.sort) {
		return struct{}{}, doc, nil
	}
	docs, err := iterator.ConsumeValues(it.iter)
	if err != nil {
		return struct{}{}, nil, lazyerrors.Error(err)
	}
	docs = append([]*types.Document{doc}, docs...)
	if err = common.SortDocuments(docs, it.sort); err != nil {
		return struct{}{}, nil, lazyerrors.Error(err)
	}
	it.rest = iterator.Values(iterator.ForSlice(docs))
	return it.rest.Next()
}

// Close implements iterator.Interface.
func (it *lindungiOrderedIter) Close() {
	it.iter.Close()
	if it.rest != nil {
		it.rest.Close()
	}
}

// lindungiOrdered returns the documents of a query in sort's order as far as the backend ordered
// them (all of its iterator, unchanged, if it did not).
func lindungiOrdered(res *backends.QueryResult, sort *types.Document) types.DocumentsIterator {
	if !res.LindungiSorted {
		return res.Iter
	}
	return &lindungiOrderedIter{iter: res.Iter, sort: sort}
}

// lindungiSortLeft returns what is left for the handler to sort: nothing if the backend ordered
// the documents (lindungiOrdered sorts what it must), else sort.
func lindungiSortLeft(sort *types.Document, res *backends.QueryResult) *types.Document {
	if res.LindungiSorted {
		return nil
	}
	return sort
}

// lindungiFindLeft returns find's parameters with the sort the backend applied taken out.
func lindungiFindLeft(params *common.FindParams, res *backends.QueryResult) *common.FindParams {
	if !res.LindungiSorted {
		return params
	}
	left := *params
	left.Sort = nil
	return &left
}
