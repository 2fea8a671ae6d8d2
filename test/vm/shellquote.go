package vm

import "strings"

// shellQuote makes s one word for a POSIX shell (busybox sh in the guest):
// s in single quotes, each quote inside closed, escaped and reopened. It
// quotes everything, so no path, argument or environment value is ever
// interpreted.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellQuoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}
