package gateway

import (
	"net"
)

// framingKey marks a connection's framing state in request contexts.
type framingKey struct{}

// framingState is set by the connection wrapper when a request on the
// connection carried both Content-Length and Transfer-Encoding.
type framingState struct{ bad bool }

func (f *framingState) flagged() bool { return f != nil && f.bad }

// framingListener wraps accepted connections.
type framingListener struct{ net.Listener }
