package api

// The distribution-spec grammars for repository names and tags, checked
// by hand: they run on every request (twice with authentication on, in
// the gate and the handler), and the regular expressions they replace
// cost a manifest HEAD about 5% of its CPU. FuzzNames holds them equal
// to the spec's regular expressions.

const maxNameLen = 255

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// nameOK is
// ^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$
func nameOK(s string) bool {
	n := len(s)
	i := 0
	for {
		// One path component: alphanumeric runs joined by separators.
		if i == n || !alnum(s[i]) {
			return false
		}
		for {
			for i < n && alnum(s[i]) {
				i++
			}
			if i == n {
				return true
			}
			switch s[i] {
			case '.':
				i++
			case '_':
				i++
				if i < n && s[i] == '_' {
					i++
				}
			case '-':
				for i < n && s[i] == '-' {
					i++
				}
			case '/':
				goto next
			default:
				return false
			}
			if i == n || !alnum(s[i]) {
				return false
			}
		}
	next:
		i++ // the slash
	}
}

// tagOK is ^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$
func tagOK(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
		case (c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}
