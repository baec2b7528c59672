package join

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	good := Token{CAHash: hash, Secret: "s3cret"}
	if got, err := Parse(" " + good.String() + "\n"); err != nil || got != good {
		t.Errorf("Parse(%q) = %v, %v", good.String(), got, err)
	}
	if got, err := Parse("s3cret"); err != nil || got != (Token{Secret: "s3cret"}) {
		t.Errorf("a bare secret: %v, %v", got, err)
	}
	for _, bad := range []string{"", "K10" + hash, "K10" + hash + "::node:x", "K10zz::server:x", "K10" + strings.Repeat("zz", 32) + "::server:x", "two words"} {
		if _, err := Parse(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("Parse(%q): %v, want ErrBadToken", bad, err)
		}
	}
}

func TestEnsureSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "server", "token")
	a, err := EnsureSecret(file)
	if err != nil || len(a) != 32 {
		t.Fatalf("first: %q %v", a, err)
	}
	if b, err := EnsureSecret(file); err != nil || b != a {
		t.Errorf("second: %q %v, want the same %q", b, err, a)
	}
}
