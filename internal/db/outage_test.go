package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestAsOutage(t *testing.T) {
	// A real failed connection: nothing listens on the port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	_, connectErr := pgconn.Connect(context.Background(), fmt.Sprintf("host=127.0.0.1 port=%d user=alice dbname=secretdb connect_timeout=2", addr.Port))
	if connectErr == nil {
		t.Fatal("connected to a closed port")
	}

	for _, c := range []struct {
		name   string
		err    error
		effect Effect
		want   string // "" when not an outage
	}{
		{"connect", fmt.Errorf("save checkpoint of wf: %w", connectErr), NotRun, "the database is unavailable (cannot connect); nothing was run"},
		{"server starting", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, MaybeApplied, "(the database system is starting up), so it may or may not have been applied"},
		{"lost mid-call", fmt.Errorf("record execution: %w", io.ErrUnexpectedEOF), MaybeApplied, "may or may not have been applied"},
		{"closed", pgconn.ErrConnClosed, MaybeApplied, "the connection was lost"},
		{"statement error", &pgconn.PgError{Code: "23505", Message: "duplicate key"}, 0, ""},
		{"timeout", &pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}, 0, ""},
		{"cancelled", fmt.Errorf("load: %w", context.Canceled), 0, ""},
		{"other", errors.New("something else"), 0, ""},
	} {
		o := AsOutage(c.err)
		if c.want == "" {
			if o != nil {
				t.Errorf("%s: got outage %q, want none", c.name, o)
			}
			continue
		}
		if o == nil {
			t.Errorf("%s: %v is not an outage", c.name, c.err)
			continue
		}
		msg := o.Error()
		if o.Effect != c.effect || !strings.Contains(msg, c.want) {
			t.Errorf("%s: effect %d %q, want %d containing %q", c.name, o.Effect, msg, c.effect, c.want)
		}
		// The driver's message names the user, host and port; the outage's never does.
		for _, leak := range []string{"alice", "secretdb", "127.0.0.1", fmt.Sprint(addr.Port)} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: %q shows %q", c.name, msg, leak)
			}
		}
		if !errors.Is(o, c.err) && !errors.Is(c.err, o.Unwrap()) {
			t.Errorf("%s: the outage does not wrap the driver's error", c.name)
		}
	}
	if got := AsOutage(fmt.Errorf("x: %w", io.ErrUnexpectedEOF)).NoEffect(); got.Effect != NotApplied || !strings.Contains(got.Error(), "nothing was changed") {
		t.Errorf("NoEffect: %q", got)
	}
}
