package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

type instr struct {
	line int
	cmd  string // upper case
	args string
}

// parseContainerfile: instructions with line continuations joined and comments dropped.
func parseContainerfile(path string) ([]instr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []instr
	sc := bufio.NewScanner(f)
	n, start := 0, 0
	cur := ""
	for sc.Scan() {
		n++
		line := sc.Text()
		t := strings.TrimSpace(line)
		if cur == "" && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if cur != "" && strings.HasPrefix(t, "#") {
			continue
		}
		if cur == "" {
			start = n
		}
		if strings.HasSuffix(t, "\\") {
			cur += strings.TrimSuffix(t, "\\") + " "
			continue
		}
		cur += t
		cmd, args, _ := strings.Cut(cur, " ")
		out = append(out, instr{start, strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur = ""
	}
	return out, sc.Err()
}

// runContainerfile: hadolint-style rules for deploy/image/Containerfile plus pingan's own:
// the runtime stage runs the binary as a numeric non-root user, has a HEALTHCHECK, exposes the
// ports the image's pingan.toml listens on, and copies only what the build stage produced.
func runContainerfile(args []string) {
	fs := flag.NewFlagSet("containerfile", flag.ExitOnError)
	context := fs.String("context", ".", "build context (repository root)")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	r := &report{}
	ins, err := parseContainerfile(fs.Arg(0))
	if !r.check(err == nil && len(ins) > 0, "%s parses (%d instructions)", fs.Arg(0), len(ins)) {
		r.done("containerfile")
	}
	argDefaults := map[string]string{}
	var stages [][]instr
	var stageNames []string
	for _, in := range ins {
		switch in.cmd {
		case "ARG":
			if len(stages) == 0 {
				k, v, _ := strings.Cut(in.args, "=")
				argDefaults[k] = v
			}
		case "FROM":
			stages = append(stages, nil)
			f := strings.Fields(in.args)
			name := ""
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				name = f[2]
			}
			stageNames = append(stageNames, name)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	r.check(len(stages) >= 2, "multi-stage (%d stages)", len(stages))
	varRe := regexp.MustCompile(`\$\{?([A-Z_]+)\}?`)
	for i, st := range stages {
		img := strings.Fields(st[0].args)[0]
		img = varRe.ReplaceAllStringFunc(img, func(m string) string { return argDefaults[varRe.FindStringSubmatch(m)[1]] })
		ref := img[strings.LastIndex(img, "/")+1:]
		r.check(strings.Contains(ref, ":") && !strings.HasSuffix(ref, ":latest"),
			"stage %d FROM %s: a pinned tag, not latest (DL3006/DL3007)", i+1, img)
	}
	final := stages[len(stages)-1]
	last := func(cmd string) *instr {
		var l *instr
		for i := range final {
			if final[i].cmd == cmd {
				l = &final[i]
			}
		}
		return l
	}
	user := last("USER")
	if r.check(user != nil, "the runtime stage sets USER (DL3002)") {
		u, g, _ := strings.Cut(user.args, ":")
		uid, err1 := strconv.Atoi(u)
		_, err2 := strconv.Atoi(g)
		r.check(err1 == nil && err2 == nil && uid != 0, "USER %s: numeric and not root (Kubernetes runAsNonRoot can verify it)", user.args)
	}
	hc := last("HEALTHCHECK")
	r.check(hc != nil && strings.Contains(hc.args, "CMD [\""), "the runtime stage has a HEALTHCHECK in exec form")
	for _, c := range []string{"ENTRYPOINT", "CMD"} {
		in := last(c)
		var arr []string
		r.check(in != nil && json.Unmarshal([]byte(in.args), &arr) == nil, "%s in JSON (exec) form (DL3025)", c)
	}
	for _, in := range ins {
		if in.cmd == "ADD" {
			r.fail("line %d: ADD; use COPY (DL3020)", in.line)
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "apt-get install") {
			r.check(strings.Contains(in.args, "--no-install-recommends") && strings.Contains(in.args, " -y"),
				"line %d: apt-get install -y --no-install-recommends (DL3014/DL3015)", in.line)
			r.check(strings.Contains(in.args, "rm -rf /var/lib/apt/lists"), "line %d: apt lists removed in the same RUN (DL3009)", in.line)
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "sudo ") {
			r.fail("line %d: sudo in RUN (DL3004)", in.line)
		}
		if in.cmd == "WORKDIR" && !strings.HasPrefix(in.args, "/") {
			r.fail("line %d: relative WORKDIR (DL3000)", in.line)
		}
	}
	// the final stage copies from the build stage only, and from no stage that is not defined
	for _, in := range final {
		if in.cmd != "COPY" {
			continue
		}
		m := regexp.MustCompile(`--from=(\S+)`).FindStringSubmatch(in.args)
		r.check(m != nil && slices.Contains(stageNames, m[1]), "line %d: runtime COPY takes files from a build stage (%s)", in.line, in.args)
	}
	// files the build stage installs from the context exist
	ctxRe := regexp.MustCompile(`(?:^|\s)((?:deploy|schemas)/[A-Za-z0-9_./-]+)`)
	for _, in := range stages[0] {
		if in.cmd != "RUN" {
			continue
		}
		for _, m := range ctxRe.FindAllStringSubmatch(in.args, -1) {
			_, err := os.Stat(filepath.Join(*context, m[1]))
			r.check(err == nil, "build context has %s", m[1])
		}
	}
	// EXPOSE = the ports of the image's pingan.toml
	conf := map[string]any{}
	_, err = toml.DecodeFile(filepath.Join(*context, "deploy/image/pingan.toml"), &conf)
	if r.check(err == nil, "deploy/image/pingan.toml parses") {
		var want []string
		for _, k := range listenKey {
			if p, ok := portOf(conf, k); ok && hostOf(conf, k) == "0.0.0.0" {
				want = append(want, strconv.Itoa(int(p)))
			}
		}
		slices.Sort(want)
		var got []string
		if ex := last("EXPOSE"); ex != nil {
			got = strings.Fields(ex.args)
		}
		slices.Sort(got)
		r.check(len(want) == 4 && slices.Equal(want, got), "EXPOSE %v = the four services' ports on 0.0.0.0 in deploy/image/pingan.toml %v", got, want)
	}
	// .dockerignore keeps build output and caches out of the context
	di, err := os.ReadFile(filepath.Join(*context, ".dockerignore"))
	if r.check(err == nil, ".dockerignore exists") {
		for _, must := range []string{"target", ".git", ".cache", ".dev"} {
			r.check(slices.Contains(strings.Fields(string(di)), must), ".dockerignore excludes %s", must)
		}
	}
	r.done("containerfile")
}
