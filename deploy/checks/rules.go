package main

import (
	"fmt"
	"os"
	"sort"

	"sigs.k8s.io/yaml"
)

// runRulesCoverage: every alerting rule has a promtool test case where it fires (non-empty
// exp_alerts) and one where it stays silent (exp_alerts empty). promtool itself checks that
// the cases pass; this checks that they exist.
func runRulesCoverage(args []string) {
	if len(args) != 2 {
		usage()
	}
	r := &report{}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
			} `json:"rules"`
		} `json:"groups"`
	}
	var tf struct {
		RuleFiles []string `json:"rule_files"`
		Tests     []struct {
			Name       string `json:"name"`
			AlertTests []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	for i, pair := range []struct {
		path string
		out  any
	}{{args[0], &rf}, {args[1], &tf}} {
		data, err := os.ReadFile(pair.path)
		if err == nil {
			err = yaml.Unmarshal(data, pair.out)
		}
		if err != nil {
			r.fail("file %d %s: %v", i+1, pair.path, err)
			r.done("rules-coverage")
		}
	}
	fires := map[string]int{}
	silent := map[string]int{}
	for _, t := range tf.Tests {
		for _, at := range t.AlertTests {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname]++
			} else {
				silent[at.Alertname]++
			}
		}
	}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, rule := range g.Rules {
			if rule.Alert != "" {
				alerts[rule.Alert] = true
			}
		}
	}
	var names []string
	for a := range alerts {
		names = append(names, a)
	}
	sort.Strings(names)
	r.check(len(names) > 0, "%s defines %d alerts", args[0], len(names))
	for _, a := range names {
		r.check(fires[a] > 0 && silent[a] > 0, "%s: %d firing and %d silent test cases", a, fires[a], silent[a])
	}
	for a := range fires {
		if !alerts[a] {
			r.fail("tests name alert %s, which the rules do not define", a)
		}
	}
	fmt.Printf("    info: %d test groups\n", len(tf.Tests))
	r.done("rules-coverage")
}
