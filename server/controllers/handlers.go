package controllers

import (
	"errors"
	"fmt"
	"sync"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// Each SharedIndexInformer.AddEventHandler call gives the handler a
// listener of its own in client-go: a 1,024-entry ring buffer and two
// goroutines, for as long as the informer runs. The controllers and the
// scheduler add some fifty handlers, a dozen of them on the pods informer,
// so the controller manager adds theirs through eventHandlers, which gives
// each informer one listener that calls them all.

// eventHandlers collects the controllers' event handlers per informer
// and, in register, adds one handler to each informer that calls them
// one after another, in the order they were added, on client-go's
// listener goroutine.
//
// A handler must therefore not block: while it runs, the other handlers
// of its informer wait. The controllers' handlers only queue work (the
// scheduler's also take its cache's lock, which it holds for one
// scheduling attempt at most).
//
// A handler added after register goes to its informer directly, with a
// listener of its own, so that it is not missed and still gets client-go's
// replay of the objects the informer already has; it is then called in
// no set order with the shared handler's calls.
//
// Handlers are grouped by the informer's indexer, not by the informer
// value: client-go's typed informers wrap the factory's informer anew on
// every Informer() call, so the pods informer comes as many values, all
// with the one indexer.
type eventHandlers struct {
	mu         sync.Mutex
	registered bool
	informers  []cache.SharedIndexInformer // one value of each, in the order of their first handlers
	handlers   map[cache.Indexer]fanOut
}

// add adds handler to inf's handlers, or to inf itself after register.
// client-go refuses a handler only when inf has stopped, and a stopped
// informer has nothing more to deliver, so add returns no error.
func (h *eventHandlers) add(inf cache.SharedIndexInformer, handler cache.ResourceEventHandler) {
	h.mu.Lock()
	if h.registered {
		h.mu.Unlock()
		_, _ = inf.AddEventHandler(handler)
		return
	}
	defer h.mu.Unlock()
	if h.handlers == nil {
		h.handlers = map[cache.Indexer]fanOut{}
	}
	key := inf.GetIndexer()
	if _, ok := h.handlers[key]; !ok {
		h.informers = append(h.informers, inf)
	}
	h.handlers[key] = append(h.handlers[key], handler)
}

// register adds to each informer one handler that calls the handlers
// added so far; the manager calls it once, right before it starts the
// informers. An informer with a single handler gets that handler as it
// is.
func (h *eventHandlers) register() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.registered = true
	var errs []error
	for _, inf := range h.informers {
		fo := h.handlers[inf.GetIndexer()]
		var handler cache.ResourceEventHandler = fo
		if len(fo) == 1 {
			handler = fo[0]
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			errs = append(errs, fmt.Errorf("event handlers: %w", err))
		}
	}
	h.informers, h.handlers = nil, nil
	return errors.Join(errs...)
}

// fanOut is the handler register adds: it calls each of its handlers in
// turn.
type fanOut []cache.ResourceEventHandler

func (fo fanOut) OnAdd(obj any, isInInitialList bool) {
	for _, h := range fo {
		h.OnAdd(obj, isInInitialList)
	}
}

func (fo fanOut) OnUpdate(oldObj, newObj any) {
	for _, h := range fo {
		h.OnUpdate(oldObj, newObj)
	}
}

func (fo fanOut) OnDelete(obj any) {
	for _, h := range fo {
		h.OnDelete(obj)
	}
}

// informerSet is what the controllers are built from: the manager's
// informer factory, and the eventHandlers their handlers go through.
type informerSet struct {
	informers.SharedInformerFactory
	handlers *eventHandlers
}

// addEventHandler adds handler to inf through the shared handlers: how
// the controllers add theirs, to the factory's informers and to those of
// the small factories some of them start in run (after register).
func (f informerSet) addEventHandler(inf cache.SharedIndexInformer, handler cache.ResourceEventHandler) {
	f.handlers.add(inf, handler)
}
