package preflight

import "testing"

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		"/sys/fs/cgroup":    "/sys/fs/cgroup",
		`/mnt/my\040disk`:   "/mnt/my disk",
		`/a\011tab\134back`: "/a\ttab\\back",
		`/trailing\04`:      `/trailing\04`,
		`/not\999octal`:     `/not\999octal`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseMountinfoMalformed(t *testing.T) {
	if _, err := parseMountinfo([]byte("1 2 3\n")); err == nil {
		t.Error("parseMountinfo accepted a line without the separator")
	}
}
