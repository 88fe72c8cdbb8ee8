// Package names finds the name a caller probably meant, for "did you mean" hints in errors.
package names

import "strings"

// EditDistance is the Levenshtein distance between a and b in runes, or limit+1 once it is
// certain to exceed limit.
func EditDistance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if Abs(len(ra)-len(rb)) > limit {
		return limit + 1
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Abs is |x|.
func Abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Closest returns the candidate a caller most probably meant by s, or "" when none is near:
// the first nearest by edit distance (at most one typo per three characters: "sqll" → "sql");
// else the shortest that contains s or is contained in it ("tokens" → "tokens_in"); else the
// first that shares a word of three letters or more, words being separated by '_' or '.'
// ("query_vector" → "query_embedding"). Case is ignored.
func Closest(s string, candidates []string) string {
	s = strings.ToLower(s)
	best, bestD := "", len([]rune(s))/3+1
	for _, c := range candidates {
		if d := EditDistance(s, strings.ToLower(c), bestD); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" || len([]rune(s)) < 3 {
		return best
	}
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if len([]rune(lc)) >= 3 && (strings.Contains(lc, s) || strings.Contains(s, lc)) && (best == "" || len(c) < len(best)) {
			best = c
		}
	}
	if best != "" {
		return best
	}
	mine := words(s)
	for _, c := range candidates {
		for w := range words(strings.ToLower(c)) {
			if mine[w] {
				return c
			}
		}
	}
	return ""
}

// words splits a name into its words of three letters or more.
func words(s string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == '_' || r == '.' }) {
		if len([]rune(w)) >= 3 {
			out[w] = true
		}
	}
	return out
}
