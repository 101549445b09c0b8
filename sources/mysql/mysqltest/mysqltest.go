// Package mysqltest holds benchmark support for the MySQL source: the bare
// BinlogSyncer decode of a binlog range that the source is measured
// against.
package mysqltest

import (
	"context"
	"fmt"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// BareDecode streams the binlog from `from` to `to` with a plain
// BinlogSyncer (decoding every event, converting nothing) and returns the
// number of row changes in it; an update's before and after images count
// once.
func BareDecode(ctx context.Context, cfg replication.BinlogSyncerConfig, from, to gomysql.Position) (int, error) {
	syncer := replication.NewBinlogSyncer(cfg)
	defer syncer.Close()
	streamer, err := syncer.StartSync(from)
	if err != nil {
		return 0, fmt.Errorf("starting the binlog at %s: %w", from, err)
	}
	rows, file := 0, from.Name
	for {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			return rows, fmt.Errorf("reading the binlog: %w", err)
		}
		if r, ok := ev.Event.(*replication.RotateEvent); ok {
			file = string(r.NextLogName)
		}
		if re, ok := ev.Event.(*replication.RowsEvent); ok {
			switch ev.Header.EventType {
			case replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2:
				rows += len(re.Rows) / 2
			default:
				rows += len(re.Rows)
			}
		}
		if file == to.Name && ev.Header.LogPos >= to.Pos {
			return rows, nil
		}
	}
}
