package view

import "github.com/connectd/connectd/cdc"

// DecodeLean decodes only what a view needs — op, key, after and, when
// withBefore, before — skipping the source block. It is
// cdc.Message.DecodeLean, kept here for the sinks that import view.
func DecodeLean(m *cdc.Message, withBefore bool) (cdc.Record, error) {
	return m.DecodeLean(withBefore)
}
