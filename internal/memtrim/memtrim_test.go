package memtrim

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

const smapsSample = `00400000-02a00000 r-xp 00000000 fd:01 123 /usr/local/bin/labctl
Size:              38912 kB
Rss:               20000 kB
Private_Dirty:         0 kB
02a00000-05000000 r--p 02600000 fd:01 123 /usr/local/bin/labctl
Private_Dirty:         4 kB
05000000-05100000 rw-p 04c00000 fd:01 123 /usr/local/bin/labctl
Private_Dirty:       200 kB
c000000000-c004000000 rw-p 00000000 00:00 0
Private_Dirty:      9000 kB
7f0000000000-7f0000001000 r--p 00000000 fd:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
Private_Dirty:         0 kB
7f0000002000-7f0000003000 r-xp 00000000 fd:01 789 /tmp/a dir/with spaces
Private_Dirty:         0 kB
`

func TestParseSmapsAndChoose(t *testing.T) {
	maps, err := parseSmaps(strings.NewReader(smapsSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 6 {
		t.Fatalf("parsed %d mappings, want 6: %+v", len(maps), maps)
	}
	if maps[5].path != "/tmp/a dir/with spaces" || maps[1].dirty != 4 || maps[0].start != 0x400000 || maps[0].end != 0x2a00000 {
		t.Errorf("parsed: %+v", maps)
	}
	var chosen []int
	for i, m := range maps {
		if m.droppable("/usr/local/bin/labctl") {
			chosen = append(chosen, i)
		}
	}
	// Only the clean text: not the read-only data with a written page,
	// not the writable data, not other files, not anonymous memory.
	if len(chosen) != 1 || chosen[0] != 0 {
		t.Errorf("droppable: %v, want [0]", chosen)
	}
	if _, err := parseSmaps(strings.NewReader("zz-yy r-xp 0 0 0 /x\n")); err == nil {
		t.Error("a bad address range was accepted")
	}
}

// TestDropStartupPages drops this test binary's clean pages and goes on
// running: the code it runs next comes back from the page cache.
func TestDropStartupPages(t *testing.T) {
	before := residentKB()
	n, err := DropStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		exe, _ := os.Readlink("/proc/self/exe")
		t.Fatalf("no clean read-only mapping of %s was dropped", exe)
	}
	after := residentKB()
	if after >= before {
		t.Errorf("RSS %d kB before, %d kB after dropping %d bytes", before, after, n)
	}
	// Still alive and computing.
	if s := strings.Repeat("x", 3); s != "xxx" {
		t.Fatal("the process no longer runs correctly")
	}
}

// TestWhenIdleReturnsTheFreeHeap: a process that went quiet gives back
// free heap that the runtime would have kept (below its heap goal, which
// the live 64 MB put at 128 MB).
func TestWhenIdleReturnsTheFreeHeap(t *testing.T) {
	released := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20)
		live[i][0] = 1
	}
	for i := 0; i < 32; i++ {
		b := make([]byte, 1<<20) // garbage
		b[0] = 1
	}
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
	before := released()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		WhenIdle(ctx, 50*time.Millisecond, 1<<20)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for released() < before+24<<20 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if got := released(); got < before+24<<20 {
		t.Errorf("released %d MB after going quiet, want at least 24 MB more than %d MB", got>>20, before>>20)
	}
	runtime.KeepAlive(live)
}
