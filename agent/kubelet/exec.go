package kubelet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
)

// Exec (exec.go): a process run in a running container, for `kubectl
// exec`, exec probes and exec lifecycle hooks. It joins the container's
// namespaces and cgroup, with the container's environment, user and
// working directory, as containerd's CRI does it.

// execOptions are an Exec's streams. Nil streams are not connected.
type execOptions struct {
	Cmd            []string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// TTY gives the process a terminal (Stderr then goes to Stdout).
	TTY bool
	// Resize receives the terminal's new sizes (TTY only).
	Resize <-chan terminalSize
	// Timeout kills the process after it (0: none).
	Timeout time.Duration
}

// terminalSize is a terminal's size in characters.
type terminalSize struct{ Width, Height uint16 }

// errExecTimeout is Exec's error when the timeout killed the process.
var errExecTimeout = errors.New("command timed out")

// Exec runs opts.Cmd in the container with id and returns its exit code.
// It returns when the process exited and its output is copied.
func (r *podRuntime) Exec(ctx context.Context, id string, opts execOptions) (int, error) {
	if len(opts.Cmd) == 0 {
		return -1, errors.New("exec: no command")
	}
	cont, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return -1, fmt.Errorf("exec: container %s: %w", id, err)
	}
	task, err := cont.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return -1, fmt.Errorf("exec: container %s is not running", id)
		}
		return -1, err
	}
	if st, err := task.Status(ctx); err != nil || st.Status != ctrd.Running {
		return -1, fmt.Errorf("exec: container %s is not running", id)
	}
	spec, err := cont.Spec(ctx)
	if err != nil {
		return -1, err
	}
	pspec := *spec.Process
	pspec.Args = opts.Cmd
	pspec.Terminal = opts.TTY
	pspec.ConsoleSize = nil

	var b [8]byte
	rand.Read(b[:])
	execID := "exec-" + hex.EncodeToString(b[:])

	// When the caller's stdin ends, the process's is closed (a FIFO alone
	// would keep it open).
	var stdin io.Reader
	eof := make(chan struct{})
	if opts.Stdin != nil {
		stdin = &eofReader{r: opts.Stdin, eof: eof}
	}
	streams := []cio.Opt{cio.WithStreams(stdin, orDiscard(opts.Stdout), orDiscard(opts.Stderr))}
	if opts.TTY {
		streams = append(streams, cio.WithTerminal)
	}
	creator := cio.NewCreator(append(streams, cio.WithFIFODir(r.fifoRoot()))...)
	proc, err := task.Exec(ctx, execID, &pspec, creator)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	defer func() {
		if _, err := proc.Delete(context.WithoutCancel(ctx), ctrd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			r.cfg.Logger.Warn("cannot delete an exec process", "container", id, "exec", execID, "err", err)
		}
	}()
	exitCh, err := proc.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return -1, err
	}
	if err := proc.Start(ctx); err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	done := make(chan struct{})
	defer close(done)
	if opts.Stdin != nil {
		go func() {
			select {
			case <-eof:
				proc.CloseIO(context.WithoutCancel(ctx), ctrd.WithStdinCloser)
			case <-done:
			}
		}()
	}
	if opts.TTY && opts.Resize != nil {
		go func() {
			for size := range opts.Resize {
				proc.Resize(context.WithoutCancel(ctx), uint32(size.Width), uint32(size.Height))
			}
		}()
	}
	var timeout <-chan time.Time
	if opts.Timeout > 0 {
		t := time.NewTimer(opts.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case st := <-exitCh:
		code, _, err := st.Result()
		if pio := proc.IO(); pio != nil {
			pio.Wait()
		}
		if err != nil {
			return -1, err
		}
		return int(code), nil
	case <-timeout:
		proc.Kill(context.WithoutCancel(ctx), 9)
		<-exitCh
		return -1, errExecTimeout
	case <-ctx.Done():
		proc.Kill(context.WithoutCancel(ctx), 9)
		<-exitCh
		return -1, ctx.Err()
	}
}

// fifoRoot is where exec processes' FIFOs are made.
func (r *podRuntime) fifoRoot() string { return r.cfg.Root + "/fifo" }

// eofReader closes eof when r ends.
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
