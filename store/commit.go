package store

import (
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// committer is group commit for the write path: a write that arrives while
// a commit is on its way to disk waits, and the next commit takes every
// write queued by then in one transaction and one pair of fsyncs. A write
// that finds the disk idle commits at once.
//
// bbolt's own Batch instead closes a batch when a timer fires (1 ms here),
// before it even has the write lock; under load that made many small
// commits, each paying its fsyncs, and capped durable sign-ins at about
// 450/s (docs/benchmarks.md). It also put the timer's delay under every
// lone write.
//
// As with Batch, a function may run more than once: when one write of a
// group fails, the transaction is rolled back, that write gets its error and
// the others run again without it.
type committer struct {
	db  *bolt.DB
	max int
	obs Observer // told of each commit's duration and size

	mu    sync.Mutex
	queue []*queuedWrite
	busy  bool // a goroutine is committing
}

type queuedWrite struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// run queues fn and waits until it is durable or has failed.
func (c *committer) run(fn func(*bolt.Tx) error) error {
	w := &queuedWrite{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, w)
	if !c.busy {
		c.busy = true
		go c.loop()
	}
	c.mu.Unlock()
	return <-w.done
}

// loop commits groups until the queue is empty.
func (c *committer) loop() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), c.max)
		if n == 0 {
			c.busy = false
			c.queue = nil
			c.mu.Unlock()
			return
		}
		group := c.queue[:n:n]
		c.queue = append([]*queuedWrite(nil), c.queue[n:]...)
		c.mu.Unlock()
		c.commit(group)
	}
}

func (c *committer) commit(group []*queuedWrite) {
	for len(group) > 0 {
		failed := -1
		start := time.Now()
		// guard: a panic in bbolt itself (a damaged page) fails the whole
		// group; without it the loop would die with busy still set and
		// every later write would wait forever.
		err := guard(func() error {
			return c.db.Update(func(tx *bolt.Tx) error {
				for i, w := range group {
					if err := safeCall(w.fn, tx); err != nil {
						failed = i
						return err
					}
				}
				return nil
			})
		})
		c.obs.Committed(time.Since(start), len(group))
		if failed < 0 {
			for _, w := range group {
				w.done <- err
			}
			return
		}
		group[failed].done <- err
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// safeCall turns a panicking write into that write's error, so one bad
// write cannot take the others (or the process) down.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: write panicked: %v", p)
		}
	}()
	return fn(tx)
}
