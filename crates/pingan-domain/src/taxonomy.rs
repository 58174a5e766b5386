//! The incident taxonomy: 10 categories, 62 subtypes, and the departments incidents are routed to.
//!
//! The data lives in `schemas/taxonomy.tsv` and `schemas/departments.tsv`; both are embedded so the
//! domain crate stays free of I/O, and both can be replaced by a user-supplied table through
//! [`Taxonomy::from_tsv`], which reports every problem it finds rather than the first.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

const TAXONOMY_TSV: &str = include_str!("../../../schemas/taxonomy.tsv");
const DEPARTMENTS_TSV: &str = include_str!("../../../schemas/departments.tsv");

/// One of the ten top-level categories, e.g. `FRAUD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// Two-digit number (`10` … `99`); subtypes share its first two digits.
    pub num: u16,
    /// Stable code, e.g. `FRAUD`.
    pub code: String,
    /// Chinese label.
    pub name_zh: String,
    /// English label.
    pub name_en: String,
}

/// Whether an incident is police business, which drives routing and "valid incident" totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoliceRemit {
    /// Inside police remit.
    Yes,
    /// Another department's business.
    No,
    /// Police do first response only when there is risk (`N*`).
    FirstResponseOnly,
    /// Not applicable (invalid or duplicate calls).
    NotApplicable,
}

/// One of the 62 subtypes, e.g. `FRAUD_FAKE_GOV`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subtype {
    /// Four-digit number; the first two digits are the category number.
    pub num: u16,
    /// Stable code, e.g. `FRAUD_FAKE_GOV`.
    pub code: String,
    /// Code of the parent category.
    pub category: String,
    /// Chinese label.
    pub name_zh: String,
    /// English label.
    pub name_en: String,
    /// Police remit.
    pub police: PoliceRemit,
    /// Branch named with the remit (`mediate`, `traffic`, `fire` …), when any.
    pub police_branch: Option<String>,
    /// Default priority, 1 (most urgent) to 4; `None` for duplicates.
    pub default_priority: Option<u8>,
}

/// A department code with labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    /// Stable code, e.g. `SAMR`.
    pub code: String,
    /// Chinese label.
    pub name_zh: String,
    /// English label.
    pub name_en: String,
    /// Whether the Minhang-specific body was confirmed by a public source.
    pub verified: bool,
}

/// A problem found in a taxonomy or department table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableProblem {
    /// Which table (`taxonomy`, `departments`, `routing`).
    pub table: &'static str,
    /// 1-based line number, 0 when the problem concerns the table as a whole.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for TableProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}: {}", self.table, self.line, self.reason)
    }
}

/// Every problem found while loading a reference table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference table: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct TableError(pub Vec<TableProblem>);

/// Categories, subtypes and departments, indexed by code.
#[derive(Debug, Clone)]
pub struct Taxonomy {
    categories: Vec<Category>,
    subtypes: Vec<Subtype>,
    departments: Vec<Department>,
    subtype_index: BTreeMap<String, usize>,
    category_index: BTreeMap<String, usize>,
}

/// Iterates the non-comment, non-empty lines of a TSV with their 1-based line numbers,
/// skipping the header row.
pub(crate) fn tsv_rows(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .skip(1)
        .map(|(i, l)| (i + 1, l.split('\t').map(str::trim).collect()))
}

impl Taxonomy {
    /// The taxonomy shipped with pingan (`schemas/taxonomy.tsv`, `schemas/departments.tsv`).
    ///
    /// # Panics
    /// Never in a released build: the embedded tables are validated by this crate's tests.
    #[allow(clippy::expect_used)]
    pub fn builtin() -> &'static Taxonomy {
        static BUILTIN: OnceLock<Taxonomy> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Taxonomy::from_tsv(TAXONOMY_TSV, DEPARTMENTS_TSV)
                .expect("invariant: builtin taxonomy is validated by tests")
        })
    }

    /// Parses and validates a taxonomy and a department table, reporting every problem.
    pub fn from_tsv(taxonomy: &str, departments: &str) -> Result<Taxonomy, TableError> {
        let mut problems = Vec::new();
        let mut bad = |table, line, reason: String| {
            problems.push(TableProblem {
                table,
                line,
                reason,
            })
        };
        let mut categories = Vec::new();
        let mut subtypes = Vec::new();
        for (line, cols) in tsv_rows(taxonomy) {
            if cols.len() != 8 {
                bad(
                    "taxonomy",
                    line,
                    format!("expected 8 columns, found {}", cols.len()),
                );
                continue;
            }
            let Ok(num) = cols[1].parse::<u16>() else {
                bad(
                    "taxonomy",
                    line,
                    format!("number {:?} is not an integer", cols[1]),
                );
                continue;
            };
            let code = cols[2].to_owned();
            if code.is_empty() || !code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                bad(
                    "taxonomy",
                    line,
                    format!("code {code:?} must be UPPER_SNAKE ASCII"),
                );
            }
            match cols[0] {
                "category" => categories.push(Category {
                    num,
                    code,
                    name_zh: cols[4].to_owned(),
                    name_en: cols[5].to_owned(),
                }),
                "subtype" => {
                    let (police, branch) = match cols[6].split_once(':') {
                        Some((p, b)) => (p, Some(b.to_owned())),
                        None => (cols[6], None),
                    };
                    let police = match police {
                        "Y" => PoliceRemit::Yes,
                        "N" => PoliceRemit::No,
                        "N*" => PoliceRemit::FirstResponseOnly,
                        "-" => PoliceRemit::NotApplicable,
                        other => {
                            bad(
                                "taxonomy",
                                line,
                                format!("police flag {other:?} is not Y, N, N* or -"),
                            );
                            continue;
                        }
                    };
                    let default_priority = match cols[7] {
                        "-" => None,
                        p => match p.parse::<u8>() {
                            Ok(v @ 1..=4) => Some(v),
                            _ => {
                                bad("taxonomy", line, format!("priority {p:?} is not 1-4 or -"));
                                continue;
                            }
                        },
                    };
                    subtypes.push(Subtype {
                        num,
                        code,
                        category: cols[3].to_owned(),
                        name_zh: cols[4].to_owned(),
                        name_en: cols[5].to_owned(),
                        police,
                        police_branch: branch,
                        default_priority,
                    });
                }
                other => bad(
                    "taxonomy",
                    line,
                    format!("level {other:?} is not category or subtype"),
                ),
            }
        }
        let mut depts = Vec::new();
        for (line, cols) in tsv_rows(departments) {
            if cols.len() != 4 {
                bad(
                    "departments",
                    line,
                    format!("expected 4 columns, found {}", cols.len()),
                );
                continue;
            }
            depts.push(Department {
                code: cols[0].to_owned(),
                name_zh: cols[1].to_owned(),
                name_en: cols[2].to_owned(),
                verified: cols[3] == "Y",
            });
        }
        let mut category_index = BTreeMap::new();
        for (i, c) in categories.iter().enumerate() {
            if category_index.insert(c.code.clone(), i).is_some() {
                bad("taxonomy", 0, format!("duplicate category {}", c.code));
            }
        }
        let mut subtype_index = BTreeMap::new();
        for (i, s) in subtypes.iter().enumerate() {
            if subtype_index.insert(s.code.clone(), i).is_some() {
                bad("taxonomy", 0, format!("duplicate subtype {}", s.code));
            }
            match category_index.get(&s.category).map(|&c| &categories[c]) {
                None => bad(
                    "taxonomy",
                    0,
                    format!("subtype {} has unknown category {}", s.code, s.category),
                ),
                Some(c) => {
                    if s.num / 100 != c.num {
                        bad(
                            "taxonomy",
                            0,
                            format!(
                                "subtype {} number {} is outside category {}",
                                s.code, s.num, c.code
                            ),
                        );
                    }
                    if !s.code.starts_with(&format!("{}_", c.code)) {
                        bad(
                            "taxonomy",
                            0,
                            format!("subtype {} does not start with {}_", s.code, c.code),
                        );
                    }
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &depts {
            if !seen.insert(d.code.clone()) {
                bad("departments", 0, format!("duplicate department {}", d.code));
            }
        }
        if problems.is_empty() {
            Ok(Taxonomy {
                categories,
                subtypes,
                departments: depts,
                subtype_index,
                category_index,
            })
        } else {
            Err(TableError(problems))
        }
    }

    /// All categories in table order.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// All subtypes in table order.
    pub fn subtypes(&self) -> &[Subtype] {
        &self.subtypes
    }

    /// All departments in table order.
    pub fn departments(&self) -> &[Department] {
        &self.departments
    }

    /// Looks a subtype up by code.
    pub fn subtype(&self, code: &str) -> Option<&Subtype> {
        self.subtype_index.get(code).map(|&i| &self.subtypes[i])
    }

    /// Looks a category up by code.
    pub fn category(&self, code: &str) -> Option<&Category> {
        self.category_index.get(code).map(|&i| &self.categories[i])
    }

    /// Looks a department up by code.
    pub fn department(&self, code: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.code == code)
    }

    /// The subtypes of one category.
    pub fn subtypes_of<'a>(&'a self, category: &'a str) -> impl Iterator<Item = &'a Subtype> + 'a {
        self.subtypes.iter().filter(move |s| s.category == category)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_taxonomy_has_ten_categories_and_62_subtypes() {
        let t = Taxonomy::builtin();
        assert_eq!(t.categories().len(), 10);
        assert_eq!(t.subtypes().len(), 62);
        assert_eq!(t.departments().len(), 14);
    }

    #[test]
    fn every_subtype_has_exactly_one_known_category() {
        let t = Taxonomy::builtin();
        for s in t.subtypes() {
            let c = t.category(&s.category).expect("category exists");
            assert_eq!(s.num / 100, c.num, "{}", s.code);
            let owners = t
                .categories()
                .iter()
                .filter(|c| s.code.starts_with(&format!("{}_", c.code)))
                .count();
            assert_eq!(owners, 1, "{} must belong to one category", s.code);
        }
        for c in t.categories() {
            assert!(
                t.subtypes_of(&c.code).count() >= 3,
                "{} has few subtypes",
                c.code
            );
        }
    }

    #[test]
    fn labels_are_present_in_both_languages() {
        let t = Taxonomy::builtin();
        for s in t.subtypes() {
            assert!(!s.name_zh.is_empty() && !s.name_en.is_empty(), "{}", s.code);
        }
        for d in t.departments() {
            assert!(!d.name_zh.is_empty() && !d.name_en.is_empty(), "{}", d.code);
        }
    }

    #[test]
    fn contract_examples_resolve() {
        let t = Taxonomy::builtin();
        assert_eq!(
            t.subtype("FRAUD_FAKE_GOV").map(|s| s.default_priority),
            Some(Some(2))
        );
        assert_eq!(
            t.subtype("OTH_DUPLICATE").map(|s| s.default_priority),
            Some(None)
        );
        assert_eq!(
            t.subtype("DSP_CONSUMER").map(|s| s.police),
            Some(PoliceRemit::No)
        );
        assert_eq!(
            t.subtype("TRF_PARKING").map(|s| s.police),
            Some(PoliceRemit::FirstResponseOnly)
        );
    }

    #[test]
    fn invalid_tables_report_every_problem_with_line_numbers() {
        let tax = "level\tnum\tcode\tcategory\tname_zh\tname_en\tpolice\tpriority\n\
                   category\t10\tCRIM\tCRIM\t刑事\tCriminal\t-\t-\n\
                   subtype\t1001\tCRIM_A\tCRIM\t甲\tA\tmaybe\t2\n\
                   subtype\t2001\tCRIM_B\tCRIM\t乙\tB\tY\t9\n\
                   subtype\t1002\tX_C\tNOPE\t丙\tC\tY\t2\n";
        let err = Taxonomy::from_tsv(tax, "code\tname_zh\tname_en\tverified\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("line 3") && text.contains("police flag"),
            "{text}"
        );
        assert!(
            text.contains("line 4") && text.contains("priority"),
            "{text}"
        );
        assert!(text.contains("unknown category NOPE"), "{text}");
    }
}
