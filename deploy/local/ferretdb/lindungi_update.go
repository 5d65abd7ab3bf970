// Lindungi's change to FerretDB v1.24.2's `update` command (deploy/local/infra.sh, change 7).

package handler

import (
	"context"
	"errors"
	"fmt"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/handler/handlererrors"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// lindungiUpdateEach runs an update command's statements one at a time, as MongoDB does: a
// statement that meets a unique index (an upsert that lost a race, or whose filter's guard kept
// a newer version) is that statement's write error, at its own index, and the statements after
// it still run unless the command is ordered; the counts, and the upserted ids at their
// statements' indexes, are answered beside the errors.
//
// FerretDB 1.24 stopped at the first duplicate and answered it alone, at index 0, without the
// counts (pymongo's bulk write then fails reading `nModified`), and numbered upserted ids by
// their count instead of their statement. Each statement also closes its read of the collection
// before the next one starts: updateDocument defers the closing of every statement's iterator to
// its own return, so a command of many statements held as many reads open at once.
func lindungiUpdateEach(
	ctx context.Context, h *Handler, params *common.UpdateParams,
) (matched, modified int32, upserted, writeErrors *types.Array, err error) {
	upserted, writeErrors = types.MakeArray(0), types.MakeArray(0)
	all := params.Updates
	defer func() { params.Updates = all }()

	for i := range all {
		params.Updates = all[i : i+1]

		m, mod, up, err := h.updateDocument(ctx, params)
		if err != nil {
			var be *backends.Error
			if !errors.As(err, &be) || be.Code() != backends.ErrorCodeInsertDuplicateID {
				return 0, 0, nil, nil, err
			}

			writeErrors.Append(must.NotFail(types.NewDocument(
				"index", int32(i),
				"code", int32(handlererrors.ErrDuplicateKeyInsert),
				"errmsg", fmt.Sprintf(`E11000 duplicate key error collection: %s.%s`, params.DB, params.Collection),
			)))

			if params.Ordered {
				break
			}

			continue
		}

		matched += m
		modified += mod

		if up.Len() != 0 {
			first := must.NotFail(up.Get(0)).(*types.Document)
			upserted.Append(must.NotFail(types.NewDocument("index", int32(i), "_id", must.NotFail(first.Get("_id")))))
		}
	}

	return matched, modified, upserted, writeErrors, nil
}
