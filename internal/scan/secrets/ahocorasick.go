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
	minLen   int // length of the shortest keyword
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
	a.minLen = -1
	for ki, k := range keywords {
		if a.minLen < 0 || len(k) < a.minLen {
			a.minLen = len(k)
		}
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

// scan calls hit for every keyword occurrence in data, with the index of
// the keyword and the offset just past its end.
func (a *automaton) scan(data []byte, hit func(kw int32, end int)) {
	if len(a.delta) == 0 {
		return
	}
	delta := a.delta
	class := &a.class
	firstOut := a.firstOut
	s := int32(0)
	for i, b := range data {
		s = delta[s+int32(class[b])]
		if s >= firstOut {
			for _, k := range a.out[(s-firstOut)/a.nclass] {
				hit(k, i+1)
			}
		}
	}
}
