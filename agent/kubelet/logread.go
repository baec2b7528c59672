package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Reading container logs (logread.go): what `kubectl logs` gets, read
// from the CRI log files logs.go writes, as upstream's kubelet reads them
// (pkg/kubelet/kuberuntime/logs): the last lines (tailLines), those since
// a time, at most so many bytes, with their times in front, and, to
// follow, the lines still to come until the container exits. The parts
// of a long line (tag P) come out joined as the one line they were.

// rfc3339NanoFixed is the time format of `kubectl logs --timestamps`
// (upstream's RFC3339NanoFixed: always nine digits of fraction).
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// logReadOptions say which part of a log to read, as PodLogOptions do.
type logReadOptions struct {
	// Since skips the lines written before it (zero: none skipped).
	Since time.Time
	// TailLines reads only the last so many lines (negative: all).
	TailLines int64
	// LimitBytes stops after so many bytes of output (0 or less: no limit).
	LimitBytes int64
	// Timestamps puts each line's time in front of it.
	Timestamps bool
	// Follow keeps reading as the file grows, until Exited is closed and
	// the file is read to its end. A file replaced by another of the same
	// name (rotated) is read on in the new one.
	Follow bool
	// Exited is closed when the container has exited (nil: never).
	Exited <-chan struct{}
	// Poll is how often a followed file is looked at (default 200ms).
	Poll time.Duration
}

// readCRILog writes the lines of the CRI log file at path that opts ask
// for to stdout and stderr by their stream (a nil writer drops its
// stream). It returns when the lines are written (following: when the
// container exited and its last lines are written), when the byte limit
// is reached, when ctx ends (with its error) or when writing fails.
func readCRILog(ctx context.Context, path string, opts logReadOptions, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("failed to open log file %q: %w", path, err)
	}
	defer func() { f.Close() }()
	if opts.TailLines >= 0 {
		start, err := tailStart(f, opts.TailLines)
		if err != nil {
			return fmt.Errorf("failed to tail %d lines of log file %q: %w", opts.TailLines, path, err)
		}
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return fmt.Errorf("failed to seek %d in log file %q: %w", start, path, err)
		}
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	w := newLogWriter(stdout, stderr, opts)
	r := bufio.NewReaderSize(f, 64*1024)
	var (
		pending []byte // a line whose newline is not written yet
		exited  bool   // the container exited: read to the end, then stop
		moved   bool   // the file was rotated: read to its end, then the new one
		ticker  *time.Ticker
	)
	for {
		line, err := r.ReadBytes('\n')
		switch {
		case err == nil:
			if len(pending) > 0 {
				line = append(pending, line...)
				pending = pending[:0]
			}
			if stop, err := w.write(line[:len(line)-1]); stop || err != nil {
				return err
			}
			continue
		case !errors.Is(err, io.EOF):
			return fmt.Errorf("failed to read log file %q: %w", path, err)
		}
		pending = append(pending, line...)
		if moved {
			// The old file is read to its end (what was written to it
			// after it was renamed too): on with the new one.
			nf, err := os.Open(path)
			if err == nil {
				if len(pending) > 0 {
					if stop, err := w.write(pending); stop || err != nil {
						nf.Close()
						return err
					}
					pending = pending[:0]
				}
				f.Close()
				f, moved = nf, false
				r.Reset(f)
				continue
			}
		}
		if !opts.Follow || exited {
			// The end. A last line without its newline (the writer is
			// closed, or in the middle of it) goes out as it is.
			if len(pending) > 0 {
				_, err := w.write(pending)
				return err
			}
			return nil
		}
		if ticker == nil {
			ticker = time.NewTicker(poll)
			defer ticker.Stop()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-opts.Exited:
			// Whatever it wrote before it exited is in the file now:
			// read on to the end once more.
			exited = true
		case <-ticker.C:
			moved = rotated(f, path)
		}
	}
}

// rotated tells whether path is no longer the file f has open.
func rotated(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	if err != nil {
		return false
	}
	return !os.SameFile(a, b)
}

// tailStart is the offset in f of the n-th last line, counting the lines
// that end with a full (F) line; the parts of a line being written at
// the end (P lines without their F yet) come with it, uncounted.
func tailStart(f *os.File, n int64) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	switch {
	case n < 0:
		return 0, nil
	case n == 0:
		return size, nil
	}
	var (
		buf   = make([]byte, 32*1024)
		hdr   = make([]byte, 96)
		count int64
		last  int64 = -1 // the newline that ends the line looked at
	)
	// full tells whether the line starting at off ends a line (tag F, or
	// a line that is not in the CRI format at all).
	full := func(off int64) bool {
		k, _ := f.ReadAt(hdr, off)
		fields := bytes.SplitN(hdr[:k], []byte{' '}, 4)
		if len(fields) < 3 {
			return true
		}
		tag, _, _ := strings.Cut(string(fields[2]), ":")
		return tag != "P"
	}
	// line looks at the line from start to its newline at end: the n+1-th
	// full line from the end is where the tail starts after.
	line := func(start, end int64) (int64, bool) {
		if !full(start) {
			return 0, false
		}
		if count == n {
			return end + 1, true
		}
		count++
		return 0, false
	}
	for off := size; off > 0; {
		k := int64(len(buf))
		if off < k {
			k = off
		}
		off -= k
		if _, err := f.ReadAt(buf[:k], off); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := k - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			q := off + i
			if last >= 0 {
				if start, ok := line(q+1, last); ok {
					return start, nil
				}
			}
			last = q
		}
	}
	if last >= 0 {
		if start, ok := line(0, last); ok {
			return start, nil
		}
	}
	return 0, nil
}

// logWriter writes CRI log lines to their stream's writer as the options
// say.
type logWriter struct {
	out        map[string]io.Writer
	since      time.Time
	timestamps bool
	remain     int64 // bytes still to write; negative: no limit
	// cont: the stream's last part was a P, the next continues its line;
	// skip: the stream's line being continued is before since.
	cont, skip map[string]bool
	buf        []byte
}

func newLogWriter(stdout, stderr io.Writer, opts logReadOptions) *logWriter {
	w := &logWriter{
		out:        map[string]io.Writer{},
		since:      opts.Since,
		timestamps: opts.Timestamps,
		remain:     -1,
		cont:       map[string]bool{},
		skip:       map[string]bool{},
	}
	if stdout != nil {
		w.out["stdout"] = stdout
	}
	if stderr != nil {
		w.out["stderr"] = stderr
	}
	if opts.LimitBytes > 0 {
		w.remain = opts.LimitBytes
	}
	return w
}

// write writes one CRI log line (without its newline). stop says that the
// byte limit is reached or writing failed (err).
func (w *logWriter) write(line []byte) (stop bool, err error) {
	t, stream, tag, text, err := parseCRILine(line)
	if err != nil {
		return false, nil // not a CRI log line: skipped, as upstream does
	}
	tag, _, _ = strings.Cut(tag, ":")
	partial := tag == "P"
	first := !w.cont[stream]
	w.cont[stream] = partial
	if first {
		w.skip[stream] = t.Before(w.since)
	}
	dst := w.out[stream]
	if dst == nil || w.skip[stream] {
		return false, nil
	}
	b := w.buf[:0]
	if first && w.timestamps {
		b = t.AppendFormat(b, rfc3339NanoFixed)
		b = append(b, ' ')
	}
	b = append(b, text...)
	if !partial {
		b = append(b, '\n')
	}
	w.buf = b
	if w.remain >= 0 && int64(len(b)) > w.remain {
		b = b[:w.remain]
	}
	n, err := dst.Write(b)
	if w.remain >= 0 {
		w.remain -= int64(n)
	}
	if err != nil {
		return true, err
	}
	return w.remain == 0, nil
}
