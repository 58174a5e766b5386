package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// metricType is what the Rust code registers: counter, gauge or histogram.
type metricType string

// registry maps each metric family the code registers to its type and where.
type registry map[string]struct {
	typ  metricType
	file string
}

var (
	literalRe = regexp.MustCompile(`"(pingan_[a-z0-9_]+)"`)
	constRe   = regexp.MustCompile(`(?m)^\s*(?:pub(?:\([a-z]+\))?\s+)?const\s+([A-Z0-9_]+)\s*:\s*&str\s*=\s*"(pingan_[a-z0-9_]+)"\s*;`)
	// constructors and the helper closures of pingan-pipeline's StageMetrics
	typeTokenRe = regexp.MustCompile(`\b(IntCounterVec|IntCounter|CounterVec|Counter|IntGaugeVec|IntGauge|GaugeVec|Gauge|HistogramVec|HistogramOpts|Histogram|counter|gauge|hist)\b\s*(?:::\s*(?:new|with_opts)\s*)?\(`)
)

func tokenType(tok string) metricType {
	switch {
	case strings.HasPrefix(strings.ToLower(tok), "hist"):
		return "histogram"
	case strings.Contains(strings.ToLower(tok), "counter"):
		return "counter"
	default:
		return "gauge"
	}
}

// stripNonCode blanks comments and everything from the first #[cfg(test)] on, keeping offsets.
func stripNonCode(src string) string {
	if i := strings.Index(src, "#[cfg(test)]"); i >= 0 {
		src = src[:i]
	}
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "//") {
			lines[i] = strings.Repeat(" ", len(l))
		}
	}
	return strings.Join(lines, "\n")
}

// codeRegistry reads every metric the Rust crates register: a metric name (literal or const)
// passed to a prometheus constructor; its type from the nearest constructor before it.
func codeRegistry(cratesDir string) (registry, error) {
	reg := registry{}
	var files []string
	err := filepath.WalkDir(cratesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "tests" || d.Name() == "benches" || d.Name() == "examples" || d.Name() == "target") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".rs") && d.Name() != "tests.rs" &&
			strings.Contains(filepath.ToSlash(path), "/src/") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		src := stripNonCode(string(raw))
		consts := map[string]string{}
		for _, m := range constRe.FindAllStringSubmatch(src, -1) {
			consts[m[1]] = m[2]
		}
		type use struct {
			name string
			at   int
		}
		var uses []use
		for _, m := range literalRe.FindAllStringSubmatchIndex(src, -1) {
			// skip the const definitions themselves
			lineStart := strings.LastIndex(src[:m[0]], "\n") + 1
			if constRe.MatchString(src[lineStart : strings.Index(src[m[0]:], "\n")+m[0]]) {
				continue
			}
			uses = append(uses, use{src[m[2]:m[3]], m[0]})
		}
		for c, name := range consts {
			re := regexp.MustCompile(`\b` + c + `\b`)
			for _, m := range re.FindAllStringIndex(src, -1) {
				lineStart := strings.LastIndex(src[:m[0]], "\n") + 1
				lineEnd := strings.Index(src[m[0]:], "\n") + m[0]
				if constRe.MatchString(src[lineStart:lineEnd]) {
					continue
				}
				uses = append(uses, use{name, m[0]})
			}
		}
		for _, u := range uses {
			from := max(0, u.at-240)
			window := src[from:u.at]
			toks := typeTokenRe.FindAllStringSubmatch(window, -1)
			if len(toks) == 0 {
				continue // a name used elsewhere (an assertion, a message), not registered here
			}
			// HistogramOpts::new(name) belongs to a Histogram(Vec); Opts::new(name) to the type before it
			t := tokenType(toks[len(toks)-1][1])
			if prev, ok := reg[u.name]; ok && prev.typ != t {
				return nil, fmt.Errorf("%s registered as %s in %s and %s in %s", u.name, prev.typ, prev.file, t, f)
			}
			reg[u.name] = struct {
				typ  metricType
				file string
			}{t, f}
		}
	}
	return reg, nil
}

// series names a metric family exposes in the text format.
func (r registry) seriesNames() map[string]string {
	out := map[string]string{}
	for name, e := range r {
		if e.typ == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[name+s] = name
			}
		} else {
			out[name] = name
		}
	}
	return out
}

var grafanaVarRe = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)(?::[a-z]+)?\}?`)

// namesIn parses a PromQL expression and returns the metric names it selects.
func namesIn(p parser.Parser, expr string) ([]string, error) {
	expr = grafanaVarRe.ReplaceAllString(expr, "5m")
	ast, err := p.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			if name == "" {
				for _, m := range vs.LabelMatchers {
					if m.Name == model.MetricNameLabel {
						name = m.Value
					}
				}
			}
			if name != "" {
				names = append(names, name)
			}
		}
		return nil
	})
	return names, nil
}

type exprRef struct {
	where, expr string
}

// exprsInRules: every alert and recording rule expression of a rule file.
func exprsInRules(path string) ([]exprRef, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rf struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert  string `json:"alert"`
				Record string `json:"record"`
				Expr   string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(data, &rf); err != nil {
		return nil, err
	}
	var out []exprRef
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out = append(out, exprRef{fmt.Sprintf("%s: %s%s", filepath.Base(path), r.Alert, r.Record), r.Expr})
		}
	}
	return out, nil
}

var labelValuesRe = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
var queryResultRe = regexp.MustCompile(`^\s*query_result\((.*)\)\s*$`)

// exprsInDashboard: every Prometheus target expression and template-variable query.
func exprsInDashboard(path string) ([]exprRef, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		return nil, err
	}
	var out []exprRef
	base := filepath.Base(path)
	var walkPanels func(ps []any)
	walkPanels = func(ps []any) {
		for _, p := range ps {
			pm, _ := p.(map[string]any)
			title, _ := pm["title"].(string)
			targets, _ := pm["targets"].([]any)
			for _, t := range targets {
				tm, _ := t.(map[string]any)
				if e, ok := tm["expr"].(string); ok {
					out = append(out, exprRef{fmt.Sprintf("%s: panel %q", base, title), e})
				}
			}
			if sub, ok := pm["panels"].([]any); ok {
				walkPanels(sub)
			}
		}
	}
	panels, _ := dash["panels"].([]any)
	walkPanels(panels)
	if tmpl, ok := dash["templating"].(map[string]any); ok {
		list, _ := tmpl["list"].([]any)
		for _, v := range list {
			vm, _ := v.(map[string]any)
			if vm["type"] != "query" {
				continue
			}
			q := ""
			switch qq := vm["query"].(type) {
			case string:
				q = qq
			case map[string]any:
				q, _ = qq["query"].(string)
			}
			if m := labelValuesRe.FindStringSubmatch(q); m != nil {
				q = m[1]
			} else if m := queryResultRe.FindStringSubmatch(q); m != nil {
				q = m[1]
			}
			if q != "" {
				out = append(out, exprRef{fmt.Sprintf("%s: variable %v", base, vm["name"]), q})
			}
		}
	}
	return out, nil
}

// scrape fetches a /metrics page and returns its families with their types.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	tp := expfmt.NewTextParser(model.LegacyValidation)
	return tp.TextToMetricFamilies(strings.NewReader(string(body)))
}

func runMetrics(args []string) {
	fset := flag.NewFlagSet("metrics", flag.ExitOnError)
	crates := fset.String("crates", "crates", "the Rust crates directory")
	var scrapes, required, allowed listFlag
	fset.Var(&scrapes, "scrape", "a /metrics URL of a running service (repeatable)")
	fset.Var(&allowed, "allow", "a series Prometheus itself makes, such as up (repeatable)")
	fset.Var(&required, "require", "a metric family the dashboards must show (repeatable)")
	_ = fset.Parse(args)
	r := &report{}

	reg, err := codeRegistry(*crates)
	if err != nil {
		r.fail("reading the code's metrics: %v", err)
		r.done("metrics")
	}
	byType := map[metricType]int{}
	for _, e := range reg {
		byType[e.typ]++
	}
	r.check(len(reg) >= 30, "the code registers %d pingan_* metric families (%d counters, %d gauges, %d histograms)",
		len(reg), byType["counter"], byType["gauge"], byType["histogram"])

	// what running services expose must be what the code scan found (same names, same types)
	seen := map[string]bool{}
	for _, u := range scrapes {
		fams, err := scrape(u)
		if !r.check(err == nil, "scrape %s", u) {
			fmt.Printf("          %v\n", err)
			continue
		}
		n := 0
		for name, f := range fams {
			if !strings.HasPrefix(name, "pingan_") {
				continue
			}
			n++
			seen[name] = true
			e, ok := reg[name]
			want := strings.ToLower(f.GetType().String())
			if !ok {
				r.fail("%s exposes %s (%s), which the code scan did not find", u, name, want)
			} else if string(e.typ) != want {
				r.fail("%s exposes %s as a %s; the code scan says %s", u, name, want, e.typ)
			}
		}
		r.check(n > 0, "%s: %d pingan_* families, each registered in the code with the same type", u, n)
	}

	if len(scrapes) > 0 {
		fmt.Printf("    info: %d of the %d families the code registers were exposed by the running services (the rest appear once their first sample is recorded)\n", len(seen), len(reg))
	}

	// every metric named by a rule or a dashboard exists
	series := reg.seriesNames()
	p := parser.NewParser(parser.Options{})
	used := map[string]bool{}
	var files []string
	for _, a := range fset.Args() {
		st, err := os.Stat(a)
		if err != nil {
			r.fail("%v", err)
			continue
		}
		if st.IsDir() {
			_ = filepath.WalkDir(a, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".json") || strings.HasSuffix(path, "rules.yml")) {
					files = append(files, path)
				}
				return nil
			})
		} else {
			files = append(files, a)
		}
	}
	sort.Strings(files)
	for _, f := range files {
		var refs []exprRef
		var err error
		if strings.HasSuffix(f, ".json") {
			refs, err = exprsInDashboard(f)
		} else {
			refs, err = exprsInRules(f)
		}
		if !r.check(err == nil, "%s parses", f) {
			fmt.Printf("          %v\n", err)
			continue
		}
		bad := 0
		names := 0
		for _, ref := range refs {
			ns, err := namesIn(p, ref.expr)
			if err != nil {
				r.fail("%s: PromQL does not parse: %v\n          %s", ref.where, err, ref.expr)
				bad++
				continue
			}
			if len(ns) == 0 {
				r.fail("%s: selects no metric: %s", ref.where, ref.expr)
				bad++
			}
			for _, n := range ns {
				names++
				fam, ok := series[n]
				if !ok && slices.Contains(allowed, n) {
					continue
				}
				if !ok {
					r.fail("%s: %s is not a metric the code exports", ref.where, n)
					bad++
					continue
				}
				used[fam] = true
			}
		}
		r.check(bad == 0 && len(refs) > 0, "%s: %d expressions, %d metric references, all exported by the code", f, len(refs), names)
	}
	for _, req := range required {
		r.check(used[req], "a dashboard or rule shows %s", req)
	}
	var unused []string
	for name := range reg {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	fmt.Printf("    info: %d of %d exported families appear in no dashboard or rule: %s\n", len(unused), len(reg), strings.Join(unused, " "))
	r.done("metrics")
}
