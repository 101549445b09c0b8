package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/connectd/connectd/cdc"
)

// maxBatch is the most records one Read returns while streaming.
const maxBatch = 1000

// connectTimeout bounds each connection attempt.
const connectTimeout = 10 * time.Second

// Source is the MySQL / MariaDB binlog source.
type Source struct {
	cfg       Config
	name      string
	filter    filter
	heartbeat time.Duration
	log       *slog.Logger
	now       func() time.Time

	flavor string // gomysql.MariaDBFlavor or gomysql.MySQLFlavor
	start  position

	snap *snapshot // non-nil while the snapshot runs

	// streaming state, owned by Read
	syncer    *replication.BinlogSyncer
	events    chan *replication.BinlogEvent
	streamErr chan error
	stop      chan struct{}
	ticker    *time.Ticker
	tables    map[uint64]*tableEntry
	file      string
	gset      gomysql.GTIDSet
	txnGTID   string
	mariaGTID gomysql.MariadbGTID
	inTxn     bool
	cur       position // after the last transaction
	dirty     bool     // cur is not carried by any record yet
	lastPosAt time.Time
	pending   *cdc.Record   // the last row so far, held until its commit
	meta      *client.Conn  // side connection for information_schema lookups
	streamed  bool          // the stream has returned records since Open
	acked     chan struct{} // closed by the first Ack
	ackOnce   sync.Once
	out       []cdc.Record
}

type tableEntry struct {
	tm *replication.TableMapEvent
	t  *table // nil when the table is not captured
}

// ServerName keys the source's offsets by its topic prefix.
func (s *Source) ServerName() string { return s.cfg.TopicPrefix }

// connect opens a client connection, mapping authentication failures to
// terminal errors.
func (s *Source) connect(ctx context.Context) (*client.Conn, error) {
	conn, err := client.ConnectWithContext(ctx, s.cfg.addr(), s.cfg.User, s.cfg.Password, "", connectTimeout)
	if err != nil {
		var me *gomysql.MyError
		if errors.As(err, &me) && (me.Code == gomysql.ER_ACCESS_DENIED_ERROR || me.Code == gomysql.ER_DBACCESS_DENIED_ERROR) {
			return nil, cdc.Terminal(fmt.Errorf("%w: connecting to %s as %q: %s (check user and password)", ErrAuth, s.cfg.addr(), s.cfg.User, me.Message))
		}
		return nil, fmt.Errorf("connecting to %s: %w", s.cfg.addr(), err)
	}
	if _, err := conn.Execute("SET SESSION time_zone = '+00:00'"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("setting session time zone: %w", err)
	}
	return conn, nil
}

// Open checks the server, then prepares a snapshot or streaming from pos.
func (s *Source) Open(ctx context.Context, p cdc.Position) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			conn.Close()
		}
	}()
	s.flavor = gomysql.MySQLFlavor
	if strings.Contains(strings.ToLower(conn.GetServerVersion()), "mariadb") {
		s.flavor = gomysql.MariaDBFlavor
	}
	if err := s.checkServer(conn); err != nil {
		return err
	}
	var pos *position
	if p != nil {
		if pos, err = parsePosition(p); err != nil {
			return err
		}
	}
	switch {
	case pos == nil && s.cfg.SnapshotMode == SnapshotNever:
		if s.start, err = currentPosition(conn, s.flavor); err != nil {
			return err
		}
		s.log.Info("snapshot_mode never: streaming from the server's current position", "file", s.start.File, "pos", s.start.Pos, "gtids", s.start.GTIDs)
	case pos == nil:
		keep = true
		return s.beginSnapshot(ctx, conn, nil)
	case pos.Snapshot != nil:
		keep = true
		return s.beginSnapshot(ctx, conn, pos)
	default:
		if err := s.checkAvailable(conn, pos); err != nil {
			if errors.Is(err, ErrBinlogPurged) && s.cfg.SnapshotMode == SnapshotWhenNeeded {
				s.log.Warn("stored position is gone from the server; taking a new snapshot (snapshot_mode when_needed)", "err", err)
				keep = true
				return s.beginSnapshot(ctx, conn, nil)
			}
			return err
		}
		s.start = *pos
	}
	return nil
}

// checkServer refuses servers whose settings make row-based CDC impossible
// and users that lack replication privileges.
func (s *Source) checkServer(conn *client.Conn) error {
	vars := map[string]string{}
	r, err := conn.Execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin','binlog_format','binlog_row_image','binlog_row_metadata','gtid_mode')")
	if err != nil {
		return fmt.Errorf("reading server variables: %w", err)
	}
	for i := range r.Values {
		k, _ := r.GetString(i, 0)
		v, _ := r.GetString(i, 1)
		vars[k] = strings.ToUpper(v)
	}
	problems := serverProblems(vars)
	if len(problems) > 0 {
		return cdc.Terminal(fmt.Errorf("%w on %s: %s", ErrServerConfig, s.cfg.addr(), strings.Join(problems, "; ")))
	}
	r, err = conn.Execute("SHOW GRANTS FOR CURRENT_USER()")
	if err != nil {
		return fmt.Errorf("reading grants: %w", err)
	}
	var grants strings.Builder
	for i := range r.Values {
		g, _ := r.GetString(i, 0)
		if strings.Contains(g, " ON *.* ") {
			grants.WriteString(strings.ToUpper(g))
			grants.WriteByte('\n')
		}
	}
	if missing := missingPrivileges(grants.String()); len(missing) > 0 {
		return cdc.Terminal(fmt.Errorf("%w: user %q lacks %s on *.*; grant them with GRANT %s ON *.* TO <user>",
			ErrPrivileges, s.cfg.User, strings.Join(missing, ", "), strings.Join(missing, ", ")))
	}
	return nil
}

// serverProblems lists the settings, from SHOW GLOBAL VARIABLES, that make
// row-based CDC impossible, each with its remedy.
func serverProblems(vars map[string]string) []string {
	var problems []string
	if vars["log_bin"] != "ON" && vars["log_bin"] != "1" {
		problems = append(problems, "binary logging is off (log_bin="+vars["log_bin"]+"): start the server with log_bin")
	}
	if vars["binlog_format"] != "ROW" {
		problems = append(problems, "binlog_format is "+vars["binlog_format"]+": set binlog_format=ROW")
	}
	if v, ok := vars["binlog_row_image"]; ok && v != "FULL" {
		problems = append(problems, "binlog_row_image is "+v+": set binlog_row_image=FULL")
	}
	if v := vars["binlog_row_metadata"]; v != "FULL" {
		if v == "" {
			v = "not supported by this server version"
		}
		problems = append(problems, "binlog_row_metadata is "+v+": set binlog_row_metadata=FULL (connectd decodes rows with the table map's column names; schema tracking from DDL is not implemented)")
	}
	return problems
}

// missingPrivileges lists the replication privileges absent from the
// global grants text.
func missingPrivileges(g string) []string {
	if strings.Contains(g, "ALL PRIVILEGES") {
		return nil
	}
	var missing []string
	if !strings.Contains(g, "REPLICATION SLAVE") && !strings.Contains(g, "REPLICATION REPLICA") {
		missing = append(missing, "REPLICATION SLAVE")
	}
	if !strings.Contains(g, "REPLICATION CLIENT") && !strings.Contains(g, "BINLOG MONITOR") {
		missing = append(missing, "REPLICATION CLIENT")
	}
	return missing
}

// currentPosition reads the server's current binlog position and GTIDs.
func currentPosition(conn *client.Conn, flavor string) (position, error) {
	var p position
	r, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		if r, err = conn.Execute("SHOW BINARY LOG STATUS"); err != nil {
			return p, fmt.Errorf("reading binlog position: %w", err)
		}
	}
	if len(r.Values) == 0 {
		return p, cdc.Terminal(fmt.Errorf("%w: SHOW MASTER STATUS is empty: binary logging is off", ErrServerConfig))
	}
	p.File, _ = r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	p.Pos = uint32(pos)
	if flavor == gomysql.MariaDBFlavor {
		g, err := conn.Execute("SELECT BINLOG_GTID_POS(?, ?)", p.File, p.Pos)
		if err != nil {
			return p, fmt.Errorf("reading GTID position: %w", err)
		}
		p.GTIDs, _ = g.GetString(0, 0)
	} else if r.ColumnNumber() >= 5 {
		p.GTIDs, _ = r.GetString(0, 4)
		p.GTIDs = strings.ReplaceAll(p.GTIDs, "\n", "")
	}
	return p, nil
}

// checkAvailable tells whether the server still has the binlog file of pos.
func (s *Source) checkAvailable(conn *client.Conn, pos *position) error {
	if pos.File == "" {
		return nil
	}
	r, err := conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return fmt.Errorf("listing binlog files: %w", err)
	}
	var files []string
	for i := range r.Values {
		f, _ := r.GetString(i, 0)
		files = append(files, f)
		if f == pos.File {
			return nil
		}
	}
	oldest := "none"
	if len(files) > 0 {
		oldest = files[0]
	}
	return purgedError(pos.File, oldest)
}

func purgedError(file, oldest string) error {
	return cdc.Terminal(fmt.Errorf("%w: the stored position is in binlog file %s, which the server has purged (oldest available: %s); "+
		"to recover, take a new snapshot: reset the connector's offsets (connectd offsets reset <connector>) or set snapshot_mode: when_needed; "+
		"to prevent it, keep binlogs longer (binlog_expire_logs_seconds / expire_logs_days)", ErrBinlogPurged, file, oldest))
}

// Ack needs no server-side action: the binlog position lives in the offset
// store only. The first Ack releases a fresh snapshot, which waits until its
// start position is stored before it emits rows.
func (s *Source) Ack(context.Context, cdc.Position) error {
	s.ackOnce.Do(func() { close(s.acked) })
	return nil
}

// Close stops the binlog syncer and closes the snapshot connection.
func (s *Source) Close(context.Context) error {
	if s.snap != nil {
		s.snap.close()
		s.snap = nil
	}
	s.stopStream()
	if s.meta != nil {
		s.meta.Close()
		s.meta = nil
	}
	return nil
}

// Read returns the next snapshot chunk or the next batch of binlog changes.
func (s *Source) Read(ctx context.Context) ([]cdc.Record, error) {
	if s.snap != nil {
		recs, err := s.readSnapshot(ctx)
		if err != nil || len(recs) > 0 {
			return recs, err
		}
	}
	var err error
	if s.syncer == nil {
		err = s.startStream(ctx)
	}
	var recs []cdc.Record
	if err == nil {
		recs, err = s.readStream(ctx)
	}
	if errors.Is(err, ErrBinlogPurged) && s.cfg.SnapshotMode == SnapshotWhenNeeded && !s.streamed {
		// The stored GTIDs are gone from the server: start over with a
		// new snapshot, as snapshot_mode when_needed asks.
		s.log.Warn("stored position is gone from the server; taking a new snapshot (snapshot_mode when_needed)", "err", err)
		s.stopStream()
		conn, cerr := s.connect(ctx)
		if cerr != nil {
			return nil, cerr
		}
		if cerr := s.beginSnapshot(ctx, conn, nil); cerr != nil {
			return nil, cerr
		}
		return s.Read(ctx)
	}
	if len(recs) > 0 {
		s.streamed = true
	}
	return recs, err
}

// warnLogger is the logger handed to go-mysql: only its warnings and errors.
func (s *Source) warnLogger() *slog.Logger {
	return slog.New(levelHandler{min: slog.LevelWarn, h: s.log.Handler()}).With("component", "go-mysql")
}

type levelHandler struct {
	min slog.Level
	h   slog.Handler
}

func (l levelHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.h.Enabled(ctx, lv)
}
func (l levelHandler) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }
func (l levelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return levelHandler{min: l.min, h: l.h.WithAttrs(a)}
}
func (l levelHandler) WithGroup(n string) slog.Handler {
	return levelHandler{min: l.min, h: l.h.WithGroup(n)}
}

// appendPosition encodes a streaming position (no snapshot state).
func appendPosition(dst []byte, file string, pos uint32, gtids string) []byte {
	dst = append(dst, `{"file":`...)
	dst = strconv.AppendQuote(dst, file)
	dst = append(dst, `,"pos":`...)
	dst = strconv.AppendUint(dst, uint64(pos), 10)
	dst = append(dst, `,"gtids":`...)
	dst = strconv.AppendQuote(dst, gtids)
	return append(dst, '}')
}
