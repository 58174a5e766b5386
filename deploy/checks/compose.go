package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// The pingan services of the Compose file and their dependencies (service -> condition).
var composeDeps = map[string]map[string]string{
	"pingan-migrate":   {"clickhouse": types.ServiceConditionHealthy},
	"pingan-ingest":    {"kafka-init": types.ServiceConditionCompletedSuccessfully},
	"pingan-classify":  {"kafka-init": types.ServiceConditionCompletedSuccessfully},
	"pingan-aggregate": {"kafka-init": types.ServiceConditionCompletedSuccessfully, "pingan-migrate": types.ServiceConditionCompletedSuccessfully},
	"pingan-serve":     {"pingan-migrate": types.ServiceConditionCompletedSuccessfully},
}

// The image's listen defaults (deploy/image/pingan.toml) and the env var that overrides each.
var composeListen = map[string]struct {
	env  string
	port uint32
}{
	"pingan-ingest":    {"PINGAN__INGEST__LISTEN", 8080},
	"pingan-classify":  {"PINGAN__CLASSIFIER__ADMIN_LISTEN", 8081},
	"pingan-aggregate": {"PINGAN__AGGREGATOR__ADMIN_LISTEN", 8082},
	"pingan-serve":     {"PINGAN__SERVE__LISTEN", 8090},
}

func runCompose(args []string) {
	fs := flag.NewFlagSet("compose", flag.ExitOnError)
	envOut := fs.String("env-out", "", "write each pingan service's PINGAN__ environment to DIR/<service>.env")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	file := fs.Arg(0)
	r := &report{}
	abs, _ := filepath.Abs(file)
	// Interpolation with an empty environment: the file's own ${VAR:-default}s must suffice.
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnv([]string{}),
		cli.WithInterpolation(true),
		cli.WithProfiles([]string{"*"}),
	)
	if err == nil {
		var p *types.Project
		p, err = opts.LoadProject(context.Background())
		if err == nil {
			checkProject(r, p, *envOut)
		}
	}
	if err != nil {
		r.fail("compose-go cannot load %s: %v", file, err)
	}
	r.done("compose")
}

func checkProject(r *report, p *types.Project, envOut string) {
	var names []string
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	r.ok("%s loads and validates against the Compose specification (compose-go): services %s", p.Name, strings.Join(names, " "))
	for _, want := range []string{"kafka", "kafka-init", "clickhouse"} {
		r.check(slices.Contains(names, want), "service %s", want)
	}
	image := ""
	for svc, deps := range composeDeps {
		s, ok := p.Services[svc]
		if !r.check(ok, "service %s", svc) {
			continue
		}
		if image == "" {
			image = s.Image
		}
		r.check(s.Image != "" && s.Image == image, "%s: the one pingan image (%s)", svc, s.Image)
		r.check(s.Build != nil && s.Build.Dockerfile == "deploy/image/Containerfile", "%s: built from deploy/image/Containerfile", svc)
		sub := strings.TrimPrefix(svc, "pingan-")
		r.check(len(s.Command) > 0 && s.Command[0] == sub, "%s: runs `pingan %s` (command %v)", svc, sub, []string(s.Command))
		for dep, cond := range deps {
			d, ok := s.DependsOn[dep]
			r.check(ok && d.Condition == cond, "%s: waits for %s (%s)", svc, dep, cond)
		}
		r.check(s.ReadOnly, "%s: read-only root filesystem", svc)
		r.check(s.User == "" || !strings.HasPrefix(s.User, "0") && s.User != "root", "%s: not root (user %q; the image's is 65532)", svc, s.User)
		env := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		r.check(strings.Contains(env["PINGAN__KAFKA__BOOTSTRAP_SERVERS"], "kafka:"), "%s: Kafka at the kafka service (%s)", svc, env["PINGAN__KAFKA__BOOTSTRAP_SERVERS"])
		r.check(strings.HasPrefix(env["PINGAN__CLICKHOUSE__URL"], "http://clickhouse:"), "%s: ClickHouse at the clickhouse service (%s)", svc, env["PINGAN__CLICKHOUSE__URL"])
		if l, ok := composeListen[svc]; ok {
			port := l.port
			if v := env[l.env]; v != "" {
				_, ps, err := net.SplitHostPort(v)
				if err == nil {
					fmt.Sscan(ps, &port)
				}
			}
			hc := s.HealthCheck
			r.check(hc != nil && !hc.Disable && len(hc.Test) > 1 && hc.Test[1] == "/usr/local/bin/pingan-healthcheck",
				"%s: health check with the image's pingan-healthcheck", svc)
			published := false
			for _, pp := range s.Ports {
				if pp.Target == port {
					published = true
					r.check(pp.HostIP == "127.0.0.1", "%s: port %d published on loopback only (%q)", svc, port, pp.HostIP)
				} else {
					r.fail("%s: publishes port %d, which it does not listen on (%d)", svc, pp.Target, port)
				}
			}
			r.check(published, "%s: its port %d is published for the host (API or /metrics)", svc, port)
		} else {
			r.check(s.Restart == "no" || s.Restart == "" || s.Restart == types.RestartPolicyOnFailure, "%s: a one-shot (restart %q)", svc, s.Restart)
		}
		if envOut != "" {
			var lines []string
			for k, v := range env {
				if strings.HasPrefix(k, "PINGAN") {
					lines = append(lines, k+"="+v)
				}
			}
			sort.Strings(lines)
			if err := os.WriteFile(filepath.Join(envOut, svc+".env"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				r.fail("write env: %v", err)
			}
		}
	}
	for _, svc := range []string{"kafka", "clickhouse"} {
		s, ok := p.Services[svc]
		if !ok {
			continue
		}
		r.check(s.HealthCheck != nil && !s.HealthCheck.Disable, "%s: health check (others wait for it)", svc)
		for _, pp := range s.Ports {
			r.check(pp.HostIP == "127.0.0.1", "%s: port %d published on loopback only", svc, pp.Target)
		}
	}
}
