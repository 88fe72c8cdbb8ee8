package db

// The SQL db.go runs.
const (
	// currentRoleSQL reads whether the connected role is a superuser, and its name.
	currentRoleSQL = `SELECT rolsuper, rolname FROM pg_roles WHERE rolname = current_user`
)
