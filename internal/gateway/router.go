package gateway

import (
	"sort"
	"strings"
)

// table is an immutable routing table: routes by host, each host's routes
// ordered longest path first. The gateway swaps whole tables on reload.
type table struct {
	exact map[string][]*live // "app.example.com"
	wild  map[string][]*live // "*.example.com" is stored under "example.com"
	any   []*live            // routes with host ""
	all   []*live
}

func newTable(routes []*live) *table {
	t := &table{exact: map[string][]*live{}, wild: map[string][]*live{}, all: routes}
	for _, l := range routes {
		h := l.route.Spec.Host
		switch {
		case h == "":
			t.any = append(t.any, l)
		case strings.HasPrefix(h, "*."):
			t.wild[h[2:]] = append(t.wild[h[2:]], l)
		default:
			t.exact[h] = append(t.exact[h], l)
		}
	}
	byPath := func(ls []*live) {
		sort.SliceStable(ls, func(i, j int) bool { return len(ls[i].route.Spec.Path) > len(ls[j].route.Spec.Path) })
	}
	for _, ls := range t.exact {
		byPath(ls)
	}
	for _, ls := range t.wild {
		byPath(ls)
	}
	byPath(t.any)
	return t
}

// hostGroup returns the routes of the most specific host entry that
// exists for host: the exact name, else a one-label wildcard, else the
// routes for any host. A host claimed by a route belongs to it: requests
// for it never fall through to a less specific entry.
func (t *table) hostGroup(host string) []*live {
	if ls, ok := t.exact[host]; ok {
		return ls
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if ls, ok := t.wild[host[i+1:]]; ok {
			return ls
		}
	}
	return t.any
}

// match returns the route for a normalised host and an escaped request
// path, or nil.
func (t *table) match(host, path string) *live {
	for _, l := range t.hostGroup(host) {
		if pathMatch(l.route.Spec.Path, path) {
			return l
		}
	}
	return nil
}

// authRoute returns the first route of host's group that requires
// sign-in: requests under AuthPrefix go to it, whatever their path.
func (t *table) authRoute(host string) *live {
	for _, l := range t.hostGroup(host) {
		if l.route.Spec.Auth == AuthRequired {
			return l
		}
	}
	return nil
}

// pathMatch reports whether path is under prefix on a segment boundary.
func pathMatch(prefix, path string) bool {
	if prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// overlaps reports whether two specs claim the same host and path.
func overlaps(a, b Spec) bool { return a.Host == b.Host && a.Path == b.Path }
