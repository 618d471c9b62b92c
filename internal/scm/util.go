package scm

import (
	"context"
	"strconv"

	"github.com/rampartsec/rampart/internal/reqinfo"
)

func actorID(ctx context.Context) int64 { return reqinfo.From(ctx).ActorID }

func actorName(ctx context.Context) string {
	if n := reqinfo.From(ctx).ActorName; n != "" {
		return n
	}
	return "anonymous"
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func itoa(n int) string { return strconv.Itoa(n) }
