package proxy

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"
)

// fakeKernel is an in-memory table that checks what the kernel checks of
// a transaction (what rules and elements refer to exists; a chain or set
// that is deleted is unused and empty; elements deleted exist) and
// applies it whole or not at all.
type fakeKernel struct {
	mu       sync.Mutex // for tests that read while a Proxier runs
	t        *fakeTable // nil: no table
	commits  int
	ops      []string // the operations of the last commit
	failNext error
}

type fakeTable struct {
	chains map[string][]rule
	base   map[string]bool
	sets   map[string]*fakeSet
}

type fakeSet struct {
	timeout time.Duration
	elems   map[element]string // → the verdict's text, "" in sets
}

func (t *fakeTable) clone() *fakeTable {
	c := &fakeTable{chains: map[string][]rule{}, base: maps.Clone(t.base), sets: map[string]*fakeSet{}}
	for k, v := range t.chains {
		c.chains[k] = append([]rule(nil), v...)
	}
	for k, v := range t.sets {
		c.sets[k] = &fakeSet{timeout: v.timeout, elems: maps.Clone(v.elems)}
	}
	return c
}

func (k *fakeKernel) close() error { return nil }

func (k *fakeKernel) list() (*tableContents, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.t == nil {
		return nil, nil
	}
	c := &tableContents{sets: map[string]time.Duration{}}
	for name := range k.t.chains {
		c.chains = append(c.chains, name)
	}
	for name := range k.t.base {
		c.chains = append(c.chains, name)
	}
	for name, s := range k.t.sets {
		c.sets[name] = s.timeout
	}
	return c, nil
}

func (k *fakeKernel) begin() transaction { return &fakeTx{k: k} }

type fakeTx struct {
	k   *fakeKernel
	ops []fakeOp
}

type fakeOp struct {
	text  string
	apply func(t *fakeTable) error
}

func (tx *fakeTx) add(text string, apply func(t *fakeTable) error) {
	tx.ops = append(tx.ops, fakeOp{text, apply})
}

var errBusy = errors.New("device or resource busy")

func (tx *fakeTx) addTable() {
	tx.add("add table", func(*fakeTable) error { return nil })
}

func (tx *fakeTx) writeBaseChain(c baseChain, recreate bool) {
	tx.add("base chain "+c.name, func(t *fakeTable) error {
		t.base[c.name] = true
		delete(t.chains, c.name)
		return nil
	})
}

func (tx *fakeTx) addChain(name string) {
	tx.add("add chain "+name, func(t *fakeTable) error {
		if _, ok := t.chains[name]; !ok {
			t.chains[name] = nil
		}
		return nil
	})
}

func (tx *fakeTx) flushChain(name string) {
	tx.add("flush chain "+name, func(t *fakeTable) error {
		if _, ok := t.chains[name]; !ok {
			return fmt.Errorf("flush chain %s: no such chain", name)
		}
		t.chains[name] = nil
		return nil
	})
}

func (tx *fakeTx) deleteChain(name string) {
	tx.add("delete chain "+name, func(t *fakeTable) error {
		rules, ok := t.chains[name]
		if !ok {
			return fmt.Errorf("delete chain %s: no such chain", name)
		}
		if len(rules) > 0 || t.uses(name) {
			return fmt.Errorf("delete chain %s: %w", name, errBusy)
		}
		delete(t.chains, name)
		return nil
	})
}

// refs returns the chains and sets a rule names.
func refs(r rule) (chains, sets []string) {
	for _, term := range r {
		switch v := term.(type) {
		case verdict:
			if v.chain != "" {
				chains = append(chains, v.chain)
			}
		case inSet:
			sets = append(sets, v.set)
		case updateSaddr:
			sets = append(sets, v.set)
		case vmapAddrPort:
			sets = append(sets, v.mapName)
		case vmapPort:
			sets = append(sets, v.mapName)
		}
	}
	return chains, sets
}

// uses tells whether a rule or a map element names chain or set name.
func (t *fakeTable) uses(name string) bool {
	all := baseRules()
	for _, rules := range t.chains {
		all = append(all, rules)
	}
	for _, rules := range all {
		for _, r := range rules {
			chains, sets := refs(r)
			for _, c := range append(chains, sets...) {
				if c == name {
					return true
				}
			}
		}
	}
	for _, s := range t.sets {
		for _, v := range s.elems {
			if strings.HasSuffix(v, " "+name) {
				return true
			}
		}
	}
	return false
}

func baseRules() [][]rule {
	var out [][]rule
	for _, bc := range baseChains {
		out = append(out, bc.rules)
	}
	return out
}

func (tx *fakeTx) addRule(chain string, r rule) {
	tx.add("add rule to "+chain+": "+r.String(), func(t *fakeTable) error {
		if _, ok := t.chains[chain]; !ok && !t.base[chain] {
			return fmt.Errorf("add rule to %s: no such chain", chain)
		}
		chains, sets := refs(r)
		for _, c := range chains {
			if _, ok := t.chains[c]; !ok {
				return fmt.Errorf("rule %q: no chain %s", r, c)
			}
		}
		for _, s := range sets {
			if _, ok := t.sets[s]; !ok {
				return fmt.Errorf("rule %q: no set %s", r, s)
			}
		}
		if t.base[chain] {
			return nil // the base chains' rules are fixed: not kept
		}
		t.chains[chain] = append(t.chains[chain], r)
		return nil
	})
}

func (tx *fakeTx) addSet(s setSpec) {
	tx.add("add set "+s.name, func(t *fakeTable) error {
		if _, ok := t.sets[s.name]; !ok {
			t.sets[s.name] = &fakeSet{elems: map[element]string{}}
		}
		return nil
	})
}

func (tx *fakeTx) addAffinitySet(name string, timeout time.Duration) {
	tx.add("add set "+name, func(t *fakeTable) error {
		if s, ok := t.sets[name]; ok {
			if s.timeout != timeout {
				return fmt.Errorf("add set %s: exists with another timeout", name)
			}
			return nil
		}
		t.sets[name] = &fakeSet{timeout: timeout, elems: map[element]string{}}
		return nil
	})
}

func (tx *fakeTx) flushSet(name string) {
	tx.add("flush set "+name, func(t *fakeTable) error {
		s, ok := t.sets[name]
		if !ok {
			return fmt.Errorf("flush set %s: no such set", name)
		}
		clear(s.elems)
		return nil
	})
}

func (tx *fakeTx) deleteSet(name string) {
	tx.add("delete set "+name, func(t *fakeTable) error {
		if _, ok := t.sets[name]; !ok {
			return fmt.Errorf("delete set %s: no such set", name)
		}
		if t.uses(name) {
			return fmt.Errorf("delete set %s: %w", name, errBusy)
		}
		delete(t.sets, name)
		return nil
	})
}

func (tx *fakeTx) addElements(set string, keys []element, values []mapValue) {
	tx.add(fmt.Sprintf("add elements to %s: %v", set, keys), func(t *fakeTable) error {
		s, ok := t.sets[set]
		if !ok {
			return fmt.Errorf("add elements to %s: no such set", set)
		}
		for i, k := range keys {
			v := ""
			if values != nil {
				v = values[i].verdict.String()
				if c := values[i].verdict.chain; c != "" {
					if _, ok := t.chains[c]; !ok {
						return fmt.Errorf("element %s: no chain %s", k, c)
					}
				}
			}
			if _, ok := s.elems[k]; ok {
				return fmt.Errorf("add element %s to %s: it exists", k, set)
			}
			s.elems[k] = v
		}
		return nil
	})
}

func (tx *fakeTx) deleteElements(set string, keys []element) {
	tx.add(fmt.Sprintf("delete elements from %s: %v", set, keys), func(t *fakeTable) error {
		s, ok := t.sets[set]
		if !ok {
			return fmt.Errorf("delete elements from %s: no such set", set)
		}
		for _, k := range keys {
			if _, ok := s.elems[k]; !ok {
				return fmt.Errorf("delete element %s from %s: no such element", k, set)
			}
			delete(s.elems, k)
		}
		return nil
	})
}

func (tx *fakeTx) commit() error {
	k := tx.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(tx.ops) == 0 {
		k.ops = nil
		return nil
	}
	if err := k.failNext; err != nil {
		k.failNext = nil
		return err
	}
	t := &fakeTable{chains: map[string][]rule{}, base: map[string]bool{}, sets: map[string]*fakeSet{}}
	if k.t != nil {
		t = k.t.clone()
	}
	var texts []string
	for _, op := range tx.ops {
		if err := op.apply(t); err != nil {
			return fmt.Errorf("%s: %w", op.text, err)
		}
		texts = append(texts, op.text)
	}
	k.t, k.ops = t, texts
	k.commits++
	return nil
}

// snapshot is a copy of the table, nil if there is none.
func (k *fakeKernel) snapshot() *fakeTable {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.t == nil {
		return nil
	}
	return k.t.clone()
}

// dump prints the table as ruleset.dump does, for comparing them.
func (t *fakeTable) dump() string {
	rs := newRuleset()
	maps.Copy(rs.chains, t.chains)
	for name, s := range t.sets {
		switch {
		case strings.HasPrefix(name, prefixAffinity):
			rs.affinity[name] = s.timeout
		case rs.maps[name] != nil:
			for k, v := range s.elems {
				rs.maps[name][k] = mapValue{verdict: parseVerdict(v)}
			}
		case rs.sets[name] != nil:
			for k := range s.elems {
				rs.sets[name][k] = struct{}{}
			}
		default:
			rs.sets[name] = map[element]struct{}{}
		}
	}
	return rs.dump()
}

func parseVerdict(s string) verdict {
	kind, chain, _ := strings.Cut(s, " ")
	switch kind {
	case "goto":
		return goTo(chain)
	case "jump":
		return jumpTo(chain)
	case "drop":
		return verdictDrop
	}
	return verdict{}
}

// comparable dump of a ruleset: map values without their comments.
func dumpWithoutComments(rs *ruleset) string {
	c := newRuleset()
	c.chains, c.sets, c.affinity = rs.chains, rs.sets, rs.affinity
	for name, m := range rs.maps {
		for k, v := range m {
			c.maps[name][k] = mapValue{verdict: v.verdict}
		}
	}
	return c.dump()
}

func sortedOps(ops []string) []string {
	out := append([]string(nil), ops...)
	sort.Strings(out)
	return out
}
