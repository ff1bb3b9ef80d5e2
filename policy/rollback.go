package policy

import (
	"context"
	"fmt"

	"github.com/backtory/backtory/archive"
)

// CheckRollback fails when the remote's newest set of source is older than
// seen, the newest set id this host wrote or saw of it ("" when none: there
// is nothing to check), and when seen is not a set id (a garbled record
// fails closed). seenFile is where seen is kept; the error says to delete it
// if the rollback was intended or the record is known bad.
func CheckRollback(ctx context.Context, sets Sets, source, seen, seenFile string) error {
	if seen == "" {
		return nil
	}
	_, seenTime, ok := archive.ParseSetID(seen)
	if !ok {
		return fmt.Errorf("the record of the newest set seen of %s, %s, is garbled (%.40q is not a set id): refusing to run without the rollback check (if the remote is known good, delete %s to record its newest set anew)",
			source, seenFile, seen, seenFile)
	}
	ids, err := sets.SetIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, t, _ := archive.ParseSetID(id); !t.Before(seenTime) {
			return nil
		}
	}
	newest := "none"
	if len(ids) > 0 {
		newest = ids[len(ids)-1]
	}
	return fmt.Errorf("the remote's newest set of %s is %s, older than %s which this host already saw: the remote was rolled back or its newest sets were removed (if that was intended, delete %s)",
		source, newest, seen, seenFile)
}
