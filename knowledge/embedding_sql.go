package knowledge

// The SQL embedding.go runs: calls of the embed pipeline's functions (migrations/0005), which
// keep the claim, lease and write rules in one place for every worker.
const (
	// renewLeaseSQL extends the lease on a claimed batch's rows still held under its claim and
	// returns how many are.
	renewLeaseSQL = `SELECT cairn_knowledge_renew($1, $2, $3, $4)`

	// nextLeaseEndSQL returns when the soonest lease on a pending row of a kind ends (NULL: none
	// is held).
	nextLeaseEndSQL = `SELECT cairn_knowledge_next_lease_end($1)`

	// claimSQL leases up to $2 pending rows of kind $1 for $3 and returns them with their text
	// and the batch's claim token.
	claimSQL = `SELECT id, content_hash, body, claim FROM cairn_knowledge_claim($1, $2, $3)`

	// putVectorsSQL writes a claimed batch's vectors where the row's text is unchanged, records
	// the kind's model with its first vectors, and returns how many it wrote.
	putVectorsSQL = `SELECT cairn_knowledge_put_vectors($1, $2, $3, $4, $5, $6, $7, $8)`

	// settleSQL marks claimed rows failed with a reason or, with none, releases their lease; it
	// returns how many rows it changed.
	settleSQL = `SELECT cairn_knowledge_settle($1, $2, $3, $4, $5, $6)`

	// retryModelFailuresSQL makes pending again the rows of both kinds that failed for a reason
	// no input was to blame for, and counts them.
	retryModelFailuresSQL = `WITH e AS (
		UPDATE entities SET embed_state = 'pending', embed_error = NULL, embed_failed_model = NULL
		WHERE embed_state = 'failed' AND embed_failed_model IS NOT NULL RETURNING 1),
	p AS (
		UPDATE episodes SET embed_state = 'pending', embed_error = NULL, embed_failed_model = NULL
		WHERE embed_state = 'failed' AND embed_failed_model IS NOT NULL RETURNING 1)
	SELECT (SELECT count(*) FROM e) + (SELECT count(*) FROM p)`
)
