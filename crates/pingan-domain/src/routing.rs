//! Routing: which department is responsible for an incident.
//!
//! The subtype table (`schemas/routing.tsv`) gives a primary and secondary departments per
//! subtype, with `CATEGORY_*` rows as the default for every subtype of a category that has no
//! row of its own. Location overrides depend on where the incident is, so they live here as
//! code rather than as table rows:
//!
//! * a dispute at a scenic area goes to scenic-area management (SCENIC) first, because the
//!   立码办 desks there settle tourist disputes faster than a patrol can;
//! * parking, utility and property-management problems inside a residential compound go to
//!   housing/property management first (古美 diverted 86% of 挪车 calls this way);
//! * missing persons and lost property in a scenic area add SCENIC as a secondary department.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::taxonomy::{TableError, TableProblem, Taxonomy, tsv_rows};

const ROUTING_TSV: &str = include_str!("../../../schemas/routing.tsv");

/// Where the incident happened, as far as routing cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteContext {
    /// The location resolved to a scenic-area POI (e.g. 七宝老街).
    pub scenic_area: bool,
    /// The location resolved to a residential compound, or the text says so (小区里, 地库 …).
    pub inside_compound: bool,
}

/// The departments responsible for an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Primary department; `None` for invalid and duplicate calls.
    pub primary: Option<&'static str>,
    /// Secondary departments, without the primary, in table order.
    pub secondary: Vec<&'static str>,
}

#[derive(Debug, Clone)]
struct Rule {
    primary: Option<&'static str>,
    secondary: Vec<&'static str>,
}

/// The routing table, validated against a [`Taxonomy`].
#[derive(Debug, Clone)]
pub struct Router {
    exact: BTreeMap<String, Rule>,
    by_category: BTreeMap<String, Rule>,
}

fn leak(s: &str) -> &'static str {
    // Department codes are a closed set of a dozen short strings loaded once per process;
    // interning them as 'static keeps `Route` allocation-light on the hot path.
    Box::leak(s.to_owned().into_boxed_str())
}

impl Router {
    /// The routing table shipped with pingan.
    ///
    /// # Panics
    /// Never in a released build: the embedded table is validated by this crate's tests.
    #[allow(clippy::expect_used)]
    pub fn builtin() -> &'static Router {
        static BUILTIN: OnceLock<Router> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Router::from_tsv(ROUTING_TSV, Taxonomy::builtin())
                .expect("invariant: builtin routing table is validated by tests")
        })
    }

    /// Parses a routing table, checking every subtype and department code against `taxonomy`.
    pub fn from_tsv(text: &str, taxonomy: &Taxonomy) -> Result<Router, TableError> {
        let mut problems = Vec::new();
        let mut interned: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut dept =
            |code: &str, line: usize, problems: &mut Vec<TableProblem>| -> Option<&'static str> {
                if taxonomy.department(code).is_none() {
                    problems.push(TableProblem {
                        table: "routing",
                        line,
                        reason: format!("unknown department {code}"),
                    });
                    return None;
                }
                Some(
                    *interned
                        .entry(code.to_owned())
                        .or_insert_with(|| leak(code)),
                )
            };
        let mut exact = BTreeMap::new();
        let mut by_category = BTreeMap::new();
        for (line, cols) in tsv_rows(text) {
            if cols.len() != 4 {
                problems.push(TableProblem {
                    table: "routing",
                    line,
                    reason: format!("expected 4 columns, found {}", cols.len()),
                });
                continue;
            }
            let primary = match cols[1] {
                "-" => None,
                code => dept(code, line, &mut problems),
            };
            let secondary = match cols[2] {
                "-" | "" => Vec::new(),
                list => list
                    .split(',')
                    .filter_map(|c| dept(c.trim(), line, &mut problems))
                    .collect(),
            };
            let rule = Rule { primary, secondary };
            if let Some(cat) = cols[0].strip_suffix("_*") {
                if taxonomy.category(cat).is_none() {
                    problems.push(TableProblem {
                        table: "routing",
                        line,
                        reason: format!("unknown category {cat}"),
                    });
                } else if by_category.insert(cat.to_owned(), rule).is_some() {
                    problems.push(TableProblem {
                        table: "routing",
                        line,
                        reason: format!("duplicate row {}", cols[0]),
                    });
                }
            } else if taxonomy.subtype(cols[0]).is_none() {
                problems.push(TableProblem {
                    table: "routing",
                    line,
                    reason: format!("unknown subtype {}", cols[0]),
                });
            } else if exact.insert(cols[0].to_owned(), rule).is_some() {
                problems.push(TableProblem {
                    table: "routing",
                    line,
                    reason: format!("duplicate row {}", cols[0]),
                });
            }
        }
        for s in taxonomy.subtypes() {
            if !exact.contains_key(&s.code) && !by_category.contains_key(&s.category) {
                problems.push(TableProblem {
                    table: "routing",
                    line: 0,
                    reason: format!("subtype {} has no routing rule", s.code),
                });
            }
        }
        if problems.is_empty() {
            Ok(Router { exact, by_category })
        } else {
            Err(TableError(problems))
        }
    }

    /// Whether `subtype` has a rule of its own or through its category.
    pub fn has_rule(&self, subtype: &str) -> bool {
        self.rule(subtype).is_some()
    }

    fn rule(&self, subtype: &str) -> Option<&Rule> {
        self.exact.get(subtype).or_else(|| {
            let (cat, _) = subtype.split_once('_')?;
            self.by_category.get(cat)
        })
    }

    /// Routes one incident. Unknown subtypes go to the police: an emergency is never unrouted
    /// because a code was unexpected.
    pub fn route(&self, subtype: &str, ctx: RouteContext) -> Route {
        let Some(rule) = self.rule(subtype) else {
            return Route {
                primary: Some("POLICE"),
                secondary: Vec::new(),
            };
        };
        let mut primary = rule.primary;
        let mut secondary = rule.secondary.clone();
        let promote = |primary: &mut Option<&'static str>,
                       secondary: &mut Vec<&'static str>,
                       to: &'static str| {
            if *primary == Some(to) {
                return;
            }
            secondary.retain(|d| *d != to);
            if let Some(old) = primary.replace(to) {
                secondary.insert(0, old);
            }
        };
        let is_dispute = subtype.starts_with("DSP_");
        if ctx.scenic_area && is_dispute && primary.is_some() {
            promote(&mut primary, &mut secondary, "SCENIC");
        }
        if ctx.inside_compound
            && matches!(subtype, "TRF_PARKING" | "HAZ_UTILITY" | "DSP_PROPERTY_MGMT")
        {
            promote(&mut primary, &mut secondary, "HOUSING");
        }
        if ctx.scenic_area
            && matches!(subtype, "HELP_MISSING_PERSON" | "HELP_LOST_PROPERTY")
            && !secondary.contains(&"SCENIC")
        {
            secondary.push("SCENIC");
        }
        Route { primary, secondary }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(sub: &str, scenic: bool, compound: bool) -> Route {
        Router::builtin().route(
            sub,
            RouteContext {
                scenic_area: scenic,
                inside_compound: compound,
            },
        )
    }

    #[test]
    fn every_subtype_has_a_routing_rule() {
        let router = Router::builtin();
        for s in Taxonomy::builtin().subtypes() {
            assert!(router.has_rule(&s.code), "{}", s.code);
        }
    }

    #[test]
    fn invalid_and_duplicate_calls_have_no_department() {
        assert_eq!(r("OTH_INVALID", false, false).primary, None);
        assert_eq!(r("OTH_DUPLICATE", true, true).primary, None);
        assert_eq!(r("OTH_UNCLASSIFIED", false, false).primary, Some("POLICE"));
    }

    #[test]
    fn table_rows_follow_the_domain_brief() {
        assert_eq!(
            r("FRAUD_TASK", false, false),
            Route {
                primary: Some("POLICE"),
                secondary: vec!["ANTIFRAUD"]
            }
        );
        assert_eq!(r("DSP_CONSUMER", false, false).primary, Some("SAMR"));
        assert_eq!(r("HAZ_GAS", false, false).primary, Some("FIRE"));
        assert_eq!(r("HELP_SUICIDE", false, false).primary, Some("POLICE"));
        assert_eq!(r("CRIM_OTHER", false, false).primary, Some("POLICE"));
        assert_eq!(r("NONP_CONSULT", false, false).primary, Some("HOTLINE"));
        assert_eq!(
            r("NONP_STREET_VENDING", false, false).primary,
            Some("CHENGGUAN")
        );
        assert_eq!(r("TRF_PARKING", false, false).primary, Some("TRAFFIC"));
    }

    #[test]
    fn disputes_at_a_scenic_area_go_to_scenic_management() {
        let route = r("DSP_CONSUMER", true, false);
        assert_eq!(route.primary, Some("SCENIC"));
        assert_eq!(route.secondary, vec!["SAMR", "POLICE"]);
        assert_eq!(r("DSP_TOURIST", true, false).primary, Some("SCENIC"));
        // Not a dispute: a fight in the old street stays with the police.
        assert_eq!(r("PUB_FIGHT", true, false).primary, Some("POLICE"));
    }

    #[test]
    fn property_issues_inside_a_compound_go_to_housing() {
        assert_eq!(
            r("TRF_PARKING", false, true),
            Route {
                primary: Some("HOUSING"),
                secondary: vec!["TRAFFIC"]
            }
        );
        assert_eq!(r("HAZ_UTILITY", false, true).primary, Some("HOUSING"));
        assert_eq!(r("HAZ_UTILITY", false, true).secondary, vec!["UTILITY"]);
        assert_eq!(r("DSP_PROPERTY_MGMT", false, true).primary, Some("HOUSING"));
    }

    #[test]
    fn help_in_a_scenic_area_adds_scenic_secondary() {
        assert_eq!(
            r("HELP_MISSING_PERSON", true, false).secondary,
            vec!["SCENIC"]
        );
    }

    #[test]
    fn bad_tables_are_rejected_with_reasons() {
        let err = Router::from_tsv(
            "subtype\tprimary\tsecondary\tnote\nNOPE_X\tPOLICE\t-\t-\nCRIM_*\tMARS\t-\t-\n",
            Taxonomy::builtin(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown subtype NOPE_X"), "{err}");
        assert!(err.contains("unknown department MARS"), "{err}");
        assert!(err.contains("has no routing rule"), "{err}");
    }
}
