// Package reqinfo carries request identity and correlation through a
// context: the request id, the client's address and user agent, and who is
// acting. Nothing else belongs in a context value.
package reqinfo

import "context"

// Info describes the request a piece of work is done for.
type Info struct {
	RequestID string
	RemoteIP  string
	UserAgent string
	// ActorID and ActorName identify the authenticated user (0/"" when
	// anonymous).
	ActorID   int64
	ActorName string
}

type key struct{}

// With returns ctx carrying info.
func With(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, key{}, info)
}

// From returns the request info in ctx (zero when none).
func From(ctx context.Context) Info {
	i, _ := ctx.Value(key{}).(Info)
	return i
}

// WithActor returns ctx with the acting user set.
func WithActor(ctx context.Context, id int64, name string) context.Context {
	i := From(ctx)
	i.ActorID, i.ActorName = id, name
	return With(ctx, i)
}
