package config

// UsageError is a setting that cannot work (a bad connection string, an unknown embedder, an
// address beyond loopback without a token): the operator has to change it, retrying will not
// help. The CLI exits 2 for it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }
