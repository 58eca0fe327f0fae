package server

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
)

// Timing of every socket, as in gorilla's chat example.
const (
	// writeWait bounds one write; a peer that cannot take a frame within it
	// is dropped.
	writeWait = 10 * time.Second
	// pongWait is how long a socket may stay silent, pongs included.
	pongWait = 60 * time.Second
	// pingPeriod must be below pongWait so a healthy peer never times out.
	pingPeriod = pongWait * 9 / 10
	// joinWait is how long a fresh app socket has to send its join frame.
	joinWait = 15 * time.Second
	// closeGrace is how long we wait for the peer's close frame after ours,
	// so the TCP connection ends with FIN rather than RST.
	closeGrace = time.Second
	// sendBuffer is the per-socket outgoing queue. A room sends a handful of
	// messages in its life; a peer that lets 16 pile up is not reading.
	sendBuffer = 16
)

// Close codes besides the 4000+HTTP-status error codes of qrauth.CloseCode.
const (
	closeNormal     = websocket.CloseNormalClosure // 1000: the room finished
	closeRestart    = websocket.CloseServiceRestart
	closeSlowClient = websocket.CloseTryAgainLater // 1013: send queue overflowed
)

type outFrame struct {
	data      []byte
	closeCode int // non-zero: send a close frame with this code, then end
	closeText string
}

// conn is one WebSocket. Its write pump owns every write and the pings; its
// read pump owns reads, the read limit and the pong deadline. Nobody waits
// on a slow peer: when the queue is full the socket is closed.
type conn struct {
	ws       *websocket.Conn
	send     chan outFrame
	done     chan struct{} // closed when the write pump has finished
	readDone chan struct{} // closed when the read pump has finished

	mu      sync.Mutex
	closing bool
}

func newConn(ws *websocket.Conn) *conn {
	return &conn{
		ws:       ws,
		send:     make(chan outFrame, sendBuffer),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
}

// sendMsg queues m. It never blocks; it reports false if the socket is
// closing or had to be dropped for not reading.
func (c *conn) sendMsg(m *qrauth.ServerMessage) bool {
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
	c.sendMsg(qrauth.ErrorMessageFor(err))
	c.closeWith(qrauth.CloseCode(qrauth.ErrorCode(err)), qrauth.ErrorReason(err))
}

func (c *conn) enqueue(f outFrame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	if f.closeCode != 0 {
		c.closing = true
	}
	select {
	case c.send <- f:
		return true
	default:
		// The peer is not reading. Replace whatever it would have got with
		// a close; the pump drains the queue into the void.
		c.closing = true
		go c.abort()
		return false
	}
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// abort closes the socket without a goodbye; the pumps then end on their
// own errors.
func (c *conn) abort() {
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(closeSlowClient, "slow client"), time.Now().Add(time.Second))
	_ = c.ws.Close()
}

// writePump runs in its own goroutine until the socket is closed.
func (c *conn) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		_ = c.ws.Close()
		close(c.done)
	}()
	for {
		select {
		case f := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if f.closeCode != 0 {
				_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(f.closeCode, f.closeText))
				select {
				case <-c.readDone:
				case <-time.After(closeGrace):
				}
				return
			}
			if err := c.ws.WriteMessage(websocket.TextMessage, f.data); err != nil {
				return
			}
		case <-ticker.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		case <-c.readDone:
			// The peer went away (or broke the protocol); flush what is
			// queued is pointless, stop now.
			return
		}
	}
}

// readPump reads frames and hands each to onFrame until the socket fails
// or closes; then it calls onClose once. firstWait is the deadline for the
// first frame.
func (c *conn) readPump(firstWait time.Duration, onFrame func([]byte), onClose func()) {
	defer func() {
		close(c.readDone)
		onClose()
	}()
	c.ws.SetReadLimit(qrauth.MaxFrameSize)
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
		onFrame(data)
	}
}
