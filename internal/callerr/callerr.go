// Package callerr marks the errors a caller can fix — a bad argument, a name that does not
// exist, a write that lost a race — as opposed to faults of cairn or the database. Front ends
// branch on the mark (a tool error the model acts on, logged quietly) without knowing every
// domain package's error types.
package callerr

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Error is implemented by every error the caller can fix.
type Error interface {
	error
	// CallerCanFix marks the type; it does nothing.
	CallerCanFix()
}

// Is reports whether err, or an error it wraps, is the caller's to fix.
func Is(err error) bool {
	var e Error
	return errors.As(err, &e)
}

// Input is a bad argument; its message says what was wrong and how to fix it.
type Input struct{ Msg string }

func (e *Input) Error() string { return e.Msg }

// CallerCanFix marks Input as the caller's to fix.
func (*Input) CallerCanFix() {}

// Inputf returns an *Input with a formatted message.
func Inputf(format string, args ...any) error {
	return &Input{Msg: fmt.Sprintf(format, args...)}
}

// JSONObject returns v as a JSON object's text, "{}" when v is empty or null, and an *Input
// naming the argument when v is any other JSON value.
func JSONObject(what string, v json.RawMessage) (string, error) {
	if len(v) == 0 || string(v) == "null" {
		return "{}", nil
	}
	var m map[string]any
	if err := json.Unmarshal(v, &m); err != nil {
		return "", Inputf("%s must be a JSON object, e.g. {\"team\": \"search\"}", what)
	}
	return string(v), nil
}
