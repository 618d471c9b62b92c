// Package waf runs the OWASP Core Rule Set (github.com/corazawaf/coraza-coreruleset,
// CRS 4.25) on Coraza (github.com/corazawaf/coraza/v3) for the gateway.
//
// An Engine compiles one rule set per distinct Settings (mode, paranoia
// level, anomaly thresholds, rule exclusions, response inspection) on
// first use and shares it between the routes that use the same settings;
// Forget drops rule sets no route needs any more. The configuration is
// Coraza's recommended base, then Rampart's settings (rule engine On or
// DetectionOnly, anomaly thresholds and paranoia level as the CRS setup
// variables, ModSecurity's default of logging matches in every phase),
// then the CRS setup and rules, then the route's SecRuleRemoveById
// exclusions.
//
// WAF.Serve runs one request through a Coraza transaction around the
// proxy: connection, request line and headers, the request body
// (buffered up to the engine's limit and handed on to the backend), the
// response headers and, when the route inspects responses, the response
// body (held until it is complete or over the inspection limit). The
// logging phase runs before Serve returns, so every match line of a
// request is written before its response is complete. Each logged match
// is one ModSecurity-style line ("[id "942100"] … [unique_id "REQID"]")
// on the match log; the Outcome says whether the request was blocked and
// by which rule.
//
// Rampart registers its own @rx operator in Coraza's operator table (once
// per process, before the first rule set compiles). It keeps Coraza's
// semantics — the pattern with the s and m flags on Go's regexp syntax, up
// to nine captures, binaryregexp for patterns spelling non-UTF-8 bytes —
// and adds three things that change no verdict:
//
//   - an alphabet filter (alphabet.go): an ASCII input can only match if
//     the pattern can match some string made of the bytes the input
//     contains (every match is a substring of it). That is decided from
//     the compiled program alone, walking it with rune instructions
//     restricted to the byte set and assertions taken as true (an
//     over-approximation: it may let a non-match through, never reject a
//     match), and remembered per byte set in a fixed lock-free table of
//     each pattern. Byte sets are widened to every digit when they have
//     one, which is still sound and gives the values of a benign JSON body
//     a handful of sets: on the 8 KB document of bench/gateway.sh 94% of
//     the CRS patterns' evaluations end there. Patterns that match the
//     empty string have no alphabet filter; inputs with a byte ≥ 0x80, or
//     whose set finds no free slot, skip it.
//   - a literal prefilter (prefilter.go), derived from the parsed pattern:
//     a set of lower-case literals one of which every ASCII input the
//     pattern matches contains. Inputs without any of them are rejected
//     without running the expression; inputs with a byte ≥ 0x80 always run
//     it (the analysis only reasons about ASCII case folding). Coraza's own
//     prefilter (SecRxPreFilter) stays off: it misses matches of two CRS
//     regression tests.
//   - RE2 (github.com/wasilibs/go-re2, compiled to Go without cgo) for
//     patterns whose Go program has re2MinInst instructions or more, where
//     Go's backtracker and NFA are slow; valid UTF-8 inputs only (RE2 stops
//     at invalid UTF-8 where Go reads U+FFFD), the others stay on Go's
//     regexp.
//
// Two more steps take out the rules that cannot change a verdict, so
// Coraza never walks them:
//
//   - pruning (prune.go), once per rule set: at the route's paranoia
//     level the CRS's guard rules ("TX:DETECTION_PARANOIA_LEVEL @lt N …
//     skipAfter") either never match or always skip the rest of their
//     file's phase. Both kinds of guard and the rules an always-matching
//     guard skips are removed with SecRuleRemoveById (313 rules at PL1),
//     unless the level's set-up rules are excluded, changed or could be
//     jumped over, or a guard could be removed or narrowed alone; a guard
//     a skip:N may count stays with the rules it skips.
//   - the rule filter (rulefilter.go), per request: a SecAction of
//     Rampart's runs first in phases 1 and 2 and removes from the
//     transaction, as ctl:ruleRemoveById does, each rule no value of the
//     request can match. It reads the request's values once per target,
//     groups them by byte set, and answers per rule from the sets (the
//     @rx alphabet filter; for @pm whether a phrase's bytes fit;
//     @validateByteRange exactly) and, where the rule's transformations
//     provably leave a value unchanged, by running the operator itself
//     (@rx, @pm, libinjection's detectSQLi/detectXSS) on the raw value. The
//     transformations' effect on byte sets and their "leaves it unchanged"
//     tests are checked against Coraza's own transformations by
//     FuzzClosures. Rampart registers its own @pm/@pmFromFile (Coraza's
//     semantics) so the filter holds the very phrases the rule matches.
//
// Both read the SecLang text again (seclang.go): Coraza keeps the
// compiled rules internal. A rule is removed only when every part of it
// was understood; the operators Coraza compiled must equal, one by one
// and in order, those read from the text, or the filter stays off.
// TestRuleFilterChangesNoVerdict replays the CRS regression suite's
// requests through a rule set with and without both and wants the same
// verdicts and logged matches; FuzzRuleFilter does the same on random
// values. Of the 663 rules Coraza compiles at PL1 pruning leaves 352, and
// on a benign GET the filter takes 127 of those out of phases 1 and 2; on
// the 8 KB JSON document of bench/gateway.sh (633 values and 633 names) the
// filter's own operator runs on those values are most of the remaining
// cost, with libinjection the largest part: what no rule filter can
// avoid, since any value may be an injection.
//
// TestRxOnCRS and FuzzRxCRS compare the operator with Go's regexp on every
// CRS pattern; FuzzPrefilter and FuzzAlphabet check the two filters on
// random patterns; FuzzReadSecLang the SecLang reader.
package waf
