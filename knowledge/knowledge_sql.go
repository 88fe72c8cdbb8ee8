package knowledge

// The SQL knowledge.go runs.
const (
	// modelsSQL reads the model recorded for each kind that has vectors.
	modelsSQL = `SELECT kind, provider, model, dimensions FROM knowledge_models`

	// columnDimensionsSQL reads the type modifier of the table $1's embedding column: its
	// vector size.
	columnDimensionsSQL = `SELECT atttypmod FROM pg_attribute
	WHERE attrelid = to_regclass($1) AND attname = 'embedding' AND NOT attisdropped`
)
