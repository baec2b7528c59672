package images

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/errdefs"

	"labctl/internal/atomicfile"
)

// DefaultWatchInterval is how often a Watcher looks at its folder.
const DefaultWatchInterval = 5 * time.Second

// Watcher imports the image tarballs in a folder
// (<data-dir>/agent/images): all of them at start, and any file that
// appears or changes later. It records what it imported (file name, size,
// modification time, the images it gave) in a state file, so that a
// restart imports again only what changed, or what is no longer in
// containerd. Files whose names do not end in .tar, .tar.gz, .tgz,
// .tar.zst or .tzst, and hidden files, are left alone. A file that fails
// to import is tried again when it changes, and at the next start.
type Watcher struct {
	// Dir is the folder to watch.
	Dir string
	// Manager imports the files.
	Manager *Manager
	// Interval is the time between two looks at the folder (default
	// DefaultWatchInterval). A new or changed file is imported once it has
	// not changed for one interval, so that a file being copied in is not
	// read half-written.
	Interval time.Duration
	// StateFile records the imports (default <Dir>/.labctl-imported.json).
	StateFile string
	// Logger receives what was imported and what failed (default: discarded).
	Logger *slog.Logger
	// Imported, when set, is called after each import, with the error if it
	// failed.
	Imported func(file string, imgs []Image, err error)

	mu      sync.Mutex
	synced  bool
	state   map[string]fileRecord
	pending map[string]fileStat // files seen changed at the last look
}

type fileStat struct {
	Size    int64
	ModTime time.Time
}

type fileRecord struct {
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	Images  []string  `json:"images,omitempty"`
	Error   string    `json:"error,omitempty"`
}

func (w *Watcher) defaults() {
	if w.Interval <= 0 {
		w.Interval = DefaultWatchInterval
	}
	if w.StateFile == "" {
		w.StateFile = filepath.Join(w.Dir, ".labctl-imported.json")
	}
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	if w.pending == nil {
		w.pending = map[string]fileStat{}
	}
}

// ImportAll is the import at start: it imports every tarball in the folder
// that it has not imported before in this form, that failed before, or
// whose images are gone from containerd, and returns the errors of the
// files that failed. The
// kubelet calls it before it starts pods, so that offline images are there.
func (w *Watcher) ImportAll(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.defaults()
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		return err
	}
	w.load()
	err := w.scan(ctx, true)
	w.synced = true
	return err
}

// Run imports at start (unless ImportAll did) and then every Interval,
// until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	w.mu.Lock()
	synced := w.synced
	w.mu.Unlock()
	if !synced {
		if err := w.ImportAll(ctx); err != nil {
			w.Logger.Error("importing images failed", "dir", w.Dir, "err", err)
		}
	}
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		if err := w.scan(ctx, false); err != nil && ctx.Err() == nil {
			w.Logger.Error("importing images failed", "dir", w.Dir, "err", err)
		}
		w.mu.Unlock()
	}
}

// load reads the state file; a missing or damaged one means nothing was
// imported.
func (w *Watcher) load() {
	w.state = map[string]fileRecord{}
	b, err := os.ReadFile(w.StateFile)
	if err != nil {
		return
	}
	if err := json.Unmarshal(b, &w.state); err != nil {
		w.Logger.Warn("ignoring a damaged import record", "file", w.StateFile, "err", err)
		w.state = map[string]fileRecord{}
	}
}

func (w *Watcher) save() {
	b, err := json.MarshalIndent(w.state, "", "  ")
	if err == nil {
		err = atomicfile.Write(w.StateFile, append(b, '\n'), 0o644)
	}
	if err != nil {
		w.Logger.Warn("cannot record the imports", "file", w.StateFile, "err", err)
	}
}

// scan looks at the folder once and imports what needs it. At start
// (startup) files are imported at once, and recorded ones whose images are
// gone are imported again; later a file must keep its size and time for
// one look before it is imported.
func (w *Watcher) scan(ctx context.Context, startup bool) error {
	entries, err := os.ReadDir(w.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var errs []error
	seen := map[string]bool{}
	dirty := false
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !IsTarball(name) {
			continue
		}
		path := filepath.Join(w.Dir, name)
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		seen[name] = true
		st := fileStat{Size: fi.Size(), ModTime: fi.ModTime()}
		if rec, ok := w.state[name]; ok && rec.Size == st.Size && rec.ModTime.Equal(st.ModTime) {
			if !startup || (rec.Error == "" && w.allPresent(ctx, rec.Images)) {
				continue
			}
			if rec.Error == "" {
				w.Logger.Info("importing again: its images are gone from containerd", "file", path)
			}
		} else if !startup {
			if p, ok := w.pending[name]; !ok || p != st {
				w.pending[name] = st
				continue
			}
		}
		delete(w.pending, name)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		imgs, err := w.importFile(ctx, path)
		rec := fileRecord{Size: st.Size, ModTime: st.ModTime, Images: names(imgs)}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // not the file's fault: try again next time
			}
			if errdefs.IsUnavailable(err) {
				// containerd is restarting: not the file's fault either.
				errs = append(errs, err)
				continue
			}
			rec.Error = err.Error()
			errs = append(errs, err)
			w.Logger.Error("cannot import image tarball", "file", path, "err", err)
		} else {
			w.Logger.Info("imported image tarball", "file", path, "images", rec.Images)
		}
		w.state[name] = rec
		dirty = true
		if w.Imported != nil {
			w.Imported(path, imgs, err)
		}
	}
	for name := range w.state {
		if !seen[name] {
			delete(w.state, name)
			dirty = true
		}
	}
	for name := range w.pending {
		if !seen[name] {
			delete(w.pending, name)
		}
	}
	if dirty {
		w.save()
	}
	return errors.Join(errs...)
}

func (w *Watcher) importFile(ctx context.Context, path string) ([]Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return w.Manager.Import(ctx, f, path)
}

// allPresent tells whether every named image is still in containerd.
func (w *Watcher) allPresent(ctx context.Context, names []string) bool {
	is := w.Manager.client.ImageService()
	for _, n := range names {
		if _, err := is.Get(ctx, n); errdefs.IsNotFound(err) {
			return false
		}
	}
	return true
}
