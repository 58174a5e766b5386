//! Reading the reference TSV tables into rows, collecting every problem instead of stopping.
//!
//! Tables are looked up by header name rather than position, so a user-supplied table may
//! reorder columns or add its own; comment lines start with `#`, and `-` or an empty cell
//! means "no value" for optional columns.

use std::collections::HashMap;
use std::str::FromStr;

use super::{AreaProblem, Table};

/// Stable lower-case codes for the small enums stored in the tables.
pub(crate) trait TableCode: Sized + Copy + 'static {
    /// Every value, used both to parse and to list the accepted spellings in errors.
    const ALL: &'static [Self];
    /// The code as written in the tables.
    fn code(self) -> &'static str;
    /// Extra accepted spellings (e.g. DOMAIN.md's `V~` for `weak`).
    fn aliases(self) -> &'static [&'static str] {
        &[]
    }
    fn parse_code(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.code() == s || v.aliases().contains(&s))
    }
}

/// A parsed table: the column positions and the data rows with their 1-based line numbers.
pub(crate) struct TableRows<'a> {
    table: Table,
    columns: HashMap<&'a str, usize>,
    rows: Vec<(usize, Vec<&'a str>)>,
}

impl<'a> TableRows<'a> {
    /// Splits `text` into rows; reports missing required columns once for the whole table.
    pub(crate) fn parse(
        table: Table,
        text: &'a str,
        required: &[&str],
        problems: &mut Vec<AreaProblem>,
    ) -> TableRows<'a> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
        let columns: HashMap<&str, usize> = match lines.next() {
            Some((_, header)) => header.split('\t').map(str::trim).zip(0..).collect(),
            None => HashMap::new(),
        };
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|c| !columns.contains_key(c))
            .collect();
        if !missing.is_empty() {
            problems.push(AreaProblem::Malformed {
                table,
                line: 0,
                reason: format!("missing column(s) {}", missing.join(", ")),
            });
            return TableRows {
                table,
                columns,
                rows: Vec::new(),
            };
        }
        let rows = lines
            .map(|(i, l)| (i + 1, l.split('\t').map(str::trim).collect()))
            .collect();
        TableRows {
            table,
            columns,
            rows,
        }
    }

    /// One cursor per row; the caller reads fields and hands problems over with `finish()`.
    pub(crate) fn cursors(&self) -> impl Iterator<Item = Cursor<'_, 'a>> {
        self.rows.iter().map(move |(line, fields)| Cursor {
            table: self.table,
            line: *line,
            fields,
            columns: &self.columns,
            problems: Vec::new(),
        })
    }
}

/// Reads typed fields of one row. A failed field records a problem and yields a default, so
/// every field of every row is checked in one pass.
pub(crate) struct Cursor<'t, 'a> {
    table: Table,
    line: usize,
    fields: &'t [&'a str],
    columns: &'t HashMap<&'a str, usize>,
    problems: Vec<AreaProblem>,
}

impl<'a> Cursor<'_, 'a> {
    pub(crate) fn line(&self) -> usize {
        self.line
    }

    fn bad(&mut self, reason: String) {
        self.problems.push(AreaProblem::Malformed {
            table: self.table,
            line: self.line,
            reason,
        });
    }

    fn raw(&self, column: &str) -> &'a str {
        self.columns
            .get(column)
            .and_then(|&i| self.fields.get(i))
            .copied()
            .unwrap_or("")
    }

    /// A required text field.
    pub(crate) fn text(&mut self, column: &str) -> String {
        let v = self.raw(column);
        if v.is_empty() || v == "-" {
            self.bad(format!("`{column}` is empty"));
        }
        v.to_owned()
    }

    /// An optional text field (`-` or empty = none).
    pub(crate) fn opt_text(&mut self, column: &str) -> Option<String> {
        match self.raw(column) {
            "" | "-" => None,
            v => Some(v.to_owned()),
        }
    }

    /// A required value parsed with `FromStr`.
    pub(crate) fn parse<T: FromStr + Default>(&mut self, column: &str) -> T {
        let v = self.raw(column);
        v.parse().unwrap_or_else(|_| {
            self.bad(format!(
                "`{column}` = {v:?} is not a valid {}",
                std::any::type_name::<T>()
            ));
            T::default()
        })
    }

    /// A finite coordinate within `range`.
    pub(crate) fn coordinate(&mut self, column: &str, range: std::ops::RangeInclusive<f64>) -> f64 {
        let v: f64 = self.parse(column);
        if !v.is_finite() || !range.contains(&v) {
            self.bad(format!("`{column}` = {v} is out of range"));
        }
        v
    }

    /// `Y`/`N` (also `true`/`false`, `1`/`0`).
    pub(crate) fn flag(&mut self, column: &str) -> bool {
        match self.raw(column) {
            "Y" | "y" | "true" | "1" => true,
            "N" | "n" | "false" | "0" => false,
            v => {
                self.bad(format!("`{column}` = {v:?} is not Y or N"));
                false
            }
        }
    }

    /// One of a small set of codes.
    pub(crate) fn code<T: TableCode>(&mut self, column: &str) -> Option<T> {
        let v = self.raw(column);
        let parsed = T::parse_code(v);
        if parsed.is_none() {
            let accepted: Vec<&str> = T::ALL.iter().map(|t| t.code()).collect();
            self.bad(format!(
                "`{column}` = {v:?} is not one of {}",
                accepted.join(", ")
            ));
        }
        parsed
    }

    /// Hands this row's problems over; `true` when the row is sound.
    pub(crate) fn finish(self, problems: &mut Vec<AreaProblem>) -> bool {
        let ok = self.problems.is_empty();
        problems.extend(self.problems);
        ok
    }
}
