# Helpers for Dockerfile checks.
package rampart.lib.dockerfile

# final_stage is the stage the image is built from.
final_stage := input.stages[count(input.stages) - 1]

# stage_key names a stage the way FROM refers to it.
stage_key(s) := s.name if {
	s.name != ""
} else := sprintf("%d", [s.index])

# final_chain holds the final stage and every stage it is built on.
final_chain contains s if {
	g := {stage_key(st): deps | some st in input.stages; deps := [lower(st.base)]}
	reach := graph.reachable(g, {stage_key(final_stage)})
	some s in input.stages
	stage_key(s) in reach
}

# runs holds every RUN instruction.
runs contains i if {
	some i in input.instructions
	i.cmd == "run"
}

# script is the shell text of a RUN instruction, heredocs included.
script(i) := concat("\n", array.concat([i.value], [h.content | some h in i.heredocs]))

# where names an instruction for fingerprints: its stage, command and, for
# RUN and ADD, its text (never for ENV or ARG, whose text may be a
# secret).
where(i) := sprintf("stage %d %s %s", [i.stage, i.cmd, i.original]) if {
	i.cmd in {"run", "add"}
} else := sprintf("stage %d %s", [i.stage, i.cmd])
