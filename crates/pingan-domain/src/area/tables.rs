//! The one reader of the reference TSV tables: a row type says which table it is, which columns
//! it needs and how its cells read ([`RefRow`]); [`read_table`] does the rest and collects every
//! problem, with its line and column, instead of stopping at the first.
//!
//! Columns are looked up by header name rather than position, so a user-supplied table may
//! reorder columns or add its own; comment lines start with `#`, blank lines are skipped, cells
//! are trimmed, and `-` or an empty cell means "no value" for optional columns.
//!
//! (Not the `csv` crate with serde rows: serde stops a row at its first bad field, and a
//! configured table should come back with every bad cell listed at once.)

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::str::FromStr;

use super::{AreaProblem, Column, RefTable};

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

/// A record read from one row of a reference table.
pub(crate) trait RefRow: Sized {
    /// The table, for error reports.
    const TABLE: RefTable;
    /// Columns the header must name; a table without one of them reads as no rows.
    const REQUIRED: &'static [&'static str];
    /// Reads every cell of `row` (so every bad cell is reported), then returns the record, or
    /// `None` when a cell could not be read (its problem is already recorded in `row`).
    fn read(row: &mut Row<'_>) -> Option<Self>;
}

/// Reads every row of `text` as a `T`; rows with any problem are reported and left out.
pub(crate) fn read_table<T: RefRow>(text: &str, problems: &mut Vec<AreaProblem>) -> Vec<T> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let columns: HashMap<&str, usize> = match lines.next() {
        Some((_, header)) => header.split('\t').map(str::trim).zip(0..).collect(),
        None => HashMap::new(),
    };
    let missing: Vec<&str> = T::REQUIRED
        .iter()
        .copied()
        .filter(|c| !columns.contains_key(c))
        .collect();
    if !missing.is_empty() {
        problems.push(AreaProblem::Malformed {
            table: T::TABLE,
            line: 0,
            column: None,
            reason: format!("missing column(s) {}", missing.join(", ")),
        });
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
        let mut row = Row {
            table: T::TABLE,
            line: i + 1,
            cells: &cells,
            columns: &columns,
            problems: Vec::new(),
        };
        let record = T::read(&mut row);
        let sound = row.is_sound();
        problems.append(&mut row.problems);
        if let (true, Some(record)) = (sound, record) {
            out.push(record);
        }
    }
    out
}

/// Reads typed cells of one row. A bad cell records a problem and yields a default, so every
/// cell of every row is checked in one pass.
pub(crate) struct Row<'a> {
    table: RefTable,
    line: usize,
    cells: &'a [&'a str],
    columns: &'a HashMap<&'a str, usize>,
    problems: Vec<AreaProblem>,
}

impl<'a> Row<'a> {
    /// Whether no cell of the row has been bad so far (checks across cells run only then).
    pub(crate) fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }

    /// Records a problem with the cell in `column`.
    pub(crate) fn invalid(&mut self, column: &'static str, reason: String) {
        let column = self.columns.get(column).map(|&i| Column {
            number: i + 1,
            name: column,
        });
        self.problems.push(AreaProblem::Malformed {
            table: self.table,
            line: self.line,
            column,
            reason,
        });
    }

    fn raw(&self, column: &str) -> &'a str {
        self.columns
            .get(column)
            .and_then(|&i| self.cells.get(i))
            .copied()
            .unwrap_or("")
    }

    /// A required text cell.
    pub(crate) fn text(&mut self, column: &'static str) -> String {
        let v = self.raw(column);
        if v.is_empty() || v == "-" {
            self.invalid(column, "is empty".to_owned());
        }
        v.to_owned()
    }

    /// An optional text cell (`-` or empty = none).
    pub(crate) fn opt_text(&mut self, column: &'static str) -> Option<String> {
        match self.raw(column) {
            "" | "-" => None,
            v => Some(v.to_owned()),
        }
    }

    /// A required value parsed with `FromStr`.
    pub(crate) fn parse<T: FromStr + Default>(&mut self, column: &'static str) -> T {
        let v = self.raw(column);
        v.parse().unwrap_or_else(|_| {
            let reason = format!("{v:?} is not a valid {}", std::any::type_name::<T>());
            self.invalid(column, reason);
            T::default()
        })
    }

    /// A finite number within `range` (a coordinate, a radius).
    pub(crate) fn number_in(&mut self, column: &'static str, range: RangeInclusive<f64>) -> f64 {
        let v: f64 = self.parse(column);
        if !v.is_finite() || !range.contains(&v) {
            self.invalid(column, format!("{v} is out of range"));
        }
        v
    }

    /// `Y`/`N` (also `true`/`false`, `1`/`0`).
    pub(crate) fn flag(&mut self, column: &'static str) -> bool {
        match self.raw(column) {
            "Y" | "y" | "true" | "1" => true,
            "N" | "n" | "false" | "0" => false,
            v => {
                let reason = format!("{v:?} is not Y or N");
                self.invalid(column, reason);
                false
            }
        }
    }

    /// One of a small set of codes.
    pub(crate) fn code<T: TableCode>(&mut self, column: &'static str) -> Option<T> {
        let v = self.raw(column);
        let parsed = T::parse_code(v);
        if parsed.is_none() {
            let accepted: Vec<&str> = T::ALL.iter().map(|t| t.code()).collect();
            let reason = format!("{v:?} is not one of {}", accepted.join(", "));
            self.invalid(column, reason);
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-column table for exercising the reader on its own.
    #[derive(Debug, PartialEq)]
    struct Pair {
        name: String,
        lat: f64,
        flag: bool,
    }

    impl RefRow for Pair {
        const TABLE: RefTable = RefTable::Pois;
        const REQUIRED: &'static [&'static str] = &["name", "lat"];
        fn read(row: &mut Row<'_>) -> Option<Pair> {
            Some(Pair {
                name: row.text("name"),
                lat: row.number_in("lat", -90.0..=90.0),
                flag: row.opt_text("flag").is_some_and(|f| f == "Y"),
            })
        }
    }

    #[test]
    fn columns_are_found_by_name_and_comments_skipped() {
        let mut problems = Vec::new();
        let rows: Vec<Pair> = read_table(
            "# a comment\nlat\tname\tflag\n\n31.5\t七宝\tY\n# another\n-1\tb\t-\n",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            rows,
            vec![
                Pair {
                    name: "七宝".into(),
                    lat: 31.5,
                    flag: true
                },
                Pair {
                    name: "b".into(),
                    lat: -1.0,
                    flag: false
                },
            ]
        );
    }

    #[test]
    fn every_bad_cell_is_reported_with_line_and_column() {
        let mut problems = Vec::new();
        let rows: Vec<Pair> = read_table("lat\tname\n95\t-\nx\tok\n31\tfine\n", &mut problems);
        assert_eq!(rows.len(), 1, "only the sound row is kept");
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "pois.tsv line 2 column 2 (name): is empty",
                "pois.tsv line 2 column 1 (lat): 95 is out of range",
                "pois.tsv line 3 column 1 (lat): \"x\" is not a valid f64",
            ]
        );
    }

    #[test]
    fn a_missing_required_column_fails_the_whole_table_once() {
        let mut problems = Vec::new();
        let rows: Vec<Pair> = read_table("name\tflag\na\tY\n", &mut problems);
        assert!(rows.is_empty());
        assert_eq!(
            problems,
            vec![AreaProblem::Malformed {
                table: RefTable::Pois,
                line: 0,
                column: None,
                reason: "missing column(s) lat".into(),
            }]
        );
        assert_eq!(problems[0].to_string(), "pois.tsv: missing column(s) lat");
    }
}
