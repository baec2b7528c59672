package datastore

import (
	"bytes"
	"testing"
)

func TestKeyIDOrder(t *testing.T) {
	// Raw keys in byte order; their IDs must sort the same way.
	keys := []string{"\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01", "a", "a\x00", "a\x00\x01", "a\x01", "ab", "b", "\xff", "\xff\x00"}
	for i := 1; i < len(keys); i++ {
		a, b := revKey(keys[i-1], 1<<40), revKey(keys[i], 1)
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("revKey(%q) >= revKey(%q)", keys[i-1], keys[i])
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []record{
		{createRev: 1, value: []byte("v")},
		{tombstone: true, createRev: 1 << 40},
		{createRev: 7, expiresAt: 1 << 61, value: []byte{0, 1, 2}},
	} {
		got, err := decodeRecord(r.encode())
		if err != nil {
			t.Fatal(err)
		}
		if got.tombstone != r.tombstone || got.createRev != r.createRev || got.expiresAt != r.expiresAt || !bytes.Equal(got.value, r.value) {
			t.Fatalf("round trip of %+v gave %+v", r, got)
		}
	}
}

// FuzzKeyEncoding checks that a revision-bucket key decodes to what was
// encoded, that encoding keeps the order of (key, revision) pairs, and that
// prefix scans on escaped prefixes find exactly the keys with the prefix.
func FuzzKeyEncoding(f *testing.F) {
	f.Add([]byte("/registry/pods/default/web"), uint64(1), []byte("/registry/pods/default/web-1"), uint64(2))
	f.Add([]byte("a\x00"), uint64(1<<63-1), []byte("a"), uint64(0))
	f.Add([]byte("\x00\x01"), uint64(5), []byte("\x00\xff"), uint64(5))
	f.Fuzz(func(t *testing.T, k1 []byte, r1 uint64, k2 []byte, r2 uint64) {
		rev1, rev2 := int64(r1>>1), int64(r2>>1)
		e1, e2 := revKey(string(k1), rev1), revKey(string(k2), rev2)
		key, id, rev, err := decodeRevKey(e1)
		if err != nil || key != string(k1) || rev != rev1 || !bytes.Equal(id, keyID(string(k1))) {
			t.Fatalf("decode(encode(%q, %d)) = %q, %d, %v", k1, rev1, key, rev, err)
		}
		want := bytes.Compare(k1, k2)
		if want == 0 {
			want = cmpInt(rev1, rev2)
		}
		if got := bytes.Compare(e1, e2); got != want {
			t.Fatalf("order of (%q,%d) vs (%q,%d): encoded %d, raw %d", k1, rev1, k2, rev2, got, want)
		}
		if got, want := bytes.HasPrefix(e1, escapeKey(nil, string(k2))), bytes.HasPrefix(k1, k2); got != want {
			t.Fatalf("prefix %q of %q: encoded %v, raw %v", k2, k1, got, want)
		}
	})
}

// FuzzDecode feeds arbitrary bytes to every decoder: errors are fine,
// panics are not, and what decodes re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(revKey("/a", 3))
	f.Add(record{createRev: 3, expiresAt: 9, value: []byte("x")}.encode())
	f.Add([]byte{0, 0xff, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if key, _, rev, err := decodeRevKey(b); err == nil {
			if !bytes.Equal(revKey(key, rev), b) {
				t.Fatalf("revKey %x decodes to (%q,%d) which encodes differently", b, key, rev)
			}
		}
		if r, err := decodeRecord(b); err == nil {
			if !bytes.Equal(r.encode(), b) && !nonMinimalVarint(b) {
				t.Fatalf("record %x decodes to %+v which encodes differently", b, r)
			}
		}
		decodeLogEntry(b)
		decodeRev(b)
	})
}

// nonMinimalVarint reports whether b's varints use more bytes than needed
// (Go's decoder accepts them; they are harmless but do not round-trip).
func nonMinimalVarint(b []byte) bool {
	r, err := decodeRecord(b)
	if err != nil {
		return false
	}
	return len(r.encode()) != len(b)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
