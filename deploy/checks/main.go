// Command deploy-checks checks pingan's deployment files against each other and against the
// code: rendered Helm manifests (strictly typed Kubernetes objects, probes on the ports the
// configuration listens on, resources, NetworkPolicy reachability), the Compose file (compose-go,
// the library behind `docker compose`), and the metric names in Prometheus rules and Grafana
// dashboards (parsed with Prometheus' own PromQL parser) against the metrics the Rust code
// registers and, optionally, what running services expose on /metrics.
//
// Every subcommand prints one line per check and exits 1 when any failed. Run by deploy/test.sh.
package main

import (
	"fmt"
	"os"
	"strings"
)

// report collects check results.
type report struct {
	passed, failed int
}

func (r *report) ok(format string, a ...any) {
	r.passed++
	fmt.Printf("    ok: %s\n", fmt.Sprintf(format, a...))
}

func (r *report) fail(format string, a ...any) {
	r.failed++
	fmt.Printf("    FAIL: %s\n", fmt.Sprintf(format, a...))
}

func (r *report) check(cond bool, format string, a ...any) bool {
	if cond {
		r.ok(format, a...)
	} else {
		r.fail(format, a...)
	}
	return cond
}

func (r *report) done(what string) {
	fmt.Printf("%s: %d passed, %d failed\n", what, r.passed, r.failed)
	if r.failed > 0 {
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: deploy-checks COMMAND ...
  k8s [-partitions N] [-config-out FILE] [-expect-hpa] RENDERED.yaml
                      typed decode + structure of helm-rendered manifests
  compose [-env-out DIR] FILE
                      compose-go load + structure; -env-out writes each pingan service's env
  metrics -crates DIR [-scrape URL]... [-require NAME]... FILES_OR_DIRS...
                      metric names in rules (*.yml) and dashboards (*.json) vs the code
  containerfile [-context DIR] FILE
                      hadolint-style and pingan-specific checks of the Containerfile
  dashboards DIR...    structure of Grafana dashboard JSON
  rules-coverage RULES.yml TESTS.yml
                      every alert has a firing and a silent promtool test case
`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "k8s":
		runK8s(args)
	case "compose":
		runCompose(args)
	case "metrics":
		runMetrics(args)
	case "containerfile":
		runContainerfile(args)
	case "dashboards":
		runDashboards(args)
	case "rules-coverage":
		runRulesCoverage(args)
	default:
		usage()
	}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
