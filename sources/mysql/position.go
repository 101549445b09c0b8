package mysql

import (
	"encoding/json"
	"fmt"

	"github.com/connectd/connectd/cdc"
)

// position is the source's offset; see the package documentation.
type position struct {
	File     string         `json:"file"`
	Pos      uint32         `json:"pos"`
	GTIDs    string         `json:"gtids"`
	Snapshot *snapshotState `json:"snapshot,omitempty"`
}

// snapshotState is the progress of an unfinished snapshot.
type snapshotState struct {
	Tables []string `json:"tables"`
	Table  int      `json:"table"`
	// After is the primary key of the last row emitted from Tables[Table],
	// nil before its first chunk.
	After []string `json:"after,omitempty"`
}

func parsePosition(p cdc.Position) (*position, error) {
	var pos position
	if err := json.Unmarshal(p, &pos); err != nil {
		return nil, cdc.Terminal(fmt.Errorf("reading stored mysql position %s: %w", p, err))
	}
	if pos.File == "" && pos.GTIDs == "" {
		return nil, cdc.Terminal(fmt.Errorf("reading stored mysql position %s: neither file nor gtids set", p))
	}
	return &pos, nil
}

func (p *position) encode() cdc.Position {
	b, _ := json.Marshal(p)
	return b
}
