package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// checkDashboards: structure of Grafana dashboard JSON files (what Grafana needs to import them
// and what keeps them portable): unique uids, titles, unique panel ids, grid positions inside the
// 24-column grid without overlaps, every Prometheus panel on the ${datasource} variable, and a
// datasource variable to pick it.
func runDashboards(args []string) {
	r := &report{}
	uids := map[string]string{}
	for _, dir := range args {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		r.check(len(files) > 0, "%s holds dashboards (%d)", dir, len(files))
		for _, f := range files {
			data, err := os.ReadFile(f)
			var d struct {
				UID           string           `json:"uid"`
				Title         string           `json:"title"`
				SchemaVersion int              `json:"schemaVersion"`
				Panels        []map[string]any `json:"panels"`
				Templating    struct {
					List []map[string]any `json:"list"`
				} `json:"templating"`
			}
			if err == nil {
				err = json.Unmarshal(data, &d)
			}
			if !r.check(err == nil, "%s is JSON", f) {
				continue
			}
			base := filepath.Base(f)
			r.check(d.UID != "" && len(d.UID) <= 40 && d.Title != "" && d.SchemaVersion >= 36, "%s: uid %q, title %q, schemaVersion %d", base, d.UID, d.Title, d.SchemaVersion)
			if prev, dup := uids[d.UID]; dup {
				r.fail("%s: uid %s also used by %s", base, d.UID, prev)
			}
			uids[d.UID] = base
			hasDS := false
			for _, v := range d.Templating.List {
				if v["type"] == "datasource" && v["name"] == "datasource" && v["query"] == "prometheus" {
					hasDS = true
				}
			}
			r.check(hasDS, "%s: a Prometheus datasource variable", base)
			ids := map[float64]bool{}
			occupied := map[[2]int]string{}
			bad := []string{}
			for _, p := range d.Panels {
				title, _ := p["title"].(string)
				id, _ := p["id"].(float64)
				if ids[id] || id == 0 {
					bad = append(bad, "duplicate or missing id: "+title)
				}
				ids[id] = true
				gp, _ := p["gridPos"].(map[string]any)
				x, _ := gp["x"].(float64)
				y, _ := gp["y"].(float64)
				w, _ := gp["w"].(float64)
				h, _ := gp["h"].(float64)
				if w <= 0 || h <= 0 || x < 0 || x+w > 24 {
					bad = append(bad, "grid position: "+title)
				}
				for i := int(x); i < int(x+w); i++ {
					for j := int(y); j < int(y+h); j++ {
						if o, taken := occupied[[2]int{i, j}]; taken {
							bad = append(bad, "overlaps "+o+": "+title)
							i, j = 1<<30, 1<<30
							break
						}
						occupied[[2]int{i, j}] = title
					}
				}
				if p["type"] == "row" {
					continue
				}
				ds, _ := p["datasource"].(map[string]any)
				targets, _ := p["targets"].([]any)
				if ds["uid"] != "${datasource}" || len(targets) == 0 {
					bad = append(bad, "datasource/targets: "+title)
				}
				for _, t := range targets {
					tm, _ := t.(map[string]any)
					tds, _ := tm["datasource"].(map[string]any)
					if e, _ := tm["expr"].(string); strings.TrimSpace(e) == "" || tds["uid"] != "${datasource}" {
						bad = append(bad, "target without expr or datasource: "+title)
					}
				}
			}
			r.check(len(bad) == 0, "%s: %d panels with unique ids, inside the grid, not overlapping, on ${datasource} %v", base, len(d.Panels), bad)
		}
	}
	r.done("dashboards")
}
