package waf

import (
	"regexp/syntax"
	"sync/atomic"
)

// An alphabet filter is a second necessary condition of a match, for
// ASCII inputs: the expression can only match an input if it can match
// some string made only of the bytes the input contains (every match is a
// substring of the input, so it uses no other byte). Whether it can is a
// question about the expression and a byte set alone, answered once by
// walking the expression's compiled program and cached per byte set.
//
// The walk follows every instruction whose rune set meets the byte set
// and passes every empty-width assertion (^, $, \b…) as if it held, so it
// over-approximates the strings the program can match: it may answer
// "can match" for a byte set no match uses, never the reverse.
//
// Benign JSON values have small, repetitive byte sets ("item 24", "alpha",
// "61.5", "json.items.24.tags.1"): a handful of sets answer most values
// of a request, and most CRS patterns cannot match on them at all (they
// need a quote, a bracket, a keyword's letters…).

// byteSet is a set of ASCII bytes, bit c of word c/64.
type byteSet [2]uint64

// digits are the bits of '0' to '9' in word 0 of a byteSet.
const digits = 0x3FF << '0'

// alphabetOf returns the set of bytes of s, widened to every digit when
// s has one, or false when s has a byte of 0x80 or above. Widening keeps
// the filter sound (a string over the set of s is a string over any
// larger set) and makes the numbers of a request share one set: the
// values "item 24" and "item 57" ask the same question.
func alphabetOf(s string) (byteSet, bool) {
	var b byteSet
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return b, false
		}
		b[c>>6] |= 1 << (c & 63)
	}
	if b[0]&digits != 0 {
		b[0] |= digits
	}
	return b, true
}

func (b byteSet) meets(o byteSet) bool { return b[0]&o[0] != 0 || b[1]&o[1] != 0 }

// alphabetSlots is the size of an alphabet filter's table of answered
// byte sets (a power of two). A set is stored in one of alphabetProbe
// consecutive slots from its hash; when they are all taken by other sets
// the input skips the filter (it stays correct: the literal prefilter and
// the expression still decide). So the program is walked at most
// alphabetSlots times in the filter's life, whatever the inputs.
const (
	alphabetSlots = 256
	alphabetProbe = 4
)

// alphabet is the alphabet filter of one expression. Its table is shared
// by every transaction without locks: a slot holds a pointer to an
// immutable answer, written once.
type alphabet struct {
	start uint32
	nodes []node // the program, reduced to what the walk needs
	slots [alphabetSlots]atomic.Pointer[answer]
}

type answer struct {
	set byteSet
	can bool // whether the program can match over set
}

// node is one instruction of the program as the walk sees it.
type node struct {
	kind     nodeKind
	out, arg uint32
	runes    byteSet // for runeNode: the ASCII bytes the instruction matches
}

type nodeKind uint8

const (
	failNode  nodeKind = iota // no way on
	matchNode                 // a match
	passNode                  // on to out (captures, no-ops, assertions taken as true)
	altNode                   // on to out and to arg
	runeNode                  // on to out when runes meets the set
)

// newAlphabet compiles re (Go syntax, as the operator compiles it) for
// the alphabet filter, or returns nil when it cannot reject any ASCII
// input: when the expression matches the empty string, every input
// contains a match.
func newAlphabet(re string) *alphabet {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return nil
	}
	a := &alphabet{start: uint32(prog.Start), nodes: make([]node, len(prog.Inst))}
	for pc := range prog.Inst {
		inst := &prog.Inst[pc]
		n := &a.nodes[pc]
		n.out, n.arg = inst.Out, inst.Arg
		switch inst.Op {
		case syntax.InstMatch:
			n.kind = matchNode
		case syntax.InstFail:
			n.kind = failNode
		case syntax.InstAlt, syntax.InstAltMatch:
			n.kind = altNode
		case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
			n.kind = passNode
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			n.kind = runeNode
			for c := rune(0); c < 0x80; c++ {
				if inst.MatchRune(c) {
					n.runes[c>>6] |= 1 << (c & 63)
				}
			}
		default:
			return nil // an instruction this analysis does not know: no filter
		}
	}
	if a.reach(byteSet{}) {
		return nil
	}
	return a
}

// mayMatch reports whether the expression can match an input whose bytes
// are exactly set: false only when no string over set matches.
func (a *alphabet) mayMatch(set byteSet) bool {
	h := (set[0]*0x9E3779B97F4A7C15 ^ set[1]*0xC2B2AE3D27D4EB4F) >> 56
	for i := range uint64(alphabetProbe) {
		slot := &a.slots[(h+i)%alphabetSlots]
		ans := slot.Load()
		if ans == nil {
			ans = &answer{set: set, can: a.reach(set)}
			if !slot.CompareAndSwap(nil, ans) {
				if got := slot.Load(); got.set == set {
					return got.can
				}
			}
			return ans.can
		}
		if ans.set == set {
			return ans.can
		}
	}
	return true
}

// reach reports whether a match node is reachable from the start,
// following rune nodes only on bytes of set.
func (a *alphabet) reach(set byteSet) bool {
	seen := make([]bool, len(a.nodes))
	stack := []uint32{a.start}
	seen[a.start] = true
	push := func(pc uint32) {
		if !seen[pc] {
			seen[pc] = true
			stack = append(stack, pc)
		}
	}
	for len(stack) > 0 {
		n := &a.nodes[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		switch n.kind {
		case matchNode:
			return true
		case altNode:
			push(n.out)
			push(n.arg)
		case passNode:
			push(n.out)
		case runeNode:
			if n.runes.meets(set) {
				push(n.out)
			}
		}
	}
	return false
}
