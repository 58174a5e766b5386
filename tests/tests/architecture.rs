//! The dependency rules of ARCHITECTURE.md §2, checked against `cargo metadata`.
//!
//! The table is the source of truth: for every crate, each direct dependency on another
//! workspace crate (normal, dev or build) must be named in "May depend on", and nothing named
//! in "Must not depend on" may be reachable through its normal dependencies at all (that is
//! what keeps librdkafka out of the query service's build). A new crate must get a row.
#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// The four services, for "services" / "other services" in the table.
const SERVICES: [&str; 4] = ["ingest", "classifier", "aggregator", "query"];

#[derive(Debug)]
struct Rule {
    may: BTreeSet<String>,
    may_all: bool,
    must_not: BTreeSet<String>,
}

/// Short names of the workspace crates (`pingan-query` → `query`; the binary is `pingan`).
fn short(name: &str) -> String {
    name.strip_prefix("pingan-").unwrap_or(name).to_owned()
}

fn parse_table(markdown: &str, workspace: &BTreeSet<String>) -> BTreeMap<String, Rule> {
    let section = markdown
        .split("## 2. Crates and dependency rules")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("ARCHITECTURE.md has a section 2 with the crate table");
    let mut rules = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // ["", crate, role, may, must not, ""]
        assert_eq!(cells.len(), 6, "a crate row has four columns: {line}");
        let name = cells[1]
            .split('`')
            .nth(1)
            .expect("the crate name is in backticks");
        let words = |cell: &str| -> Vec<String> {
            // Parenthetical remarks are prose, not names.
            let mut plain = String::new();
            let mut depth = 0;
            for ch in cell.chars() {
                match ch {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ if depth == 0 => plain.push(ch),
                    _ => {}
                }
            }
            plain
                .split(',')
                .map(|w| w.replace('`', "").trim().to_owned())
                .filter(|w| !w.is_empty() && w != "—")
                .collect()
        };
        let expand = |w: &str| -> Vec<String> {
            match w {
                "services" | "other services" => SERVICES.iter().map(|s| (*s).to_owned()).collect(),
                "other pingan-*" => workspace.iter().cloned().collect(),
                _ => vec![short(w)],
            }
        };
        let may_words = words(cells[3]);
        let may_all = may_words
            .iter()
            .any(|w| w == "everything" || w == "everything above");
        let may = may_words.iter().flat_map(|w| expand(w)).collect();
        let mut must_not: BTreeSet<String> =
            words(cells[4]).iter().flat_map(|w| expand(w)).collect();
        must_not.remove(&short(name));
        rules.insert(
            short(name),
            Rule {
                may,
                may_all,
                must_not,
            },
        );
    }
    rules
}

struct Graph {
    /// Workspace crate → its direct workspace dependencies (any kind).
    direct: BTreeMap<String, BTreeSet<String>>,
    /// Package id → ids of its normal dependencies (resolved).
    normal: BTreeMap<String, Vec<String>>,
    /// Package id → short name.
    names: BTreeMap<String, String>,
    /// Workspace crate short name → package id.
    ids: BTreeMap<String, String>,
}

/// The host's target triple: metadata for other platforms would need their crates downloaded.
fn host() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host")
}

fn metadata() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let members: BTreeSet<String> = meta["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let mut names = BTreeMap::new();
    let mut ids = BTreeMap::new();
    let mut direct = BTreeMap::new();
    let workspace_names: BTreeSet<String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| members.contains(p["id"].as_str().unwrap_or_default()))
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    for p in meta["packages"].as_array().expect("packages") {
        let id = p["id"].as_str().unwrap_or_default().to_owned();
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        names.insert(id.clone(), short(&name));
        if members.contains(&id) {
            ids.insert(short(&name), id);
            let deps: BTreeSet<String> = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter_map(|d| d["name"].as_str())
                .filter(|d| workspace_names.contains(*d))
                .map(short)
                .collect();
            direct.insert(short(&name), deps);
        }
    }
    let mut normal = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().expect("resolve") {
        let id = node["id"].as_str().unwrap_or_default().to_owned();
        let deps = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k["kind"].is_null()))
            })
            .filter_map(|d| d["pkg"].as_str().map(str::to_owned))
            .collect();
        normal.insert(id, deps);
    }
    Graph {
        direct,
        normal,
        names,
        ids,
    }
}

impl Graph {
    /// Everything `id` reaches through normal dependencies, by short name, with one path each.
    fn reachable(&self, id: &str) -> BTreeMap<String, Vec<String>> {
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut stack = vec![(id.to_owned(), vec![self.names[id].clone()])];
        let mut visited = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            if !visited.insert(at.clone()) {
                continue;
            }
            for dep in self.normal.get(&at).into_iter().flatten() {
                let name = self.names[dep].clone();
                let mut p = path.clone();
                p.push(name.clone());
                seen.entry(name).or_insert_with(|| p.clone());
                stack.push((dep.clone(), p));
            }
        }
        seen
    }
}

fn violations(rules: &BTreeMap<String, Rule>, graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for (krate, deps) in &graph.direct {
        let Some(rule) = rules.get(krate) else {
            problems.push(format!(
                "{krate} has no row in ARCHITECTURE.md's crate table"
            ));
            continue;
        };
        if !rule.may_all {
            for dep in deps.iter().filter(|d| !rule.may.contains(*d)) {
                problems.push(format!(
                    "{krate} depends on {dep}, which its row does not allow"
                ));
            }
        }
        let reach = graph.reachable(&graph.ids[krate]);
        for banned in &rule.must_not {
            if let Some(path) = reach.get(banned) {
                problems.push(format!(
                    "{krate} must not depend on {banned}, but does: {}",
                    path.join(" -> ")
                ));
            }
        }
    }
    problems
}

#[test]
fn dependencies_follow_the_architecture_table() {
    let markdown =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md");
    let graph = metadata();
    let workspace: BTreeSet<String> = graph.direct.keys().cloned().collect();
    let rules = parse_table(&markdown, &workspace);
    let problems = violations(&rules, &graph);
    assert!(
        problems.is_empty(),
        "dependency rules broken:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_checker_catches_forbidden_edges() {
    // The real graph with one edge added the table forbids: a service on a service, and the
    // query service on the pipeline (and through it librdkafka).
    let markdown =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md");
    let mut graph = metadata();
    let workspace: BTreeSet<String> = graph.direct.keys().cloned().collect();
    let rules = parse_table(&markdown, &workspace);
    let query = graph.ids["query"].clone();
    let pipeline = graph.ids["pipeline"].clone();
    graph
        .direct
        .get_mut("query")
        .expect("query")
        .insert("pipeline".into());
    graph
        .normal
        .get_mut(&query)
        .expect("query node")
        .push(pipeline);
    graph
        .direct
        .get_mut("classifier")
        .expect("classifier")
        .insert("aggregator".into());
    let problems = violations(&rules, &graph);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("query depends on pipeline")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("query must not depend on rdkafka")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("classifier depends on aggregator")),
        "{problems:?}"
    );
}
