package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/connectd/connectd/cdc"
)

// Tuning knobs.
const (
	maxBuffered    = 4096 // records decoded ahead of Read
	maxReadBatch   = 2048 // records one Read returns at most
	statusInterval = time.Second
	heartbeatKind  = "connectd_heartbeat"
)

// sessionParams fix the text form of values so the snapshot connection and
// the walsender print them identically.
var sessionParams = map[string]string{
	"DateStyle":          "ISO, YMD",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"lc_monetary":        "C",
	"application_name":   "connectd",
}

// Source is the PostgreSQL logical-replication source.
type Source struct {
	cfg       Config
	name      string
	heartbeat time.Duration
	include   []*regexp.Regexp
	exclude   []*regexp.Regexp
	log       *slog.Logger

	// Set by Open; used by the worker goroutine, then by Close.
	conn          *pgx.Conn      // catalog, snapshot, heartbeats, slot drop
	repl          *pgconn.PgConn // replication protocol
	db            string
	serverVersion int
	plan          plan
	types         *typeMapper
	typeCache     map[uint32]*typeInfo
	cancel        context.CancelFunc
	done          chan struct{}

	// Buffer between the worker goroutine and Read.
	mu     sync.Mutex
	buf    []cdc.Record
	ready  int // buf[:ready] may be returned by Read
	err    error
	notify chan struct{}
	space  chan struct{}

	// Acknowledgement: acked is the highest streaming LSN Ack has seen.
	acked atomic.Uint64

	// Worker-goroutine state.
	stream streamState
}

// plan is what Open decided to do.
type plan struct {
	startLSN     pglogrepl.LSN // START_REPLICATION from here
	slotFlushLSN pglogrepl.LSN // the slot's confirmed_flush_lsn at Open
	snapshot     *snapshotPlan
}

type snapshotPlan struct {
	name   string        // exported snapshot, "" for a fresh one
	lsn    pglogrepl.LSN // consistent point
	tables []string
	table  int
	after  []string
	start  time.Time
}

func newSource(cfg Config, name string, heartbeat time.Duration, include, exclude []*regexp.Regexp, logger *slog.Logger) *Source {
	return &Source{cfg: cfg, name: name, heartbeat: heartbeat, include: include, exclude: exclude, log: logger,
		notify: make(chan struct{}, 1), space: make(chan struct{}, 1), typeCache: map[uint32]*typeInfo{}}
}

// ServerName keys the source's offsets by its topic prefix.
func (s *Source) ServerName() string { return s.cfg.TopicPrefix }

// included reports whether "schema.table" is captured.
func (s *Source) included(qualified string) bool {
	if len(s.include) > 0 {
		ok := false
		for _, re := range s.include {
			if re.MatchString(qualified) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, re := range s.exclude {
		if re.MatchString(qualified) {
			return false
		}
	}
	return true
}

// position is the stored offset:
//
//	{"lsn":"0/16B3748","txId":754}
//	{"lsn":"0/16B3748","snapshot":{"tables":["public.a","public.b"],"table":1,"after":["42"]}}
//
// lsn is the end of the last transaction delivered (streaming resumes after
// it), or the slot's consistent point while a snapshot is in progress.
// snapshot, when present, is the snapshot's progress: the ordered list of
// tables, the index of the one being read, and the key of its last row read
// (text values, in key order; absent at the start of a table).
type position struct {
	LSN      string            `json:"lsn"`
	TxID     int64             `json:"txId,omitempty"`
	Snapshot *snapshotProgress `json:"snapshot,omitempty"`
}

type snapshotProgress struct {
	Tables []string `json:"tables"`
	Table  int      `json:"table"`
	After  []string `json:"after,omitempty"`
}

func parsePosition(pos cdc.Position) (position, pglogrepl.LSN, error) {
	var p position
	if err := json.Unmarshal(pos, &p); err != nil {
		return p, 0, cdc.Terminal(fmt.Errorf("%w %s: %w", ErrBadPosition, pos, err))
	}
	lsn, err := pglogrepl.ParseLSN(p.LSN)
	if err != nil {
		return p, 0, cdc.Terminal(fmt.Errorf("%w %s: lsn: %w", ErrBadPosition, pos, err))
	}
	return p, lsn, nil
}

func streamPosition(lsn pglogrepl.LSN, xid uint32) cdc.Position {
	b := make([]byte, 0, 48)
	b = append(b, `{"lsn":"`...)
	b = append(b, lsn.String()...)
	b = append(b, `","txId":`...)
	b = strconv.AppendUint(b, uint64(xid), 10)
	return append(b, '}')
}

// connConfig parses the DSN and adds the session parameters.
func (s *Source) connConfig() (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(s.cfg.DSN)
	if err != nil {
		return nil, cdc.Terminal(fmt.Errorf("parsing dsn %s: %s", RedactDSN(s.cfg.DSN), redactErr(err, s.cfg.DSN)))
	}
	for k, v := range sessionParams {
		if k == "application_name" && cfg.RuntimeParams[k] != "" {
			continue
		}
		cfg.RuntimeParams[k] = v
	}
	return cfg, nil
}

// Open connects, checks the server, creates the publication and slot when
// missing, and starts reading: a snapshot first when one is due, then the
// replication stream.
func (s *Source) Open(ctx context.Context, pos cdc.Position) error {
	var stored *position
	var storedLSN pglogrepl.LSN
	if pos != nil {
		p, lsn, err := parsePosition(pos)
		if err != nil {
			return err
		}
		stored, storedLSN = &p, lsn
	}
	pcfg, err := s.connConfig()
	if err != nil {
		return err
	}
	ccfg, err := pgx.ParseConfig(s.cfg.DSN)
	if err != nil {
		return cdc.Terminal(fmt.Errorf("parsing dsn %s: %s", RedactDSN(s.cfg.DSN), redactErr(err, s.cfg.DSN)))
	}
	ccfg.Config = *pcfg.Copy()
	s.conn, err = pgx.ConnectConfig(ctx, ccfg)
	if err != nil {
		return connectError("a query connection", s.cfg.DSN, err)
	}
	s.serverVersion, _ = strconv.Atoi(s.conn.PgConn().ParameterStatus("server_version_num"))
	if s.serverVersion == 0 {
		var v string
		if err := s.conn.QueryRow(ctx, "SHOW server_version_num").Scan(&v); err == nil {
			s.serverVersion, _ = strconv.Atoi(v)
		}
	}
	if err := s.checkServer(ctx); err != nil {
		return err
	}
	tables, err := s.capturedTables(ctx)
	if err != nil {
		return err
	}
	if err := s.ensurePublication(ctx, tables); err != nil {
		return err
	}
	s.types = newTypeMapper(s.cfg.DecimalHandling, func(oid uint32) (*typeInfo, error) {
		if ti, ok := s.typeCache[oid]; ok {
			return ti, nil
		}
		ti, err := lookupType(context.Background(), s.conn, oid)
		if err == nil {
			s.typeCache[oid] = ti
		}
		return ti, err
	})

	rcfg := pcfg.Copy()
	rcfg.RuntimeParams["replication"] = "database"
	s.repl, err = pgconn.ConnectConfig(ctx, rcfg)
	if err != nil {
		return connectError("a replication connection", s.cfg.DSN, err)
	}
	if err := s.preparePlan(ctx, stored, storedLSN, tables); err != nil {
		return err
	}

	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		err := s.run(wctx)
		if err != nil && wctx.Err() == nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		}
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}()
	return nil
}

// checkServer fails early, with the fix, on a wrong wal_level or a role
// that cannot replicate.
func (s *Source) checkServer(ctx context.Context) error {
	var walLevel string
	if err := s.conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return fmt.Errorf("reading wal_level: %w", err)
	}
	if walLevel != "logical" {
		return cdc.Terminal(fmt.Errorf("%w: it is %q; set wal_level = logical in postgresql.conf (ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL", ErrWALLevel, walLevel))
	}
	var canReplicate bool
	var role string
	if err := s.conn.QueryRow(ctx, "SELECT current_user::text, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&role, &canReplicate); err != nil {
		return fmt.Errorf("reading role attributes: %w", err)
	}
	if !canReplicate {
		return cdc.Terminal(fmt.Errorf("%w: role %s has no REPLICATION attribute; run ALTER ROLE %s WITH REPLICATION", ErrPrivilege, role, quoteIdent(role)))
	}
	if err := s.conn.QueryRow(ctx, "SELECT current_database()::text").Scan(&s.db); err != nil {
		return fmt.Errorf("reading database name: %w", err)
	}
	return nil
}

// capturedTables lists the tables the filters select and warns about
// those whose updates and deletes cannot be captured well.
func (s *Source) capturedTables(ctx context.Context) ([]listedTable, error) {
	all, err := listTables(ctx, s.conn)
	if err != nil {
		return nil, err
	}
	var out []listedTable
	for _, t := range all {
		if !s.included(t.qualified()) {
			continue
		}
		out = append(out, t)
		if !t.hasPK && t.identity == 'd' {
			s.log.Warn("table has no primary key and REPLICA IDENTITY DEFAULT: PostgreSQL rejects its UPDATEs and DELETEs once it is published, and its events have no key; fix with ALTER TABLE ... REPLICA IDENTITY FULL (or add a primary key)",
				"table", t.qualified(), "fix", fmt.Sprintf("ALTER TABLE %s.%s REPLICA IDENTITY FULL", quoteIdent(t.schema), quoteIdent(t.name)))
		}
		if t.identity == 'n' {
			s.log.Warn("table has REPLICA IDENTITY NOTHING: its updates and deletes cannot be captured", "table", t.qualified())
		}
	}
	return out, nil
}

// ensurePublication creates the publication when missing (FOR ALL TABLES
// without include_tables, else for the matching tables) and checks that an
// existing one covers every captured table.
func (s *Source) ensurePublication(ctx context.Context, tables []listedTable) error {
	pub := s.cfg.Publication
	var all bool
	err := s.conn.QueryRow(ctx, "SELECT puballtables FROM pg_publication WHERE pubname = $1", pub).Scan(&all)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var sql string
		// Changes of partitions are published as changes of their
		// partitioned table, the table the snapshot reads.
		with := ""
		if s.serverVersion >= 130000 {
			with = " WITH (publish_via_partition_root = true)"
		}
		if len(s.include) == 0 {
			sql = "CREATE PUBLICATION " + quoteIdent(pub) + " FOR ALL TABLES"
		} else {
			if len(tables) == 0 {
				return cdc.Terminal(fmt.Errorf("%w: no table matches include_tables %q in database %s, so publication %s cannot be created", ErrPublication, s.cfg.IncludeTables, s.db, pub))
			}
			names := make([]string, len(tables))
			for i, t := range tables {
				names[i] = quoteIdent(t.schema) + "." + quoteIdent(t.name)
			}
			sql = "CREATE PUBLICATION " + quoteIdent(pub) + " FOR TABLE " + strings.Join(names, ", ")
		}
		sql += with
		if _, err := s.conn.Exec(ctx, sql); err != nil {
			if pgCode(err) == "42501" {
				return cdc.Terminal(fmt.Errorf("%w: creating publication %s: %w (create it as an owner or superuser: %s)", ErrPrivilege, pub, err, sql))
			}
			return fmt.Errorf("creating publication %s: %w", pub, err)
		}
		s.log.Info("created publication", "publication", pub, "sql", sql)
		return nil
	case err != nil:
		return fmt.Errorf("reading publication %s: %w", pub, err)
	case all:
		return nil
	}
	rows, err := s.conn.Query(ctx, "SELECT schemaname::text || '.' || tablename::text FROM pg_publication_tables WHERE pubname = $1", pub)
	if err != nil {
		return fmt.Errorf("reading tables of publication %s: %w", pub, err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("reading tables of publication %s: %w", pub, err)
	}
	var missing []string
	for _, t := range tables {
		found := false
		for _, h := range have {
			if h == t.qualified() {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, quoteIdent(t.schema)+"."+quoteIdent(t.name))
		}
	}
	if len(missing) > 0 {
		return cdc.Terminal(fmt.Errorf("%w: publication %s does not contain %s, which include_tables selects; run ALTER PUBLICATION %s ADD TABLE %s (or narrow include_tables/exclude_tables)",
			ErrPublication, pub, strings.Join(missing, ", "), quoteIdent(pub), strings.Join(missing, ", ")))
	}
	return nil
}

// preparePlan inspects the slot, creates it when needed, and decides
// whether to snapshot and where to start streaming.
func (s *Source) preparePlan(ctx context.Context, stored *position, storedLSN pglogrepl.LSN, tables []listedTable) error {
	slot := s.cfg.Slot
	var plugin, database, walStatus string
	var confirmed *string
	err := s.conn.QueryRow(ctx, `SELECT plugin::text, coalesce(database::text, ''), confirmed_flush_lsn::text, coalesce(wal_status, '')
FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&plugin, &database, &confirmed, &walStatus)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("reading replication slot %s: %w", slot, err)
	}
	mode := s.cfg.SnapshotMode
	resnapshot := false
	if exists {
		if plugin != "pgoutput" || database != s.db {
			return cdc.Terminal(fmt.Errorf("replication slot %s exists for plugin %q on database %q, not pgoutput on %q: choose another slot name", slot, plugin, database, s.db))
		}
		if walStatus == "lost" {
			if mode != SnapshotWhenNeeded {
				return cdc.Terminal(fmt.Errorf("%w: slot %s has wal_status lost (the server removed WAL it still needed, see max_slot_wal_keep_size): changes were lost. Recover with snapshot_mode: when_needed (drops the slot and re-snapshots), or drop the slot (SELECT pg_drop_replication_slot('%s')) and reset the connector's offsets", ErrSlotInvalidated, slot, slot))
			}
			s.log.Warn("replication slot is invalidated; dropping it and re-snapshotting (snapshot_mode: when_needed)", "slot", slot)
			if _, err := s.conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
				return fmt.Errorf("dropping invalidated slot %s: %w", slot, err)
			}
			exists, resnapshot = false, true
		}
	} else if stored != nil {
		if mode != SnapshotWhenNeeded {
			return cdc.Terminal(fmt.Errorf("%w: slot %s does not exist but the stored position is %s: changes since then cannot be streamed. Recover with snapshot_mode: when_needed (re-snapshots), or reset the connector's offsets", ErrSlotMissing, slot, stored.LSN))
		}
		s.log.Warn("replication slot is missing; re-creating it and re-snapshotting (snapshot_mode: when_needed)", "slot", slot)
		resnapshot = true
	}

	wantSnapshot := resnapshot || (stored == nil && mode != SnapshotNever) || (stored != nil && stored.Snapshot != nil)
	if !exists {
		action := "NOEXPORT_SNAPSHOT"
		if wantSnapshot {
			action = "EXPORT_SNAPSHOT"
		}
		res, err := pglogrepl.CreateReplicationSlot(ctx, s.repl, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{SnapshotAction: action, Mode: pglogrepl.LogicalReplication})
		if err != nil {
			return fmt.Errorf("creating replication slot %s: %w", slot, err)
		}
		lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return fmt.Errorf("reading consistent point of slot %s: %w", slot, err)
		}
		s.log.Info("created replication slot", "slot", slot, "consistent_point", res.ConsistentPoint)
		s.plan.startLSN, s.plan.slotFlushLSN = lsn, lsn
		if wantSnapshot {
			s.plan.snapshot = &snapshotPlan{name: res.SnapshotName, lsn: lsn, tables: qualifiedNames(tables)}
		}
		return nil
	}
	if confirmed != nil {
		s.plan.slotFlushLSN, _ = pglogrepl.ParseLSN(*confirmed)
	}
	s.plan.startLSN = max(storedLSN, s.plan.slotFlushLSN)
	switch {
	case stored != nil && stored.Snapshot != nil:
		// Resume an interrupted snapshot. The exported snapshot is gone:
		// the remaining rows are read as of now and the stream replays
		// from the consistent point, so the result converges (rows changed
		// meanwhile may be delivered twice).
		sp := stored.Snapshot
		s.plan.startLSN = storedLSN
		s.plan.snapshot = &snapshotPlan{lsn: storedLSN, tables: sp.Tables, table: sp.Table, after: sp.After}
		s.log.Info("resuming snapshot", "table_index", sp.Table, "tables", len(sp.Tables))
	case stored == nil && wantSnapshot:
		// The slot exists but nothing was ever committed: snapshot as of
		// now and stream from the slot's confirmed point.
		s.log.Warn("slot exists but the connector has no stored position: snapshotting without the slot's exported snapshot; changes made meanwhile may be delivered twice", "slot", slot)
		s.plan.snapshot = &snapshotPlan{lsn: s.plan.startLSN, tables: qualifiedNames(tables)}
	}
	return nil
}

func qualifiedNames(ts []listedTable) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.qualified()
	}
	return out
}

// run is the worker goroutine: snapshot (if planned), then stream.
func (s *Source) run(ctx context.Context) error {
	if s.plan.snapshot != nil {
		if err := s.snapshot(ctx, s.plan.snapshot); err != nil {
			return err
		}
	}
	return s.streamChanges(ctx)
}

// Read returns the next records: snapshot rows, then changes. Records
// inside a transaction carry no position; the last one of each
// transaction carries {"lsn":…,"txId":…}.
func (s *Source) Read(ctx context.Context) ([]cdc.Record, error) {
	for {
		s.mu.Lock()
		if s.ready > 0 {
			n := min(s.ready, maxReadBatch)
			// out keeps its own capacity, so neither side's appends can
			// reach the other's records.
			out := s.buf[:n:n]
			s.buf = s.buf[n:]
			s.ready -= n
			s.mu.Unlock()
			select {
			case s.space <- struct{}{}:
			default:
			}
			return out, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.notify:
		}
	}
}

// Ack records that everything up to pos is durable; the worker sends it as
// the flush LSN of its next standby status update, never anything beyond.
func (s *Source) Ack(_ context.Context, pos cdc.Position) error {
	p, lsn, err := parsePosition(pos)
	if err != nil {
		return err
	}
	if p.Snapshot != nil {
		return nil // snapshot progress: nothing to confirm to the server
	}
	for {
		cur := s.acked.Load()
		if uint64(lsn) <= cur || s.acked.CompareAndSwap(cur, uint64(lsn)) {
			return nil
		}
	}
}

// Close stops the worker, confirms the last acknowledged LSN, closes the
// connections and drops the slot when drop_slot_on_stop is set.
func (s *Source) Close(ctx context.Context) error {
	var errs []error
	if s.cancel != nil {
		s.cancel()
		if s.repl != nil {
			_ = s.repl.Conn().SetReadDeadline(time.Now())
		}
		select {
		case <-s.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("waiting for the replication reader: %w", ctx.Err()))
		}
	}
	if s.repl != nil {
		if s.stream.started && chanClosed(s.done) {
			_ = s.repl.Conn().SetDeadline(time.Time{})
			if err := s.sendStatus(); err != nil {
				s.log.Warn("could not confirm the last acknowledged LSN on stop", "err", err)
			}
		}
		if err := s.repl.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("closing replication connection: %w", err))
		}
	}
	if s.conn != nil {
		if s.cfg.DropSlotOnStop {
			if err := dropSlot(ctx, s.conn, s.cfg.Slot); err != nil {
				errs = append(errs, err)
			} else {
				s.log.Info("dropped replication slot (drop_slot_on_stop)", "slot", s.cfg.Slot)
			}
		}
		if err := s.conn.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("closing query connection: %w", err))
		}
	}
	return errors.Join(errs...)
}

func chanClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// dropSlot drops a slot, retrying while the server still sees its last
// connection as active.
func dropSlot(ctx context.Context, conn *pgx.Conn, slot string) error {
	var err error
	for range 50 {
		_, err = conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
		if err == nil || pgCode(err) != "55006" {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dropping replication slot %s: %w", slot, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("dropping replication slot %s: %w", slot, err)
	}
	return nil
}

// Buffer operations, called by the worker goroutine only.

func (s *Source) add(rec cdc.Record) {
	s.mu.Lock()
	s.buf = append(s.buf, rec)
	s.mu.Unlock()
}

// pending is how many buffered records are not yet readable.
func (s *Source) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf) - s.ready
}

// release makes buffered records readable: all of them, or all but the
// last when holdLast (its position or snapshot marker may still change).
func (s *Source) release(holdLast bool) {
	s.mu.Lock()
	n := len(s.buf)
	if holdLast && n > 0 {
		n--
	}
	changed := n > s.ready
	if changed {
		s.ready = n
	}
	s.mu.Unlock()
	if changed {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// setLast updates the last buffered record (not yet readable).
func (s *Source) setLast(fn func(*cdc.Record)) {
	s.mu.Lock()
	if n := len(s.buf); n > 0 && s.ready < n {
		fn(&s.buf[n-1])
	}
	s.mu.Unlock()
}

func (s *Source) full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf) >= maxBuffered && s.ready > 0
}

// waitSpace waits until Read took records, ctx ends, or d passes.
func (s *Source) waitSpace(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-s.space:
	case <-t.C:
	}
}
