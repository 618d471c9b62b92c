package rampart.checks.kubernetes.service_admin_port

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-020",
	"severity": "high",
	"title": "Service exposes an administration or database port outside the cluster",
	"remediation": "Use a ClusterIP Service for administration and database ports, and reach them through kubectl port-forward, a VPN or a bastion.",
}

admin_ports := {
	22: "SSH", 23: "Telnet", 2375: "Docker API", 2376: "Docker API", 2379: "etcd", 3389: "RDP",
	6443: "Kubernetes API", 10250: "kubelet", 3306: "MySQL", 5432: "PostgreSQL", 1433: "SQL Server",
	6379: "Redis", 9200: "Elasticsearch", 27017: "MongoDB", 5985: "WinRM", 5986: "WinRM",
}

deny contains {"message": msg, "line": k8s.line(doc, ["spec", "ports", i]), "resource": sprintf("%s/%d", [doc.resource, port])} if {
	some doc in input.documents
	doc.object.kind == "Service"
	doc.object.spec.type in {"NodePort", "LoadBalancer"}
	some i, p in doc.object.spec.ports
	some port in {p.port, object.get(p, "targetPort", p.port)}
	what := admin_ports[port]
	msg := sprintf("%s (type %s) exposes port %d (%s) outside the cluster", [doc.resource, doc.object.spec.type, port, what])
}
