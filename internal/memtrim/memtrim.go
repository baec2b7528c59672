// Package memtrim gives back memory labctl holds without using it: the
// pages of its own executable that only start-up used (DropStartupPages,
// AfterStartup), and the free heap of a process at rest (WhenIdle, in
// idle.go).
//
// labctl is one large binary: kubectl, CoreDNS's plugins, the kubelet and
// every API type live in it, and Go runs every package's initialisation
// whichever command starts. Those initialisers, and the first minutes of
// a server, touch some 100 MB of the binary's code and read-only data,
// which then count in the process's resident set although most of it is
// never used again (`labctl version` alone reaches 100 MB of RSS).
//
// DropStartupPages unmaps those pages from the process with
// MADV_DONTNEED, only in the executable's mappings that cannot have been
// written (not writable, no private dirty pages): their contents stay in
// the page cache, and a page the process needs again comes back on its
// next access by a minor fault, from memory, not disk. Nothing else
// changes. What it gains is modest: a server without its node goes from
// about 130 MB to 45 MB at once, but within seconds the garbage collector
// and reflection read much of the function and type tables again and it
// settles near 100 MB (about 27 MB saved); with a node running, nodebench
// sees no difference beyond run-to-run noise (BENCHMARKS.md, "The node").
package memtrim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mapping is one line of /proc/self/smaps and what it says of its pages.
type mapping struct {
	start, end uint64
	perms      string
	path       string
	dirty      int64 // Private_Dirty, kB
}

// droppable tells whether m's pages can be dropped and read back from the
// file unchanged: a mapping of exe, never writable, with no page the
// process changed.
func (m mapping) droppable(exe string) bool {
	return m.path == exe && !strings.Contains(m.perms, "w") && m.dirty == 0 && m.end > m.start
}

// parseSmaps reads the mappings of an smaps file.
func parseSmaps(r io.Reader) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if addr := strings.SplitN(fields[0], "-", 2); len(addr) == 2 && len(fields) >= 5 && !strings.HasSuffix(fields[0], ":") {
			start, err1 := strconv.ParseUint(addr[0], 16, 64)
			end, err2 := strconv.ParseUint(addr[1], 16, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("smaps: bad address range %q", fields[0])
			}
			m := mapping{start: start, end: end, perms: fields[1]}
			if len(fields) >= 6 {
				m.path = strings.Join(fields[5:], " ")
			}
			out = append(out, m)
			continue
		}
		if fields[0] == "Private_Dirty:" && len(out) > 0 && len(fields) >= 2 {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("smaps: bad Private_Dirty %q", fields[1])
			}
			out[len(out)-1].dirty = kb
		}
	}
	return out, sc.Err()
}

// DropStartupPages unmaps the clean read-only pages of the running
// executable and returns how many bytes of mappings it advised.
func DropStartupPages() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	// A binary written moments ago (just installed or built) has pages
	// the kernel has not written back, which smaps counts as dirty: write
	// them first, so that they count as the clean copies they are.
	if bin, err := os.Open(exe); err == nil {
		bin.Sync()
		bin.Close()
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	maps, err := parseSmaps(f)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	var advised int64
	for _, m := range maps {
		if !m.droppable(exe) {
			continue
		}
		// The raw call: the range is not Go memory, so no slice of it.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED); errno != 0 {
			return advised, fmt.Errorf("memtrim: madvise %x-%x: %w", m.start, m.end, errno)
		}
		advised += int64(m.end - m.start)
	}
	return advised, nil
}

// Logger is what AfterStartup reports to.
type Logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
}

// AfterStartup drops the start-up pages once, delay after it is called,
// unless ctx ends first.
func AfterStartup(ctx context.Context, delay time.Duration, log Logger) {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	before := residentKB()
	n, err := DropStartupPages()
	if err != nil {
		log.Warn("giving back start-up memory", "err", err)
		return
	}
	log.Info("gave back the executable's start-up pages", "advisedMiB", n>>20, "rssMiBBefore", before>>10, "rssMiBAfter", residentKB()>>10)
}

// residentKB is the process's VmRSS.
func residentKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb
			}
		}
	}
	return 0
}
