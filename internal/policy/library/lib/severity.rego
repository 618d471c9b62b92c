# Severities, shared by the policies that judge scan results.
package rampart.lib.severity

rank := {"unknown": 0, "info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}

# at_least holds when severity sev is threshold or worse.
at_least(sev, threshold) if rank[lower(sev)] >= rank[lower(threshold)]
