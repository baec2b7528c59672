// Package mountinfo reads /proc/self/mountinfo: the mounts of this
// process's mount namespace, for the code that must unmount what labctl
// mounted (the volume manager, killall) and nothing else.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Mount is one line of mountinfo.
type Mount struct {
	// Point is where it is mounted; Source what (a device, tmpfs, ...).
	Point, FSType, Source string
	// Options are the superblock options.
	Options string
}

// Read returns this process's mounts, in the order they were made.
func Read() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read the mounts: %w", err)
	}
	defer f.Close()
	return Parse(f)
}

// Parse parses mountinfo lines: "id parent major:minor root point
// options [optional...] - fstype source superoptions".
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 6 || sep+2 >= len(fields) {
			return nil, fmt.Errorf("read the mounts: unexpected mountinfo line %q", sc.Text())
		}
		m := Mount{Point: Unescape(fields[4]), FSType: fields[sep+1], Source: Unescape(fields[sep+2])}
		if sep+3 < len(fields) {
			m.Options = fields[sep+3]
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the mounts: %w", err)
	}
	return out, nil
}

// Unescape undoes the kernel's octal escapes (\040 for a space).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
