package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"labctl/networking"
)

// Attach and port-forwarding (attach.go). Attach is `kubectl attach`
// and `kubectl run -i`: a client
// joined to a running container's stdin and its live output, as
// containerd's CRI does it. A container with `stdin: true` has its stdin
// fed from a pipe that the attached clients write to; with `stdinOnce`
// the container's stdin closes when the first attached client's stdin
// ends. The output is copied to the attached clients as it is written to
// the log (criStream's tee), each client through a queue of its own, so
// that a slow client never holds up the container; one that falls too
// far behind is dropped. A container adopted after an agent restart has
// its output attachable, but its stdin is gone (it saw EOF when the old
// agent's end of the FIFO closed).

// attachQueue is how many writes of output a client may lag behind.
const attachQueue = 256

// attachIO is a running container's stdin and its attached clients.
type attachIO struct {
	// stdin feeds the container's stdin; nil without one.
	stdin     *io.PipeWriter
	stdinOnce bool
	tty       bool

	mu         sync.Mutex
	clients    map[*attachClient]struct{}
	stdinTaken bool // a stdinOnce container's stdin went to an attach
	closed     bool
}

// newAttachIO gives rc its attachIO, the output of its streams going to
// the attached clients too. With stdin it returns the reader the
// container's stdin is to be copied from (else nil).
func newAttachIO(rc *runningContainer, stdin, stdinOnce, tty bool) io.Reader {
	a := &attachIO{stdinOnce: stdinOnce, tty: tty, clients: map[*attachClient]struct{}{}}
	rc.attach = a
	rc.stdout.setTee(a.output("stdout"))
	rc.stderr.setTee(a.output("stderr"))
	if !stdin {
		return nil
	}
	pr, pw := io.Pipe()
	a.stdin = pw
	return pr
}

// close ends the attached clients (after they got the output written so
// far) and the container's stdin: the container exited. Nil is allowed.
func (a *attachIO) close() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.closed = true
	for c := range a.clients {
		close(c.queue)
	}
	a.clients = map[*attachClient]struct{}{}
	if a.stdin != nil {
		a.stdin.Close()
	}
}

// attachClient is one attached client's output.
type attachClient struct {
	stdout, stderr io.Writer // nil: not wanted
	queue          chan attachChunk
	// gone is closed when the client's output ended: all written after
	// the container exited, or writing failed, or it fell behind.
	gone chan struct{}
}

type attachChunk struct {
	stream string
	data   []byte
}

// output is the writer of one stream's output to the clients.
func (a *attachIO) output(stream string) io.Writer {
	return attachOutput{a: a, stream: stream}
}

type attachOutput struct {
	a      *attachIO
	stream string
}

func (o attachOutput) Write(p []byte) (int, error) {
	a := o.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.clients) == 0 || len(p) == 0 {
		return len(p), nil
	}
	data := append([]byte(nil), p...)
	for c := range a.clients {
		select {
		case c.queue <- attachChunk{stream: o.stream, data: data}:
		default:
			// Too far behind: it loses the rest rather than the
			// container waiting for it.
			delete(a.clients, c)
			close(c.queue)
		}
	}
	return len(p), nil
}

// add attaches a client's output writers; it is false when the container
// has exited.
func (a *attachIO) add(stdout, stderr io.Writer) (*attachClient, bool) {
	c := &attachClient{stdout: stdout, stderr: stderr, queue: make(chan attachChunk, attachQueue), gone: make(chan struct{})}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, false
	}
	a.clients[c] = struct{}{}
	a.mu.Unlock()
	go c.run()
	return c, true
}

// remove detaches a client.
func (a *attachIO) remove(c *attachClient) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.clients[c]; ok {
		delete(a.clients, c)
		close(c.queue)
	}
}

// run writes the client's queue to its writers until the queue is
// closed or a write fails.
func (c *attachClient) run() {
	defer close(c.gone)
	for chunk := range c.queue {
		w := c.stdout
		if chunk.stream == "stderr" {
			w = c.stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(chunk.data); err != nil {
			return // the rest is dropped: the queue fills, and goes
		}
	}
}

// takeStdin returns the container's stdin for one attach, nil when the
// container has none (or a stdinOnce container's is used up).
func (a *attachIO) takeStdin() *io.PipeWriter {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stdin == nil || a.closed || a.stdinTaken {
		return nil
	}
	if a.stdinOnce {
		a.stdinTaken = true
	}
	return a.stdin
}

// attachOptions are an Attach's streams; nil ones are not attached.
type attachOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// TTY: the client has a terminal; Resize gets its new sizes.
	TTY    bool
	Resize <-chan terminalSize
}

// errNotRunning is returned by Attach for a container that is not
// running (or not run by this agent).
var errNotRunning = errors.New("container is not running")

// Attach joins the client's streams to the running container with id:
// its stdin (when the container has one) and its output from now on. It
// returns when the container exits (and its last output is written),
// when the client's stdin ends (for a container without stdinOnce: the
// client detached; with stdinOnce the container's stdin closes instead,
// and the output goes on), when writing to the client fails or when ctx
// ends.
func (r *podRuntime) Attach(ctx context.Context, id string, opts attachOptions) error {
	r.mu.Lock()
	rc := r.running[id]
	if rc == nil {
		r.mu.Unlock()
		return fmt.Errorf("attach to container %s: %w", id, errNotRunning)
	}
	if rc.attach == nil {
		// Adopted: output only.
		newAttachIO(rc, false, false, false)
	}
	a := rc.attach
	r.mu.Unlock()

	stderr := opts.Stderr
	if a.tty {
		stderr = nil // a terminal has one stream
	}
	c, ok := a.add(opts.Stdout, stderr)
	if !ok {
		return fmt.Errorf("attach to container %s: %w", id, errNotRunning)
	}
	defer a.remove(c)

	var stdinEnded chan struct{}
	if opts.Stdin != nil {
		if w := a.takeStdin(); w != nil {
			stdinEnded = make(chan struct{})
			go func() {
				io.Copy(w, opts.Stdin)
				if a.stdinOnce {
					w.Close()
				}
				close(stdinEnded)
			}()
		}
	}
	if opts.TTY && opts.Resize != nil {
		go func() {
			for size := range opts.Resize {
				if err := rc.task.Resize(context.WithoutCancel(ctx), uint32(size.Width), uint32(size.Height)); err != nil {
					r.cfg.Logger.Debug("cannot resize a container's terminal", "container", id, "err", err)
				}
			}
		}()
	}
	for {
		select {
		case <-c.gone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-stdinEnded:
			if !a.stdinOnce {
				return nil
			}
			stdinEnded = nil // the container's stdin is closed: output goes on
		}
	}
}

// setTee makes the stream's raw output go to w as well (nil: not).
func (s *criStream) setTee(w io.Writer) {
	s.mu.Lock()
	s.tee = w
	s.mu.Unlock()
}

// PortForward copies between stream and a connection to port on the
// pod's loopback address (in its network namespace; the node's for a
// hostNetwork pod), as containerd's CRI does. It returns when the pod's
// side of the connection ends (the client's end only half-closes it) or
// ctx ends.
func (r *podRuntime) PortForward(ctx context.Context, uid types.UID, port int32, stream io.ReadWriteCloser) error {
	sb, err := r.loadSandbox(string(uid))
	if err != nil {
		return fmt.Errorf("no sandbox of pod %s: %w", uid, err)
	}
	var conn net.Conn
	dial := func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err4 := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		if err4 == nil {
			conn = c
			return nil
		}
		c, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", strconv.Itoa(int(port))))
		if err6 == nil {
			conn = c
			return nil
		}
		return fmt.Errorf("failed to connect to localhost:%d inside namespace %q, IPv4: %v IPv6 %v", port, sb.NetNS, err4, err6)
	}
	if sb.NetNS == "" {
		err = dial()
	} else {
		err = networking.InNetNS(sb.NetNS, dial)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(stream, conn)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("port %d: %w", port, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
