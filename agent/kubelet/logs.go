package kubelet

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Container logs (logs.go): each container's stdout and stderr go to a
// file in the CRI log format, as upstream's kubelet and `kubectl logs`
// expect them:
//
//	/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart count>.log
//
// one line per line of output, "<RFC3339Nano time> <stream> <tag> <text>",
// where stream is stdout or stderr and tag is F for a full line or P for
// a part of a line longer than maxLogLine (the rest follows in further
// lines, the last one F), as containerd's CRI plugin writes them.
//
// The containerd shim hands the output to labctl through FIFOs, and
// labctl writes the file; a restarted agent attaches to the FIFOs again
// (see podRuntime.Adopt). Rotation is yet to come.

// maxLogLine is the longest line written as one (containerd's CRI
// max_container_log_line_size default).
const maxLogLine = 16 * 1024

// podLogDir is the directory of a pod's container logs under logRoot.
func podLogDir(logRoot, namespace, name string, uid types.UID) string {
	return filepath.Join(logRoot, namespace+"_"+name+"_"+string(uid))
}

// containerLogPath is the log file of one run of a container.
func containerLogPath(logRoot, namespace, name string, uid types.UID, container string, restart int32) string {
	return filepath.Join(podLogDir(logRoot, namespace, name, uid), container, strconv.Itoa(int(restart))+".log")
}

// criLog is one container run's log file; its streams write to it.
type criLog struct {
	mu  sync.Mutex
	f   *os.File
	now func() time.Time
	buf []byte
}

// openCRILog opens (appending) the log file at path, making its directory.
func openCRILog(path string) (*criLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	return &criLog{f: f, now: time.Now}, nil
}

// line writes one CRI log line.
func (l *criLog) line(stream, tag string, text []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	l.buf = append(l.buf[:0], l.now().Format(time.RFC3339Nano)...)
	l.buf = append(l.buf, ' ')
	l.buf = append(l.buf, stream...)
	l.buf = append(l.buf, ' ')
	l.buf = append(l.buf, tag...)
	l.buf = append(l.buf, ' ')
	l.buf = append(l.buf, text...)
	l.buf = append(l.buf, '\n')
	l.f.Write(l.buf)
}

// Close closes the file; later lines are dropped.
func (l *criLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// stream returns the writer of one stream ("stdout" or "stderr").
func (l *criLog) stream(name string) *criStream { return &criStream{log: l, name: name} }

// criStream turns the bytes of one stream into CRI log lines.
type criStream struct {
	log  *criLog
	name string
	mu   sync.Mutex // containerd's copy writes, the runtime flushes
	buf  []byte
	tee  io.Writer // also gets the raw output (attached clients; attach.go)
}

func (s *criStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tee != nil {
		s.tee.Write(p)
	}
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		if i > maxLogLine {
			s.log.line(s.name, "P", s.buf[:maxLogLine])
			s.buf = s.buf[maxLogLine:]
			continue
		}
		line := s.buf[:i]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		s.log.line(s.name, "F", line)
		s.buf = s.buf[i+1:]
	}
	for len(s.buf) > maxLogLine {
		s.log.line(s.name, "P", s.buf[:maxLogLine])
		s.buf = s.buf[maxLogLine:]
	}
	// Keep the buffer from growing without bound through reslicing.
	if cap(s.buf) > 4*maxLogLine && len(s.buf) < maxLogLine {
		s.buf = append([]byte(nil), s.buf...)
	}
	return len(p), nil
}

// flush writes what is left of an unterminated last line, as a full line
// (as containerd does at the end of the stream).
func (s *criStream) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > 0 {
		s.log.line(s.name, "F", s.buf)
		s.buf = nil
	}
}

// parseCRILine splits one line of a CRI log (without its newline).
func parseCRILine(line []byte) (t time.Time, stream, tag string, text []byte, err error) {
	parts := bytes.SplitN(line, []byte{' '}, 4)
	if len(parts) < 3 {
		return t, "", "", nil, fmt.Errorf("not a CRI log line: %q", line)
	}
	t, err = time.Parse(time.RFC3339Nano, string(parts[0]))
	if err != nil {
		return t, "", "", nil, err
	}
	if len(parts) == 4 {
		text = parts[3]
	}
	return t, string(parts[1]), string(parts[2]), text, nil
}
