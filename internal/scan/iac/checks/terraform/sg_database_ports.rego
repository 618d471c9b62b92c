package rampart.checks.terraform.sg_database_ports

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-002",
	"severity": "high",
	"title": "Security group opens a database port to the internet",
	"remediation": "Allow database ports only from the security groups or subnets of the applications that use them.",
}

ports := {
	1433: "SQL Server", 1521: "Oracle", 3306: "MySQL", 5432: "PostgreSQL", 5984: "CouchDB",
	6379: "Redis", 9042: "Cassandra", 9200: "Elasticsearch", 11211: "Memcached", 27017: "MongoDB",
}

deny contains {"message": msg, "line": rule.line, "resource": sprintf("%s/%v/%v-%v", [rule.block.address, rule.protocol, rule.from, rule.to])} if {
	some rule in tf.aws_ingress
	tf.aws_rule_open(rule)
	hits := sort([p | some p, _ in ports; tf.aws_rule_covers(rule, p)])
	count(hits) > 0
	names := [sprintf("%d (%s)", [p, ports[p]]) | some p in hits]
	msg := sprintf("%s lets the whole internet reach port %s", [rule.block.address, concat(", ", names)])
}
