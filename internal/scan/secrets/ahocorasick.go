package secrets

// automaton is an Aho–Corasick automaton compiled to a dense DFA over
// ASCII-case-folded byte classes: one table lookup per input byte, no
// lower-cased copy of the input, no allocation while scanning.
//
// Bytes that occur in no keyword share class 0, so the table has only as
// many columns as the keywords have distinct (folded) bytes. States are
// numbered so that every state with an output comes last: the scanning
// loop tests one comparison per byte to know whether a keyword ended.
type automaton struct {
	class    [256]uint8
	nclass   int32
	delta    []int32 // [state*nclass + class] → next state*nclass
	firstOut int32   // premultiplied id of the first state with outputs
	out      [][]int32
	maxLen   int // length of the longest keyword
}

// fold lowers ASCII letters.
func fold(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// newAutomaton compiles keywords (matched case-insensitively for ASCII);
// hits report the keyword's index.
func newAutomaton(keywords []string) *automaton {
	a := &automaton{}
	// Byte classes.
	var used [256]bool
	for _, k := range keywords {
		for i := 0; i < len(k); i++ {
			used[fold(k[i])] = true
		}
	}
	n := uint8(1)
	for b := 0; b < 256; b++ {
		if used[b] {
			a.class[b] = n
			n++
		}
	}
	for b := 'A'; b <= 'Z'; b++ {
		a.class[b] = a.class[b+'a'-'A']
	}
	a.nclass = int32(n)
	nc := int(n)

	// Trie; -1 marks a missing edge.
	type node struct {
		next []int32
		fail int32
		out  []int32
	}
	newNode := func() node {
		nx := make([]int32, nc)
		for i := range nx {
			nx[i] = -1
		}
		return node{next: nx}
	}
	nodes := []node{newNode()}
	for ki, k := range keywords {
		a.maxLen = max(a.maxLen, len(k))
		s := int32(0)
		for i := 0; i < len(k); i++ {
			c := a.class[k[i]]
			if nodes[s].next[c] < 0 {
				nodes[s].next[c] = int32(len(nodes))
				nodes = append(nodes, newNode())
			}
			s = nodes[s].next[c]
		}
		nodes[s].out = append(nodes[s].out, int32(ki))
	}

	// Breadth-first: failure links, outputs inherited along them, and the
	// full transition function.
	order := make([]int32, 0, len(nodes))
	for c := 0; c < nc; c++ {
		if t := nodes[0].next[c]; t >= 0 {
			nodes[t].fail = 0
			order = append(order, t)
		} else {
			nodes[0].next[c] = 0
		}
	}
	for i := 0; i < len(order); i++ {
		s := order[i]
		f := nodes[s].fail
		if len(nodes[f].out) > 0 {
			nodes[s].out = append(nodes[s].out, nodes[f].out...)
		}
		for c := 0; c < nc; c++ {
			t := nodes[s].next[c]
			if t >= 0 {
				nodes[t].fail = nodes[f].next[c]
				order = append(order, t)
			} else {
				nodes[s].next[c] = nodes[f].next[c]
			}
		}
	}

	// Renumber: states without output first (the root stays 0).
	id := make([]int32, len(nodes))
	next := int32(0)
	for s := range nodes {
		if len(nodes[s].out) == 0 {
			id[s] = next
			next++
		}
	}
	firstOut := next
	for s := range nodes {
		if len(nodes[s].out) > 0 {
			id[s] = next
			next++
		}
	}
	a.firstOut = firstOut * a.nclass
	a.delta = make([]int32, len(nodes)*nc)
	a.out = make([][]int32, len(nodes)-int(firstOut))
	for s := range nodes {
		row := int(id[s]) * nc
		for c := 0; c < nc; c++ {
			a.delta[row+c] = id[nodes[s].next[c]] * a.nclass
		}
		if id[s] >= firstOut {
			a.out[id[s]-firstOut] = nodes[s].out
		}
	}
	return a
}

// chains is how many parts of a content scan walks at once. The walk is
// one table lookup per byte, each depending on the one before: walking
// several parts in one loop gives the processor independent lookups to
// overlap, about doubling throughput for two and more for four.
const chains = 4

// scan calls hit for every keyword occurrence in data, with the index of
// the keyword and the offset just past its end. Hits come in no
// particular order.
//
// Long contents are cut into chains parts walked together. Each part but
// the first starts from the root state maxLen-1 bytes before its share,
// so a keyword straddling a cut is seen whole; a part reports only the
// keywords ending inside its share, so none is reported twice.
func (a *automaton) scan(data []byte, hit func(kw int32, end int)) {
	if len(a.delta) == 0 {
		return
	}
	overlap := a.maxLen - 1
	share := len(data) / chains
	if share < 4*overlap+256 {
		a.walk(data, 0, len(data), 0, 0, hit)
		return
	}
	var start, lo, hi [chains]int
	for c := range chains {
		lo[c] = c * share
		hi[c] = (c + 1) * share
		start[c] = max(0, lo[c]-overlap)
	}
	hi[chains-1] = len(data)
	n := hi[0] - start[0] // the shortest part
	delta := a.delta
	class := &a.class
	firstOut := a.firstOut
	var s0, s1, s2, s3 int32
	d0, d1, d2, d3 := data[start[0]:hi[0]], data[start[1]:hi[1]], data[start[2]:hi[2]], data[start[3]:hi[3]]
	d1, d2, d3 = d1[:n], d2[:n], d3[:n]
	for i := range d0 {
		s0 = delta[s0+int32(class[d0[i]])]
		s1 = delta[s1+int32(class[d1[i]])]
		s2 = delta[s2+int32(class[d2[i]])]
		s3 = delta[s3+int32(class[d3[i]])]
		if s0 >= firstOut || s1 >= firstOut || s2 >= firstOut || s3 >= firstOut {
			for c, s := range [chains]int32{s0, s1, s2, s3} {
				if end := start[c] + i + 1; s >= firstOut && end > lo[c] {
					for _, k := range a.out[(s-firstOut)/a.nclass] {
						hit(k, end)
					}
				}
			}
		}
	}
	for c, s := range [chains]int32{s0, s1, s2, s3} {
		a.walk(data, start[c]+n, hi[c], lo[c], s, hit)
	}
}

// walk runs the automaton over data[from:to] from state s, reporting
// keywords that end past after.
func (a *automaton) walk(data []byte, from, to, after int, s int32, hit func(kw int32, end int)) {
	delta := a.delta
	class := &a.class
	firstOut := a.firstOut
	for i := from; i < to; i++ {
		s = delta[s+int32(class[data[i]])]
		if s >= firstOut && i+1 > after {
			for _, k := range a.out[(s-firstOut)/a.nclass] {
				hit(k, i+1)
			}
		}
	}
}
