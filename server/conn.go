package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// Timing of every socket, as in gorilla's chat example.
const (
	// writeWait bounds one write; a peer that cannot take a frame within it
	// is dropped.
	writeWait = 10 * time.Second
	// pongWait is how long a socket may stay silent, pongs included.
	pongWait = 60 * time.Second
	// pingPeriod must be well below pongWait so a healthy peer never times
	// out: with 54 s of 60, a machine starved of CPU dropped thousands of
	// healthy waiting rooms whose pongs were read late (docs/benchmarks.md).
	pingPeriod = pongWait / 2
	// joinWait is how long a fresh app socket has to send its join frame.
	joinWait = 15 * time.Second
	// closeGrace is how long we wait for the peer's close frame after ours,
	// so the TCP connection ends with FIN rather than RST.
	closeGrace = time.Second
	// sendBuffer is the per-socket outgoing queue. A room sends a handful of
	// messages in its life; a peer that lets 16 pile up is not reading.
	sendBuffer = 16
)

// Close codes besides the error codes of wire.CloseCode.
const (
	closeNormal     = websocket.CloseNormalClosure // 1000: the room finished
	closeRestart    = wire.CloseServiceRestart     // 1012: reconnect (wire.Reconnect)
	closeSlowClient = websocket.CloseTryAgainLater // 1013: send queue overflowed
	// closeBadText: a text frame that is not UTF-8 (RFC 6455 §8.1). gorilla
	// does not check text frames itself.
	closeBadText = websocket.CloseInvalidFramePayloadData // 1007
)

type outFrame struct {
	data      []byte
	ping      bool
	closeCode int // non-zero: send a close frame with this code, then end
	closeText string
}

// conn is one WebSocket. Its read pump owns reads, the read limit and the
// pong deadline. Writes go through a queue drained by a writer goroutine
// that exists only while there is something to write, and pings come from
// a timer: an idle socket costs one parked goroutine, not two, which is
// most of a waiting room's memory. Nobody waits on a slow peer: when the
// queue is full the socket is closed.
type conn struct {
	ws       *websocket.Conn
	readDone chan struct{} // closed when the read pump has finished
	onDone   func()        // called once, after the socket is closed

	mu       sync.Mutex
	queue    []outFrame
	writing  bool // a writer goroutine is draining the queue
	closing  bool // a close is queued or under way; nothing more is sent
	finished bool
	ping     *time.Timer

	log     *slog.Logger // for panics in the handlers; set by upgrade
	metrics Metrics      // counts the refusals sent; set by upgrade
}

func newConn(ws *websocket.Conn, onDone func()) *conn {
	c := &conn{ws: ws, readDone: make(chan struct{}), onDone: onDone, metrics: nopMetrics{}}
	c.ping = time.AfterFunc(pingPeriod, c.sendPing)
	return c
}

func (c *conn) sendPing() {
	if c.enqueue(outFrame{ping: true}) {
		c.mu.Lock()
		if !c.finished {
			c.ping.Reset(pingPeriod)
		}
		c.mu.Unlock()
	}
}

// sendMsg queues m. It never blocks; it reports false if the socket is
// closing or had to be dropped for not reading.
func (c *conn) sendMsg(m *wire.ServerMessage) bool {
	data, err := json.Marshal(m)
	if err != nil {
		return false
	}
	return c.enqueue(outFrame{data: data})
}

// closeWith queues a close frame after everything queued so far.
func (c *conn) closeWith(code int, text string) {
	c.enqueue(outFrame{closeCode: code, closeText: text})
}

// closeErr sends err as an error message and closes with its close code.
func (c *conn) closeErr(err error) {
	c.metrics.Refused(qrauth.ErrorCode(err), qrauth.ErrorReason(err))
	c.sendMsg(wire.ErrorMessageFor(err))
	c.closeWith(wire.CloseCode(qrauth.ErrorCode(err)), qrauth.ErrorReason(err))
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

func (c *conn) enqueue(f outFrame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	if len(c.queue) >= sendBuffer {
		// The peer is not reading. Drop what it would have got and close.
		c.closing = true
		c.queue = nil
		go c.abort()
		return false
	}
	if f.closeCode != 0 {
		c.closing = true
	}
	c.queue = append(c.queue, f)
	if !c.writing {
		c.writing = true
		go c.drain()
	}
	return true
}

// drain writes queued frames until the queue is empty, then exits.
func (c *conn) drain() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.finished {
			c.writing = false
			c.queue = nil
			c.mu.Unlock()
			return
		}
		f := c.queue[0]
		c.queue = c.queue[1:]
		c.mu.Unlock()

		deadline := time.Now().Add(writeWait)
		var err error
		switch {
		case f.ping:
			err = c.ws.WriteControl(websocket.PingMessage, nil, deadline)
		case f.closeCode != 0:
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(f.closeCode, f.closeText), deadline)
			t := time.NewTimer(closeGrace)
			select {
			case <-c.readDone:
			case <-t.C:
			}
			t.Stop()
			c.finish()
			continue
		default:
			_ = c.ws.SetWriteDeadline(deadline)
			err = c.ws.WriteMessage(websocket.TextMessage, f.data)
		}
		if err != nil {
			c.finish()
		}
	}
}

// abort closes a socket whose peer stopped reading, without waiting for it.
func (c *conn) abort() {
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(closeSlowClient, "slow client"), time.Now().Add(time.Second))
	c.finish()
}

// finish closes the socket once; the read pump then ends on its error.
func (c *conn) finish() {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished, c.closing = true, true
	c.ping.Stop()
	c.mu.Unlock()
	_ = c.ws.Close()
	if c.onDone != nil {
		c.onDone()
	}
}

// readPump reads frames and hands each to onFrame until the socket fails
// or closes; then it calls onClose once. firstWait is the deadline for the
// first frame.
func (c *conn) readPump(firstWait time.Duration, onFrame func([]byte), onClose func()) {
	defer func() {
		close(c.readDone)
		c.mu.Lock()
		waiting := c.closing && !c.finished
		c.mu.Unlock()
		if !waiting {
			// The peer left (or broke the protocol) before we said goodbye:
			// nothing queued can be delivered any more.
			c.finish()
		}
		c.guard("close", onClose)
	}()
	c.ws.SetReadLimit(wire.MaxFrameSize)
	_ = c.ws.SetReadDeadline(time.Now().Add(firstWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
		if c.isClosing() {
			// We said goodbye; read on only to see the peer's close frame.
			continue
		}
		if typ != websocket.TextMessage {
			c.closeErr(qrauth.Errorf(qrauth.EINVALID, "binary_frame", "Only text frames are accepted."))
			continue
		}
		if !utf8.Valid(data) {
			c.sendMsg(wire.ErrorMessageFor(wire.ErrInvalidUTF8))
			c.closeWith(closeBadText, qrauth.ErrorReason(wire.ErrInvalidUTF8))
			continue
		}
		c.guard("frame", func() { onFrame(data) })
	}
}

// guard runs a handler of this socket. A panic in it (a bug, or a damaged
// database page) is logged at error with its cause and refuses this
// socket's request with internal: it must not end the process, which would
// drop every other room with it.
func (c *conn) guard(what string, fn func()) {
	defer func() {
		if p := recover(); p != nil {
			log := c.log
			if log == nil {
				log = slog.Default()
			}
			log.Error("socket handler panicked", slog.String("in", what), slog.Any("panic", p),
				slog.String("stack", string(debug.Stack())))
			c.closeErr(qrauth.Internal(fmt.Errorf("panic: %v", p)))
		}
	}()
	fn()
}
