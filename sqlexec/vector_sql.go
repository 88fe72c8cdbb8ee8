package sqlexec

// The SQL vector.go runs before a vector search, in its read-only transaction. The search and
// the insert are assembled from the catalog's names, quoted, and the caller's where clause, so
// they are built where they run.
const (
	// efSearchSQL (candidates) sets, for the transaction, how many candidates an HNSW scan keeps.
	efSearchSQL = `SET LOCAL hnsw.ef_search = %d`

	// iterativeScanSQL lets HNSW scans, for the transaction, go on in distance order until a
	// filter leaves enough rows (pgvector 0.8+).
	iterativeScanSQL = `SET LOCAL hnsw.iterative_scan = strict_order`
)
