package datastore

import (
	"encoding/binary"
	"errors"
	"time"
)

// The layout of the bytes in the buckets (see doc.go for the picture).
//
// A key as stored is escaped so that any bytes are allowed and order is
// kept: 0x00 becomes 0x00 0xFF, and the key ends with 0x00 0x01. Because a
// terminator sorts below every escaped byte, "a" sorts before "a\x00" and
// "ab", exactly as the raw keys do, and all revisions of one key sit
// together, oldest first, followed by the next key.

const (
	escByte  = 0x00
	escNul   = 0xFF // 0x00 0xFF stands for a 0x00 in the key
	escEnd   = 0x01 // 0x00 0x01 ends the key
	revBytes = 8
)

var errMalformed = errors.New("datastore: malformed stored key or record")

// escapeKey appends the escaped form of key, without the terminator, to dst.
// For any prefix p of a key k, escapeKey(p) is a prefix of escapeKey(k), so
// prefix scans work on the escaped form.
func escapeKey(dst []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		if key[i] == escByte {
			dst = append(dst, escByte, escNul)
		} else {
			dst = append(dst, key[i])
		}
	}
	return dst
}

// keyID is the escaped key with its terminator: the part shared by every
// revision of the key in the revision bucket.
func keyID(key string) []byte {
	b := escapeKey(make([]byte, 0, len(key)+2+revBytes), key)
	return append(b, escByte, escEnd)
}

// revKey is the revision bucket's key for key at rev.
func revKey(key string, rev int64) []byte {
	return appendRev(keyID(key), rev)
}

func appendRev(dst []byte, rev int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(rev))
}

// decodeRevKey splits a revision bucket key into the raw key, the key's
// escaped ID (a sub-slice of b) and the revision.
func decodeRevKey(b []byte) (key string, id []byte, rev int64, err error) {
	if len(b) < 2+revBytes {
		return "", nil, 0, errMalformed
	}
	id = b[:len(b)-revBytes]
	rev = int64(binary.BigEndian.Uint64(b[len(b)-revBytes:]))
	key, err = unescapeID(id)
	return key, id, rev, err
}

// unescapeID turns a key ID (escaped key plus terminator) back into the key.
func unescapeID(id []byte) (string, error) {
	out := make([]byte, 0, len(id))
	for i := 0; i < len(id); i++ {
		if id[i] != escByte {
			out = append(out, id[i])
			continue
		}
		if i+1 >= len(id) {
			return "", errMalformed
		}
		switch id[i+1] {
		case escNul:
			out = append(out, escByte)
			i++
		case escEnd:
			if i+2 != len(id) {
				return "", errMalformed
			}
			return string(out), nil
		default:
			return "", errMalformed
		}
	}
	return "", errMalformed
}

// A record is the value stored for one revision of a key:
//
//	flags (1 byte) | createRev (uvarint) | expiresAt unix nanos (uvarint, 0: none) | value
type record struct {
	tombstone bool
	createRev int64
	expiresAt int64
	value     []byte
}

const flagTombstone = 1

func (r record) encode() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(r.value))
	var flags byte
	if r.tombstone {
		flags |= flagTombstone
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(r.createRev))
	b = binary.AppendUvarint(b, uint64(r.expiresAt))
	return append(b, r.value...)
}

// decodeRecord parses b. The value aliases b: copy it before the
// transaction that read b ends.
func decodeRecord(b []byte) (record, error) {
	if len(b) < 1 || b[0]&^flagTombstone != 0 {
		return record{}, errMalformed
	}
	r := record{tombstone: b[0]&flagTombstone != 0}
	b = b[1:]
	c, n := binary.Uvarint(b)
	if n <= 0 || c > 1<<62 {
		return record{}, errMalformed
	}
	b = b[n:]
	e, n := binary.Uvarint(b)
	if n <= 0 || e > 1<<62 {
		return record{}, errMalformed
	}
	r.createRev, r.expiresAt, r.value = int64(c), int64(e), b[n:]
	return r, nil
}

// kv builds the public KeyValue, copying the value out of the transaction.
func (r record) kv(key string, modRev int64) *KeyValue {
	kv := &KeyValue{
		Key:            key,
		Value:          append([]byte(nil), r.value...),
		CreateRevision: r.createRev,
		ModRevision:    modRev,
	}
	if r.expiresAt != 0 {
		kv.ExpiresAt = time.Unix(0, r.expiresAt)
	}
	return kv
}

// A log entry (log bucket, keyed by revision) records which key changed at
// that revision and when: commit time in unix nanos (8 bytes) | key ID.
func encodeLogEntry(at int64, id []byte) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(at))
	return append(b, id...)
}

func decodeLogEntry(b []byte) (at int64, id []byte, err error) {
	if len(b) < 8+2 {
		return 0, nil, errMalformed
	}
	return int64(binary.BigEndian.Uint64(b)), b[8:], nil
}

// A TTL entry (ttl bucket) is expiresAt unix nanos (8 bytes) | key ID, with
// the mod revision that set it as value, so the reaper walks keys in
// expiry order.
func ttlKey(expiresAt int64, id []byte) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(expiresAt))
	return append(b, id...)
}

func decodeRev(b []byte) (int64, error) {
	if len(b) != revBytes {
		return 0, errMalformed
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
