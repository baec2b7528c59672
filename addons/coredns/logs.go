package coredns

import (
	"context"
	"fmt"
	"io"
	golog "log"
	"log/slog"
	"strings"

	"k8s.io/klog/v2"
)

// CoreDNS and caddy write their messages ("[INFO] plugin/reload: ...")
// through the standard library's logger. While Run runs, that logger
// writes into Config.Logger, each line at its level and with the plugin
// that wrote it; Run puts the previous output back when it returns.
func redirectStdlibLog(log *slog.Logger) (restore func()) {
	out, flags, prefix := golog.Writer(), golog.Flags(), golog.Prefix()
	golog.SetOutput(logWriter{log})
	golog.SetFlags(0)
	golog.SetPrefix("")
	return func() {
		golog.SetOutput(out)
		golog.SetFlags(flags)
		golog.SetPrefix(prefix)
	}
}

// logWriter turns CoreDNS's log lines into slog records.
type logWriter struct{ log *slog.Logger }

var logLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[DEBUG] ", slog.LevelDebug},
	{"[INFO] ", slog.LevelInfo},
	{"[WARNING] ", slog.LevelWarn},
	{"[ERROR] ", slog.LevelError},
	{"[FATAL] ", slog.LevelError},
	{"[PANIC] ", slog.LevelError},
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		level := slog.LevelInfo
		for _, l := range logLevels {
			if rest, ok := strings.CutPrefix(line, l.prefix); ok {
				level, line = l.level, rest
				break
			}
		}
		var attrs []any
		if name, msg, ok := strings.Cut(line, ": "); ok && strings.HasPrefix(name, "plugin/") && !strings.Contains(name, " ") {
			attrs, line = []any{"plugin", strings.TrimPrefix(name, "plugin/")}, msg
		}
		w.log.Log(context.Background(), level, line, attrs...)
	}
	return len(p), nil
}

var _ io.Writer = logWriter{}

// keepKlog returns a function that puts back klog's logger as it is now.
// The kubernetes plugin points klog, which every client-go informer in the
// process logs through, at CoreDNS's logger each time a Corefile is
// loaded; labctl's components keep their own.
func keepKlog() (restore func()) {
	prev := klog.Background()
	// Without a logger of its own, klog's Background is klog itself.
	own := fmt.Sprintf("%T", prev.GetSink()) == "*klog.klogger"
	return func() {
		if own {
			klog.ClearLogger()
			return
		}
		klog.SetLoggerWithOptions(prev, klog.ContextualLogger(true))
	}
}
