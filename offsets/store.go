package offsets

import (
	"encoding/json"
	"fmt"

	"github.com/connectd/connectd/cdc"
)

// Key identifies one stored position: a connector and the logical server
// (source partition) it reads.
type Key struct {
	Connector string
	Server    string
}

// MarshalJSON encodes k in Kafka Connect's offset-key layout:
// ["<connector>",{"server":"<server>"}].
func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{k.Connector, map[string]string{"server": k.Server}})
}

// UnmarshalJSON decodes Kafka Connect's offset-key layout. Source partitions
// other than {"server":…} (written by other connectors) are rejected.
func (k *Key) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || len(raw) != 2 {
		return fmt.Errorf("offset key %s: want [\"<connector>\",{\"server\":\"…\"}]", b)
	}
	var part struct {
		Server *string `json:"server"`
	}
	if err := json.Unmarshal(raw[0], &k.Connector); err != nil {
		return fmt.Errorf("offset key %s: connector: %w", b, err)
	}
	if err := json.Unmarshal(raw[1], &part); err != nil || part.Server == nil {
		return fmt.Errorf("offset key %s: want a {\"server\":\"…\"} partition", b)
	}
	k.Server = *part.Server
	return nil
}

// String returns the Kafka Connect key text.
func (k Key) String() string {
	b, _ := k.MarshalJSON()
	return string(b)
}

// Entry is a stored position with its key.
type Entry struct {
	Key      Key          `json:"key"`
	Position cdc.Position `json:"position"`
}

func validPosition(p cdc.Position) error {
	if p == nil {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(p, &obj); err != nil {
		return fmt.Errorf("position %q is not a JSON object: %w", p, err)
	}
	return nil
}
