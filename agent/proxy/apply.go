package proxy

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// A kernel is the proxy's table: the real one through netlink (nft.go),
// or an in-memory fake in the tests.
type kernel interface {
	// begin starts a transaction.
	begin() transaction
	// list reports what the table holds, nil when there is no table.
	list() (*tableContents, error)
	close() error
}

// A transaction collects changes to the table; commit applies them all
// at once (one netlink batch, which the kernel applies whole or not at
// all). The other methods only record.
type transaction interface {
	addTable()
	// writeBaseChain makes base chain c, empty: it adds and flushes it,
	// or, with recreate, adds, deletes and adds it, which also resets its
	// hook and priority.
	writeBaseChain(c baseChain, recreate bool)
	addChain(name string)
	flushChain(name string)
	deleteChain(name string)
	addRule(chain string, r rule)
	addSet(s setSpec)
	addAffinitySet(name string, timeout time.Duration)
	flushSet(name string)
	deleteSet(name string)
	// addElements adds keys to a set, or keys with values to a map.
	addElements(set string, keys []element, values []mapValue)
	deleteElements(set string, keys []element)
	commit() error
}

// tableContents is what list finds in the table.
type tableContents struct {
	chains []string                 // every chain, base chains too
	sets   map[string]time.Duration // every named set and map → its timeout
}

// tableState is what the proxy last applied to the table.
type tableState struct {
	chains   map[string]string // regular chain → its text (chainText)
	maps     map[string]map[element]mapValue
	sets     map[string]map[element]struct{}
	affinity map[string]time.Duration
}

// unknownContent is the text of a chain that was in the table before this
// proxy: it differs from any real text, so the chain is rewritten.
const unknownContent = "\x00unknown"

// staleChainDelay is how long a chain that is no longer used stays,
// flushed, before it is deleted: kernels before 6.2 notice only a moment
// after a verdict map element goes that the chain it named is free, and
// refuse to delete it in the same transaction (kube-proxy waits 1 s too).
const staleChainDelay = time.Second

// A syncer turns desired rulesets into the changes that bring the table
// there, from what it applied last: only the chains whose rules changed
// are rewritten, only the set and map elements that changed are added or
// deleted.
type syncer struct {
	kern kernel
	log  *slog.Logger
	now  func() time.Time

	applied  *tableState          // nil: unknown, the next sync is full
	stale    map[string]time.Time // flushed chains → since when, to delete
	replaced bool                 // base chains recreated once
}

func newSyncer(k kernel, log *slog.Logger) *syncer {
	return &syncer{kern: k, log: log, now: time.Now, stale: map[string]time.Time{}}
}

// syncStats counts what a sync changed.
type syncStats struct {
	full                           bool
	chainsWritten, chainsRemoved   int
	rules                          int
	elementsAdded, elementsDeleted int
	setsAdded, setsDeleted         int
	staleDeleted                   int
}

func (s syncStats) String() string {
	return fmt.Sprintf("full=%t chains written=%d removed=%d rules=%d elements +%d -%d sets +%d -%d stale deleted=%d",
		s.full, s.chainsWritten, s.chainsRemoved, s.rules, s.elementsAdded, s.elementsDeleted,
		s.setsAdded, s.setsDeleted, s.staleDeleted)
}

// nextStale is when the oldest stale chain may be deleted; zero if none.
func (s *syncer) nextStale() time.Time {
	var next time.Time
	for _, t := range s.stale {
		if due := t.Add(staleChainDelay); next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

// sync brings the table to want in one transaction. A full sync (forced,
// or because what was applied is unknown) reads which chains and sets the
// table has, recreates the base chains and rewrites everything; the
// others change only what differs from the last sync.
func (s *syncer) sync(want *ruleset, full bool) (syncStats, error) {
	var st syncStats
	if s.applied == nil {
		full = true
	}
	st.full = full
	st.staleDeleted = s.deleteStale()

	tx := s.kern.begin()
	var cur *tableState
	var leftoverSets []string
	if full {
		contents, err := s.kern.list()
		if err != nil {
			s.applied = nil
			return st, fmt.Errorf("reading the table: %w", err)
		}
		cur, leftoverSets = s.startFull(tx, contents)
	} else {
		cur = s.applied
	}
	s.applied = nil // until the commit succeeds
	now := s.now()
	newStale := map[string]time.Time{}
	reused := map[string]bool{}

	// 1. Chains new to the table, empty for now: the rules, map elements
	// and other chains' jumps below may name them.
	names := sortedKeys(want.chains)
	for _, name := range names {
		if _, ok := cur.chains[name]; !ok {
			tx.addChain(name)
			cur.chains[name] = ""
			reused[name] = true
		}
	}
	if full {
		// The base chains' jumps, now that their targets exist.
		for _, bc := range baseChains {
			for _, r := range bc.rules {
				tx.addRule(bc.name, r)
			}
		}
	}

	// 2. Affinity sets. One whose timeout changed is made again, once the
	// rules that use it are gone.
	for _, name := range sortedKeys(want.affinity) {
		timeout := want.affinity[name]
		old, ok := cur.affinity[name]
		if ok && old == timeout {
			continue
		}
		if ok {
			for chain, text := range cur.chains {
				if text != "" && (text == unknownContent || strings.Contains(text, "@"+name+" ")) {
					tx.flushChain(chain)
					cur.chains[chain] = ""
				}
			}
			tx.deleteSet(name)
			st.setsDeleted++
		}
		tx.addAffinitySet(name, timeout)
		cur.affinity[name] = timeout
		st.setsAdded++
	}

	// 3. The chains whose rules changed.
	for _, name := range names {
		rules := want.chains[name]
		text := chainText(rules)
		if cur.chains[name] == text {
			continue
		}
		if cur.chains[name] != "" {
			tx.flushChain(name)
		}
		for _, r := range rules {
			tx.addRule(name, r)
		}
		cur.chains[name] = text
		st.chainsWritten++
		st.rules += len(rules)
	}

	// 4. Set and map elements.
	for _, spec := range fixedSets {
		var added, deleted int
		if spec.isMap {
			added, deleted = diffMap(tx, spec.name, cur.maps[spec.name], want.maps[spec.name])
		} else {
			added, deleted = diffSet(tx, spec.name, cur.sets[spec.name], want.sets[spec.name])
		}
		st.elementsAdded += added
		st.elementsDeleted += deleted
	}

	// 5. Chains no longer used: flushed now, deleted later.
	for _, name := range sortedKeys(cur.chains) {
		if _, ok := want.chains[name]; ok {
			continue
		}
		if cur.chains[name] != "" {
			tx.flushChain(name)
		}
		delete(cur.chains, name)
		if _, ok := s.stale[name]; !ok {
			newStale[name] = now
		}
		st.chainsRemoved++
	}

	// 6. Affinity sets no longer used (their rules went above), and sets
	// this proxy does not know.
	for _, name := range sortedKeys(cur.affinity) {
		if _, ok := want.affinity[name]; !ok {
			tx.deleteSet(name)
			delete(cur.affinity, name)
			st.setsDeleted++
		}
	}
	for _, name := range leftoverSets {
		tx.deleteSet(name)
		st.setsDeleted++
	}

	if err := tx.commit(); err != nil {
		return st, err
	}
	s.applied = cur
	if full {
		s.replaced = true
	}
	for name := range reused {
		delete(s.stale, name)
	}
	for name, t := range newStale {
		s.stale[name] = t
	}
	return st, nil
}

// startFull begins a full sync: it (re)makes the table, its base chains
// and its fixed sets, emptied, and returns the state to diff against (the
// chains found, of unknown content; the affinity sets found, which keep
// their clients) and the sets found that have no place in the table.
func (s *syncer) startFull(tx transaction, contents *tableContents) (*tableState, []string) {
	cur := &tableState{
		chains:   map[string]string{},
		maps:     map[string]map[element]mapValue{},
		sets:     map[string]map[element]struct{}{},
		affinity: map[string]time.Duration{},
	}
	tx.addTable()
	base := map[string]bool{}
	for _, bc := range baseChains {
		tx.writeBaseChain(bc, !s.replaced)
		base[bc.name] = true
	}
	fixed := map[string]bool{}
	for _, spec := range fixedSets {
		fixed[spec.name] = true
		tx.addSet(spec)
		tx.flushSet(spec.name)
		if spec.isMap {
			cur.maps[spec.name] = map[element]mapValue{}
		} else {
			cur.sets[spec.name] = map[element]struct{}{}
		}
	}
	var leftover []string
	present := map[string]bool{}
	if contents != nil {
		for _, c := range contents.chains {
			present[c] = true
			if !base[c] {
				cur.chains[c] = unknownContent
			}
		}
		for _, name := range sortedKeys(contents.sets) {
			switch {
			case fixed[name]:
			case strings.HasPrefix(name, prefixAffinity):
				cur.affinity[name] = contents.sets[name]
			default:
				leftover = append(leftover, name)
			}
		}
	}
	// Stale chains that are gone need no deleting.
	for name := range s.stale {
		if !present[name] {
			delete(s.stale, name)
		}
	}
	return cur, leftover
}

// deleteStale deletes, in a transaction of its own, the stale chains
// flushed long enough ago. On failure it leaves them for a full sync to
// sort out.
func (s *syncer) deleteStale() int {
	cutoff := s.now().Add(-staleChainDelay)
	var due []string
	for name, t := range s.stale {
		if !t.After(cutoff) {
			due = append(due, name)
		}
	}
	if len(due) == 0 {
		return 0
	}
	sort.Strings(due)
	tx := s.kern.begin()
	for _, name := range due {
		tx.deleteChain(name)
	}
	if err := tx.commit(); err != nil {
		s.log.Warn("deleting unused chains failed; the next sync rereads the table", "chains", len(due), "err", err)
		s.applied = nil
		return 0
	}
	for _, name := range due {
		delete(s.stale, name)
	}
	return len(due)
}

// elementBatch bounds the elements of one netlink message: a message's
// element list is one attribute, at most 64 KiB.
const elementBatch = 256

func diffMap(tx transaction, name string, cur, want map[element]mapValue) (added, deleted int) {
	var dels, adds []element
	var vals []mapValue
	for k, v := range cur {
		if wv, ok := want[k]; !ok || wv != v {
			dels = append(dels, k)
		}
	}
	for k, v := range want {
		if cv, ok := cur[k]; !ok || cv != v {
			adds = append(adds, k)
		}
	}
	sortElements(dels)
	sortElements(adds)
	for _, k := range dels {
		delete(cur, k)
	}
	for _, k := range adds {
		vals = append(vals, want[k])
		cur[k] = want[k]
	}
	for i := 0; i < len(dels); i += elementBatch {
		tx.deleteElements(name, dels[i:min(i+elementBatch, len(dels))])
	}
	for i := 0; i < len(adds); i += elementBatch {
		j := min(i+elementBatch, len(adds))
		tx.addElements(name, adds[i:j], vals[i:j])
	}
	return len(adds), len(dels)
}

func diffSet(tx transaction, name string, cur, want map[element]struct{}) (added, deleted int) {
	var dels, adds []element
	for k := range cur {
		if _, ok := want[k]; !ok {
			dels = append(dels, k)
		}
	}
	for k := range want {
		if _, ok := cur[k]; !ok {
			adds = append(adds, k)
		}
	}
	sortElements(dels)
	sortElements(adds)
	for _, k := range dels {
		delete(cur, k)
	}
	for _, k := range adds {
		cur[k] = struct{}{}
	}
	for i := 0; i < len(dels); i += elementBatch {
		tx.deleteElements(name, dels[i:min(i+elementBatch, len(dels))])
	}
	for i := 0; i < len(adds); i += elementBatch {
		tx.addElements(name, adds[i:min(i+elementBatch, len(adds))], nil)
	}
	return len(adds), len(dels)
}

func sortElements(es []element) {
	sort.Slice(es, func(i, j int) bool { return es[i].less(es[j]) })
}
