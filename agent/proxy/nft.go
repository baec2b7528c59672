package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The kernel side: google/nftables builds the netlink messages, and the
// proxy sends each transaction's batch on a netlink socket of its own.
//
// The library asks the kernel to acknowledge every message and to echo
// every rule back, and reads those replies one at a time: for a full sync
// of 1,000 services (some 20,000 messages) that is most of the time taken.
// Its Conn has a dial hook (WithTestDial) that hands over the batch
// instead of sending it; batchSocket.send, the hook, clears those flags,
// asks for one acknowledgement, of the last message, and reads back only
// that and any errors, which the kernel sends whatever the flags.

// nftKernel is the proxy's table in the kernel of one network namespace.
type nftKernel struct {
	table  *nftables.Table
	reader *nftables.Conn // dumps, each on a socket of its own
	sock   *batchSocket
}

// openKernel opens table (family ip) in the network namespace ns, or in
// the process's when ns is netns.None().
func openKernel(table string, ns netns.NsHandle) (*nftKernel, error) {
	opts := []nftables.ConnOption{}
	if ns.IsOpen() {
		opts = append(opts, nftables.WithNetNSFd(int(ns)))
	}
	reader, err := nftables.New(opts...)
	if err != nil {
		return nil, err
	}
	sock, err := openBatchSocket(ns)
	if err != nil {
		return nil, fmt.Errorf("opening a netfilter netlink socket: %w", err)
	}
	return &nftKernel{table: &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}, reader: reader, sock: sock}, nil
}

func (k *nftKernel) close() error { return k.sock.close() }

func (k *nftKernel) list() (*tableContents, error) {
	tables, err := k.reader.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, err
	}
	var t *nftables.Table
	for _, tt := range tables {
		if tt.Name == k.table.Name {
			t = tt
		}
	}
	if t == nil {
		return nil, nil
	}
	chains, err := k.reader.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, err
	}
	c := &tableContents{sets: map[string]time.Duration{}}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == t.Name {
			c.chains = append(c.chains, ch.Name)
		}
	}
	sets, err := k.reader.GetSets(t)
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		if !s.Anonymous && !strings.HasPrefix(s.Name, "__") {
			c.sets[s.Name] = s.Timeout
		}
	}
	return c, nil
}

// deleteTable removes the table, if it is there.
func (k *nftKernel) deleteTable() error {
	c, err := k.list()
	if err != nil || c == nil {
		return err
	}
	tx := k.begin().(*nftTx)
	tx.cc.DelTable(k.table)
	tx.note("delete table", k.table.Name)
	return tx.commit()
}

func (k *nftKernel) begin() transaction {
	tx := &nftTx{k: k, chains: map[string]*nftables.Chain{}}
	// The dial hook cannot fail, and New does nothing else with it.
	tx.cc, _ = nftables.New(nftables.WithTestDial(tx.send))
	return tx
}

// nftTx is one transaction: the messages go into the library's Conn,
// with a description of each for errors.
type nftTx struct {
	k      *nftKernel
	cc     *nftables.Conn
	chains map[string]*nftables.Chain
	setID  uint32
	desc   []opDesc // one per message, in order
	err    error    // the batch's outcome, from send
}

// An opDesc describes a message of the batch, for errors; it is formatted
// only then.
type opDesc struct {
	op   string // "add rule to chain", "flush set", ...
	name string
	rule rule
	keys []element
}

func (d opDesc) String() string {
	switch {
	case d.rule != nil:
		return fmt.Sprintf("%s %s: %s", d.op, d.name, d.rule)
	case len(d.keys) > 0:
		return fmt.Sprintf("%s %s: %d elements from %s", d.op, d.name, len(d.keys), d.keys[0])
	}
	return d.op + " " + d.name
}

func (tx *nftTx) note(op, name string) {
	tx.desc = append(tx.desc, opDesc{op: op, name: name})
}

func (tx *nftTx) chain(name string) *nftables.Chain {
	c, ok := tx.chains[name]
	if !ok {
		c = &nftables.Chain{Name: name, Table: tx.k.table}
		tx.chains[name] = c
	}
	return c
}

// nextSetID numbers the sets this transaction adds, as a batch may refer
// to them (the library's own counter is a global without a lock).
func (tx *nftTx) nextSetID() uint32 {
	tx.setID++
	return tx.setID
}

func (tx *nftTx) addTable() {
	tx.cc.AddTable(tx.k.table)
	tx.note("add table", tx.k.table.Name)
}

func (tx *nftTx) writeBaseChain(bc baseChain, recreate bool) {
	accept := nftables.ChainPolicyAccept
	prio := nftables.ChainPriority(bc.priority)
	c := &nftables.Chain{Name: bc.name, Table: tx.k.table, Type: bc.typ, Hooknum: bc.hook, Priority: &prio, Policy: &accept}
	tx.chains[bc.name] = c
	tx.cc.AddChain(c)
	tx.note("add chain", bc.name)
	if recreate {
		tx.cc.DelChain(c)
		tx.note("delete chain", bc.name)
		tx.cc.AddChain(c)
		tx.note("add chain", bc.name)
	} else {
		tx.cc.FlushChain(c)
		tx.note("flush chain", bc.name)
	}
}

func (tx *nftTx) addChain(name string) {
	tx.cc.AddChain(tx.chain(name))
	tx.note("add chain", name)
}

func (tx *nftTx) flushChain(name string) {
	tx.cc.FlushChain(tx.chain(name))
	tx.note("flush chain", name)
}

func (tx *nftTx) deleteChain(name string) {
	tx.cc.DelChain(tx.chain(name))
	tx.note("delete chain", name)
}

func (tx *nftTx) addRule(chain string, r rule) {
	var exprs []expr.Any
	var udata []byte
	for _, t := range r {
		if c, ok := t.(comment); ok {
			udata = userdata.AppendString(udata, userdata.TypeComment, string(c))
			continue
		}
		exprs = append(exprs, t.exprs()...)
	}
	tx.cc.AddRule(&nftables.Rule{Table: tx.k.table, Chain: tx.chain(chain), Exprs: exprs, UserData: udata})
	tx.desc = append(tx.desc, opDesc{op: "add rule to chain", name: chain, rule: r})
}

func (tx *nftTx) set(spec setSpec) *nftables.Set {
	s := &nftables.Set{Table: tx.k.table, Name: spec.name, KeyType: spec.keyType, Comment: spec.comment,
		Concatenation: len(nftables.ConcatSetTypeElements(spec.keyType)) > 1}
	if spec.isMap {
		s.IsMap, s.DataType = true, nftables.TypeVerdict
	}
	return s
}

func (tx *nftTx) setByName(name string) *nftables.Set {
	for _, spec := range fixedSets {
		if spec.name == name {
			return tx.set(spec)
		}
	}
	return &nftables.Set{Table: tx.k.table, Name: name, KeyType: nftables.TypeIPAddr}
}

func (tx *nftTx) addSet(spec setSpec) {
	s := tx.set(spec)
	s.ID = tx.nextSetID()
	if err := tx.cc.AddSet(s, nil); err != nil {
		tx.fail(err)
	}
	tx.note("add set", spec.name)
}

// addAffinitySet adds a sessionAffinity set. It has no size: nft gives
// such sets 65,535, for which the kernel allocates the whole hash table at
// once (a megabyte per set); without one the table grows as clients come,
// up to the kernel's own default of 65,535.
func (tx *nftTx) addAffinitySet(name string, timeout time.Duration) {
	s := &nftables.Set{Table: tx.k.table, ID: tx.nextSetID(), Name: name, KeyType: nftables.TypeIPAddr,
		HasTimeout: true, Timeout: timeout, Dynamic: true}
	if err := tx.cc.AddSet(s, nil); err != nil {
		tx.fail(err)
	}
	tx.note("add set", name)
}

func (tx *nftTx) flushSet(name string) {
	tx.cc.FlushSet(tx.setByName(name))
	tx.note("flush set", name)
}

func (tx *nftTx) deleteSet(name string) {
	tx.cc.DelSet(tx.setByName(name))
	tx.note("delete set", name)
}

func (tx *nftTx) addElements(set string, keys []element, values []mapValue) {
	elems := make([]nftables.SetElement, len(keys))
	for i, k := range keys {
		elems[i] = nftables.SetElement{Key: k.key()}
		if values != nil {
			elems[i].VerdictData = values[i].verdict.expr()
			elems[i].Comment = values[i].comment
		}
	}
	if err := tx.cc.SetAddElements(tx.setByName(set), elems); err != nil {
		tx.fail(err)
	}
	tx.desc = append(tx.desc, opDesc{op: "add elements to", name: set, keys: keys})
}

func (tx *nftTx) deleteElements(set string, keys []element) {
	elems := make([]nftables.SetElement, len(keys))
	for i, k := range keys {
		elems[i] = nftables.SetElement{Key: k.key()}
	}
	if err := tx.cc.SetDeleteElements(tx.setByName(set), elems); err != nil {
		tx.fail(err)
	}
	tx.desc = append(tx.desc, opDesc{op: "delete elements from", name: set, keys: keys})
}

func (tx *nftTx) fail(err error) {
	if tx.err == nil {
		tx.err = err
	}
}

func (tx *nftTx) commit() error {
	if tx.err != nil {
		return tx.err
	}
	if len(tx.desc) == 0 {
		return nil
	}
	if err := tx.cc.Flush(); err != nil {
		return err
	}
	return tx.err
}

// send is the Conn's dial hook: it receives the batch that Flush sends
// (and nothing, when the library reads the replies it expects after it),
// sends it on the real socket, and answers the library with one
// acknowledgement; the outcome goes to tx.err.
func (tx *nftTx) send(msgs []netlink.Message) ([]netlink.Message, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	if len(msgs) < 3 || len(msgs)-2 != len(tx.desc) {
		tx.fail(fmt.Errorf("nftables: a batch of %d messages for %d operations", len(msgs), len(tx.desc)))
	} else if err := tx.k.sock.run(msgs, tx.desc); err != nil {
		tx.fail(err)
	}
	ack := netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: msgs[0].Header.Sequence}, Data: make([]byte, 20)}
	return []netlink.Message{ack}, nil
}

// batchSocket is a NETLINK_NETFILTER socket for batches.
type batchSocket struct {
	fd      int
	sndbuf  int
	recvBuf []byte
}

const nlmsgHeaderLen = unix.SizeofNlMsghdr

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// netlink socket options and flags golang.org/x/sys does not name.
const (
	nlmFAckTLVs     = 0x200 // NLM_F_ACK_TLVS: the error carries attributes
	nlmsgerrAttrMsg = 1     // NLMSGERR_ATTR_MSG: the extended ack's text
)

func openBatchSocket(ns netns.NsHandle) (*batchSocket, error) {
	fd, err := socketIn(ns)
	if err != nil {
		return nil, err
	}
	s := &batchSocket{fd: fd, recvBuf: make([]byte, 1<<16)}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		s.close()
		return nil, err
	}
	// Errors carry only the failed message's header, and a text.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	// Room for many errors (a batch with a bad rule in every chain).
	setBuffer(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, 4<<20)
	tv := unix.NsecToTimeval(int64(30 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// socketIn makes the socket in network namespace ns (the current one if
// ns is not open), on a thread that goes back to the original namespace
// afterwards.
func socketIn(ns netns.NsHandle) (int, error) {
	mk := func() (int, error) {
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	}
	if !ns.IsOpen() {
		return mk()
	}
	type result struct {
		fd  int
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{-1, err}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			res <- result{-1, err}
			return
		}
		fd, err := mk()
		if err := netns.Set(orig); err != nil {
			res <- result{fd, fmt.Errorf("returning to the original network namespace: %w", err)}
			return // the thread stays locked and is thrown away
		}
		runtime.UnlockOSThread()
		res <- result{fd, err}
	}()
	r := <-res
	return r.fd, r.err
}

// setBuffer sets a socket buffer size, past the system's maximum when
// the process may (CAP_NET_ADMIN).
func setBuffer(fd, force, plain, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size)
	}
}

func (s *batchSocket) close() error { return unix.Close(s.fd) }

// run sends a batch (BATCH_BEGIN, the messages, BATCH_END) and waits for
// the kernel's verdict on it. desc describes the messages, for errors.
func (s *batchSocket) run(msgs []netlink.Message, desc []opDesc) error {
	last := len(msgs) - 2
	size := 0
	for _, m := range msgs {
		size += nlmsgAlign(nlmsgHeaderLen + len(m.Data))
	}
	buf := make([]byte, size)
	off := 0
	for i, m := range msgs {
		flags := m.Header.Flags &^ (netlink.Acknowledge | netlink.Echo)
		if i == last {
			flags |= netlink.Acknowledge
		}
		l := nlmsgHeaderLen + len(m.Data)
		binary.NativeEndian.PutUint32(buf[off:], uint32(l))
		binary.NativeEndian.PutUint16(buf[off+4:], uint16(m.Header.Type))
		binary.NativeEndian.PutUint16(buf[off+6:], uint16(flags))
		binary.NativeEndian.PutUint32(buf[off+8:], m.Header.Sequence)
		// PID 0: the kernel knows the socket (the library's stand-in
		// connection put 1 here).
		binary.NativeEndian.PutUint32(buf[off+12:], 0)
		copy(buf[off+nlmsgHeaderLen:], m.Data)
		off += nlmsgAlign(l)
	}
	// A batch is one datagram: the send buffer must hold it whole.
	if need := len(buf) + 1<<16; need > s.sndbuf {
		setBuffer(s.fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, need)
		s.sndbuf = need
	}
	if err := unix.Sendto(s.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("nftables: sending %d messages (%d bytes): %w", len(msgs), len(buf), err)
	}
	first, want := msgs[0].Header.Sequence, msgs[last].Header.Sequence
	var errs []error
	for {
		n, _, err := unix.Recvfrom(s.fd, s.recvBuf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return errors.Join(append(errs, fmt.Errorf("nftables: waiting for the kernel's answer: %w", err))...)
		}
		replies, err := syscall.ParseNetlinkMessage(s.recvBuf[:n])
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("nftables: %w", err))...)
		}
		done := false
		for _, r := range replies {
			if r.Header.Type != unix.NLMSG_ERROR || len(r.Data) < 4 {
				continue
			}
			seq := r.Header.Seq
			if seq-first > want-first {
				continue // left from an earlier batch that timed out
			}
			if errno := -int32(binary.NativeEndian.Uint32(r.Data[:4])); errno != 0 {
				what := "the batch"
				if i := int(seq - first); i >= 1 && i <= len(desc) {
					what = desc[i-1].String()
				}
				msg := ""
				if text := extAckText(r); text != "" {
					msg = " (" + text + ")"
				}
				errs = append(errs, fmt.Errorf("nftables: %s: %w%s", what, syscall.Errno(errno), msg))
				if seq == first {
					// About the whole batch (out of memory, a failed
					// commit): nothing else may follow.
					done = true
				}
			}
			if seq == want {
				done = true
			}
		}
		if done {
			return errors.Join(errs...)
		}
	}
}

// extAckText returns the text of an extended acknowledgement, if any.
func extAckText(r syscall.NetlinkMessage) string {
	if r.Header.Flags&nlmFAckTLVs == 0 || len(r.Data) < 20 {
		return ""
	}
	// struct nlmsgerr: the error, then the failed message's header (its
	// payload is left out, NETLINK_CAP_ACK), then attributes.
	attrs := r.Data[20:]
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs[:2]))
		t := binary.NativeEndian.Uint16(attrs[2:4])
		if l < 4 || l > len(attrs) {
			return ""
		}
		if t == nlmsgerrAttrMsg {
			return strings.TrimRight(string(attrs[4:l]), "\x00")
		}
		attrs = attrs[(l+3)&^3:]
	}
	return ""
}
