package engine

// appendCompactJSON appends src without insignificant whitespace to dst and
// reports whether src is one valid JSON value: what encoding/json.Compact
// does (strings are copied as they are, as it copies them), in a single
// tight pass instead of its scanner's call per byte, which was a twentieth
// of Herald's own CPU per 1 KiB message.
func appendCompactJSON(dst, src []byte) ([]byte, bool) {
	c := compactor{src: src, out: dst}
	c.space()
	ok := c.value()
	c.space()
	if !ok || c.i != len(c.src) {
		return dst, false
	}
	return append(c.out, c.src[c.kept:]...), true
}

// maxJSONDepth is encoding/json's limit on nesting, kept here so that the
// two accept the same documents.
const maxJSONDepth = 10000

// compactor validates src and copies it to out, leaving whitespace out:
// the bytes between two runs of whitespace are copied at once.
type compactor struct {
	src   []byte
	i     int // the next byte to read
	kept  int // src[kept:i] is yet to be copied to out
	out   []byte
	depth int
}

func (c *compactor) peek() byte {
	if c.i < len(c.src) {
		return c.src[c.i]
	}
	return 0
}

func (c *compactor) space() {
	if c.i == len(c.src) || !isSpace(c.src[c.i]) {
		return
	}
	c.out = append(c.out, c.src[c.kept:c.i]...)
	for c.i < len(c.src) && isSpace(c.src[c.i]) {
		c.i++
	}
	c.kept = c.i
}

func (c *compactor) value() bool {
	switch b := c.peek(); {
	case b == '{':
		return c.container('}', true)
	case b == '[':
		return c.container(']', false)
	case b == '"':
		return c.string()
	case b == '-' || isDigit(b):
		return c.number()
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	}
	return false
}

// container reads an object (keyed) or an array, up to its closing byte.
func (c *compactor) container(end byte, keyed bool) bool {
	if c.depth++; c.depth > maxJSONDepth {
		return false
	}
	c.i++
	c.space()
	if c.peek() == end {
		c.i++
		c.depth--
		return true
	}
	for {
		c.space()
		if keyed {
			if c.peek() != '"' || !c.string() {
				return false
			}
			c.space()
			if c.peek() != ':' {
				return false
			}
			c.i++
			c.space()
		}
		if !c.value() {
			return false
		}
		c.space()
		switch c.peek() {
		case ',':
			c.i++
		case end:
			c.i++
			c.depth--
			return true
		default:
			return false
		}
	}
}

func (c *compactor) string() bool {
	c.i++ // the opening quote
	for c.i < len(c.src) {
		switch b := c.src[c.i]; {
		case b == '"':
			c.i++
			return true
		case b == '\\':
			switch c.at(1) {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				c.i += 2
			case 'u':
				for k := 2; k < 6; k++ {
					if !isHex(c.at(k)) {
						return false
					}
				}
				c.i += 6
			default:
				return false
			}
		case b < 0x20:
			return false
		default:
			c.i++
		}
	}
	return false
}

// at returns the byte n past the current one, 0 past the end.
func (c *compactor) at(n int) byte {
	if c.i+n < len(c.src) {
		return c.src[c.i+n]
	}
	return 0
}

func (c *compactor) number() bool {
	if c.peek() == '-' {
		c.i++
	}
	switch b := c.peek(); {
	case b == '0':
		c.i++
	case b >= '1' && b <= '9':
		c.digits()
	default:
		return false
	}
	if c.peek() == '.' {
		c.i++
		if c.digits() == 0 {
			return false
		}
	}
	if b := c.peek(); b == 'e' || b == 'E' {
		c.i++
		if b := c.peek(); b == '+' || b == '-' {
			c.i++
		}
		if c.digits() == 0 {
			return false
		}
	}
	return true
}

func (c *compactor) digits() int {
	start := c.i
	for c.i < len(c.src) && isDigit(c.src[c.i]) {
		c.i++
	}
	return c.i - start
}

func (c *compactor) literal(word string) bool {
	if len(c.src)-c.i < len(word) || string(c.src[c.i:c.i+len(word)]) != word {
		return false
	}
	c.i += len(word)
	return true
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isHex(b byte) bool { return isDigit(b) || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' }
