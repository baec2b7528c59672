package datastore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"labctl/datastore"
)

const crashChildEnv = "LABCTL_DATASTORE_CRASH_CHILD"

// TestCrashKeepsAcknowledgedWrites runs a child process that writes in a
// loop and prints each write the store acknowledged, kills it with SIGKILL
// mid-stream, reopens the file and checks that every acknowledged write is
// there and that bbolt's consistency check passes. Three rounds on one file,
// so each round also starts from a file left by a kill.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("-short: the crash test runs child processes")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	lastCounter := int64(-1)
	for round := 0; round < 3; round++ {
		acked, counter := runAndKill(t, path, round)
		if len(acked) < 50 {
			t.Fatalf("round %d: the child acknowledged only %d writes before the kill", round, len(acked))
		}
		checkBolt(t, path)
		s, err := datastore.OpenBolt(path, datastore.Config{})
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		ctx := context.Background()
		for key, rev := range acked {
			kv, _, err := s.Get(ctx, key, 0)
			if err != nil {
				t.Fatalf("round %d: acknowledged %q (revision %d) lost: %v", round, key, rev, err)
			}
			if kv.ModRevision != rev {
				t.Fatalf("round %d: %q has revision %d, acknowledged %d", round, key, kv.ModRevision, rev)
			}
		}
		kv, _, err := s.Get(ctx, "/counter", 0)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseInt(string(kv.Value), 10, 64)
		if n < counter || n < lastCounter {
			t.Fatalf("round %d: counter is %d, but %d was acknowledged", round, n, counter)
		}
		lastCounter = n
		// The store goes on from where it was: a new write takes a new revision.
		cur, _, _ := s.Revisions(ctx)
		if rev, err := s.Create(ctx, fmt.Sprintf("/after/%d", round), []byte("x"), 0); err != nil || rev != cur+1 {
			t.Fatalf("write after reopen: revision %d, %v; current was %d", rev, err, cur)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the child on path, reads its acknowledgements for a
// while, kills it and returns every acknowledged key with its revision and
// the highest acknowledged counter value.
func runAndKill(t *testing.T, path string, round int) (map[string]int64, int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsAcknowledgedWrites$", "-test.v=false")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, fmt.Sprintf("LABCTL_CRASH_ROUND=%d", round))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int64{}
	counter := int64(-1)
	killAfter := 300 + 400*round // acknowledgements before the kill
	sc := bufio.NewScanner(out)
	killed := false
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			continue
		}
		rev, _ := strconv.ParseInt(f[2], 10, 64)
		if f[1] == "/counter" {
			counter = rev // the child prints the counter's value here
		} else {
			acked[f[1]] = rev
		}
		if !killed && len(acked) >= killAfter {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("round %d: the child stopped by itself after %d acknowledgements", round, len(acked))
	}
	return acked, counter
}

// crashChild writes until killed: 8 writers creating keys, one bumping a
// counter with compare-and-swap. A line is printed only after the store
// acknowledged the write.
func crashChild(path string) {
	s, err := datastore.OpenBolt(path, datastore.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var mu sync.Mutex
	ack := func(key string, n int64) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, "ack %s %d\n", key, n)
		mu.Unlock()
	}
	round := os.Getenv("LABCTL_CRASH_ROUND")
	for w := 0; w < 8; w++ {
		go func(w int) {
			for i := 0; ; i++ {
				key := fmt.Sprintf("/crash/%s/%d/%d", round, w, i)
				rev, err := s.Create(ctx, key, []byte(strings.Repeat("v", 100+i%900)), 0)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child create:", err)
					os.Exit(2)
				}
				ack(key, rev)
			}
		}(w)
	}
	for {
		kv, _, err := s.Get(ctx, "/counter", 0)
		var n int64
		if err == nil {
			n, _ = strconv.ParseInt(string(kv.Value), 10, 64)
			_, _, err = s.Update(ctx, "/counter", []byte(strconv.FormatInt(n+1, 10)), kv.ModRevision, 0)
		} else {
			_, err = s.Create(ctx, "/counter", []byte("0"), 0)
			n = -1
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child counter:", err)
			os.Exit(2)
		}
		ack("/counter", n+1)
	}
}
