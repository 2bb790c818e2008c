package config

import (
	"errors"
	"strings"
)

// splitCommand splits a command written in a flag or env variable into
// argv the way a POSIX shell splits words, without anything else a shell
// does (no variables, globs or operators): blanks separate words; single
// quotes keep everything up to the next single quote; double quotes keep
// everything up to the next unescaped double quote, where a backslash
// escapes only $ ` " \ and newline; a backslash outside quotes keeps the
// next character. So `nginx -g "daemon off;"` is three words, as typed
// in a shell.
func splitCommand(s string) ([]string, error) {
	var (
		words []string
		word  strings.Builder
		in    bool // a word has started (even an empty one: '')
	)
	flush := func() {
		if in {
			words = append(words, word.String())
			word.Reset()
			in = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			flush()
		case c == '\\':
			in = true
			if i+1 == len(s) {
				return nil, errors.New("ends with a lone backslash; write \\\\ for a backslash")
			}
			i++
			if s[i] != '\n' { // backslash-newline continues the line
				word.WriteByte(s[i])
			}
		case c == '\'':
			in = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("has an unbalanced single quote (')")
			}
			word.WriteString(s[i+1 : i+1+end])
			i += 1 + end
		case c == '"':
			in = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				word.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New(`has an unbalanced double quote (")`)
			}
		default:
			in = true
			word.WriteByte(c)
		}
	}
	flush()
	return words, nil
}
