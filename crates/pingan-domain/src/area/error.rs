//! What can be wrong with the reference data: the tables it comes from and the problems found.

use std::fmt;
use std::fmt::Write as _;

/// One of the reference sources an [`AreaIndex`](super::AreaIndex) is built from, for error
/// reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefTable {
    /// `towns.tsv`.
    Towns,
    /// `stations.tsv`.
    Stations,
    /// `committees.tsv`.
    Committees,
    /// `compounds.tsv`.
    Compounds,
    /// `pois.tsv`.
    Pois,
    /// `safe_houses.tsv`.
    SafeHouses,
    /// The town GeoJSON.
    Geometry,
}

impl RefTable {
    /// The file the table is shipped as in `schemas/reference/` (a configured replacement
    /// takes its place under the same name).
    pub fn file_name(self) -> &'static str {
        match self {
            RefTable::Towns => "towns.tsv",
            RefTable::Stations => "stations.tsv",
            RefTable::Committees => "committees.tsv",
            RefTable::Compounds => "compounds.tsv",
            RefTable::Pois => "pois.tsv",
            RefTable::SafeHouses => "safe_houses.tsv",
            RefTable::Geometry => "towns.approx.geojson",
        }
    }
}

impl fmt::Display for RefTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefTable::Towns => "towns",
            RefTable::Stations => "stations",
            RefTable::Committees => "committees",
            RefTable::Compounds => "compounds",
            RefTable::Pois => "pois",
            RefTable::SafeHouses => "safe_houses",
            RefTable::Geometry => "geometry",
        })
    }
}

/// A column of a reference table, as the header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// 1-based position in the header (columns are matched by name, so this is the file's
    /// own order).
    pub number: usize,
    /// Header name, e.g. `lat`.
    pub name: &'static str,
}

/// Where a [`AreaProblem::Malformed`] problem is: `towns.tsv line 7 column 3 (name_en)`.
fn place(table: RefTable, line: usize, column: Option<Column>) -> String {
    let mut at = table.file_name().to_owned();
    if line > 0 {
        let _ = write!(at, " line {line}");
    }
    if let Some(c) = column {
        let _ = write!(at, " column {} ({})", c.number, c.name);
    }
    at
}

/// One problem found in the reference data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AreaProblem {
    /// A cell, a row or the table itself cannot be read.
    #[error("{}: {reason}", place(*.table, *.line, *.column))]
    Malformed {
        /// Table.
        table: RefTable,
        /// 1-based line of the file, 0 for the whole table (a missing column, bad GeoJSON).
        line: usize,
        /// The cell's column, when one cell is at fault.
        column: Option<Column>,
        /// What is wrong.
        reason: String,
    },
    /// Two rows share an id.
    #[error("{table}: duplicate id {id}")]
    Duplicate {
        /// Table.
        table: RefTable,
        /// The repeated id.
        id: String,
    },
    /// A reference to an id that does not exist.
    #[error("{table} {id}: {field} {value:?} does not exist")]
    UnknownReference {
        /// Table of the referring row.
        table: RefTable,
        /// Id of the referring row.
        id: String,
        /// Referring column.
        field: &'static str,
        /// The missing id.
        value: String,
    },
    /// A row contradicts another (e.g. a compound's committee lies in another town).
    #[error("{table} {id}: {reason}")]
    Inconsistent {
        /// Table.
        table: RefTable,
        /// Row id.
        id: String,
        /// What contradicts what.
        reason: String,
    },
    /// A row's point lies outside the town it claims.
    #[error("{table} {id}: point ({lat}, {lon}) lies in {found}, not in its town {expected}")]
    OutsideTown {
        /// Table.
        table: RefTable,
        /// Row id.
        id: String,
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
        /// The town code the row names.
        expected: String,
        /// Where the point actually falls (`no town` outside the district box).
        found: String,
    },
    /// A town lacks something every town needs (a station, a committee, a polygon).
    #[error("town {town}: {reason}")]
    Coverage {
        /// Town code.
        town: String,
        /// What is missing.
        reason: String,
    },
}

/// Every problem found while building an [`AreaIndex`](super::AreaIndex).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid area reference data ({} problems): {}", .problems.len(),
    .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct AreaError {
    /// The problems, in table order.
    pub problems: Vec<AreaProblem>,
}
