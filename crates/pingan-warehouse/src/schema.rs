//! Table and column names, in one place.
//!
//! The query service assembles SQL only from these fragments (plus bound parameters), and the
//! aggregator's statements in [`crate::sealed`], [`crate::audit`] and [`crate::alerts`] name the
//! same tables. The DDL is in `schemas/clickhouse/` ([`crate::migrate`]).

use std::fmt;

use serde::Serialize;

/// A dimension events are counted by: one of the contract's `by` / filter names (CONTRACT §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    /// District code (`310112`).
    District,
    /// Town (街镇) code, e.g. `310112102`.
    Town,
    /// Police station code, e.g. `MH-PS-QIBAO`.
    Station,
    /// Compound id, e.g. `MH-CP-101-001`.
    Compound,
    /// Taxonomy category, e.g. `FRAUD`.
    Category,
    /// Taxonomy subtype, e.g. `FRAUD_FAKE_GOV`.
    Subtype,
    /// `call` or `qr`.
    Source,
    /// Responsible department, e.g. `SAMR`.
    Department,
}

impl Dim {
    /// Every dimension, in the contract's order.
    pub const ALL: [Dim; 8] = [
        Dim::District,
        Dim::Town,
        Dim::Station,
        Dim::Compound,
        Dim::Category,
        Dim::Subtype,
        Dim::Source,
        Dim::Department,
    ];

    /// The wire name, e.g. `town`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::District => "district",
            Dim::Town => "town",
            Dim::Station => "station",
            Dim::Compound => "compound",
            Dim::Category => "category",
            Dim::Subtype => "subtype",
            Dim::Source => "source",
            Dim::Department => "department",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Whether this is an area level.
    pub fn is_area(self) -> bool {
        matches!(
            self,
            Dim::District | Dim::Town | Dim::Station | Dim::Compound
        )
    }

    /// The column in the rollups and sealed tables (a plain `String`, `''` for unknown).
    pub fn column(self) -> &'static str {
        match self {
            Dim::District => "district_code",
            Dim::Town => "town_code",
            Dim::Station => "station_code",
            Dim::Compound => "compound_id",
            Dim::Category => "category",
            Dim::Subtype => "subtype",
            Dim::Source => "source",
            Dim::Department => "department",
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// H3 resolution of a heat map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum H3Res {
    /// ≈ 5 km² cells.
    R7,
    /// ≈ 0.7 km² cells.
    R8,
    /// ≈ 0.1 km² cells.
    R9,
}

impl H3Res {
    /// Parses `7`, `8` or `9`.
    pub fn parse(s: &str) -> Option<H3Res> {
        match s {
            "7" => Some(H3Res::R7),
            "8" => Some(H3Res::R8),
            "9" => Some(H3Res::R9),
            _ => None,
        }
    }

    /// The resolution number.
    pub fn number(self) -> u8 {
        match self {
            H3Res::R7 => 7,
            H3Res::R8 => 8,
            H3Res::R9 => 9,
        }
    }
}

/// A table events are counted from while their day is open: the raw table or a rollup holding
/// `uniqExact(event_id)` states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveTable {
    /// Raw `incidents` (one row per event; duplicates folded by `uniqExact`).
    Raw,
    /// `counts_minute` rollup.
    Minute,
    /// `counts_hour` rollup.
    Hour,
    /// `cells_hour` rollup (H3 cells, town, category, subtype).
    Cells,
}

impl LiveTable {
    /// Table name.
    pub fn name(self) -> &'static str {
        match self {
            LiveTable::Raw => "incidents",
            LiveTable::Minute => "counts_minute",
            LiveTable::Hour => "counts_hour",
            LiveTable::Cells => "cells_hour",
        }
    }

    /// The time column.
    pub fn time(self) -> &'static str {
        match self {
            LiveTable::Raw => "event_time",
            LiveTable::Minute => "minute",
            LiveTable::Hour | LiveTable::Cells => "hour",
        }
    }

    /// The distinct-count expression.
    pub fn count(self) -> &'static str {
        match self {
            LiveTable::Raw => "uniqExact(event_id)",
            _ => "uniqExactMerge(events)",
        }
    }

    /// Seconds per row of the time column.
    pub fn granularity(self) -> i64 {
        match self {
            LiveTable::Raw => 1,
            LiveTable::Minute => 60,
            LiveTable::Hour | LiveTable::Cells => 3600,
        }
    }

    /// The column expression of a dimension (a `String`, `''` when unknown); `None` when the
    /// table lacks it.
    pub fn dim(self, d: Dim) -> Option<&'static str> {
        match self {
            // The raw table keeps unknown areas as NULL.
            LiveTable::Raw => Some(match d {
                Dim::District => "ifNull(district_code, '')",
                Dim::Town => "ifNull(town_code, '')",
                Dim::Station => "ifNull(station_code, '')",
                Dim::Compound => "ifNull(compound_id, '')",
                Dim::Department => "ifNull(department, '')",
                Dim::Category | Dim::Subtype | Dim::Source => d.column(),
            }),
            LiveTable::Minute | LiveTable::Hour => Some(d.column()),
            LiveTable::Cells => {
                matches!(d, Dim::Town | Dim::Category | Dim::Subtype).then(|| d.column())
            }
        }
    }

    /// The cell column at `res`.
    pub fn cell(self, res: H3Res) -> &'static str {
        match (self, res) {
            (LiveTable::Raw, H3Res::R9) => "assumeNotNull(h3)",
            (LiveTable::Raw, H3Res::R8) => "ifNull(h3_r8, '')",
            (LiveTable::Raw, H3Res::R7) => "ifNull(h3_r7, '')",
            (_, H3Res::R9) => "h3",
            (_, H3Res::R8) => "h3_r8",
            (_, H3Res::R7) => "h3_r7",
        }
    }
}

/// A table of sealed days: plain exact counts per day, written by [`crate::sealed::seal_day`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// `counts_day`: every dimension but the compound.
    Day,
    /// `counts_day_hod`: per hour of day; district, town, category, subtype.
    DayHod,
    /// `cells_day`: H3 cells at resolutions 8 and 7; town, category, subtype.
    Cells,
}

impl SealedTable {
    /// Table name.
    pub fn name(self) -> &'static str {
        match self {
            SealedTable::Day => "counts_day",
            SealedTable::DayHod => "counts_day_hod",
            SealedTable::Cells => "cells_day",
        }
    }

    /// The column of a dimension; `None` when the table lacks it.
    pub fn dim(self, d: Dim) -> Option<&'static str> {
        let has = match self {
            SealedTable::Day => d != Dim::Compound,
            SealedTable::DayHod => {
                matches!(d, Dim::District | Dim::Town | Dim::Category | Dim::Subtype)
            }
            SealedTable::Cells => matches!(d, Dim::Town | Dim::Category | Dim::Subtype),
        };
        has.then(|| d.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::MIGRATIONS;

    /// Every column a table says it has appears in that table's DDL.
    #[test]
    fn named_columns_exist_in_the_migrations() {
        let ddl: String = MIGRATIONS.iter().map(|m| m.sql).collect();
        let table_ddl = |name: &str| -> String {
            let start = ddl
                .find(&format!("{{db}}.{name} ("))
                .or_else(|| ddl.find(&format!("{{db}}.{name}\n")))
                .unwrap_or_else(|| panic!("no DDL for {name}"));
            ddl[start..]
                .split(";")
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        for t in [LiveTable::Minute, LiveTable::Hour, LiveTable::Cells] {
            let body = table_ddl(t.name());
            for d in Dim::ALL {
                if let Some(col) = t.dim(d) {
                    assert!(body.contains(col), "{} lacks {col}", t.name());
                }
            }
            assert!(body.contains(t.time()), "{} lacks {}", t.name(), t.time());
        }
        for t in [SealedTable::Day, SealedTable::DayHod, SealedTable::Cells] {
            let body = table_ddl(t.name());
            for d in Dim::ALL {
                if let Some(col) = t.dim(d) {
                    assert!(body.contains(col), "{} lacks {col}", t.name());
                }
            }
        }
    }

    #[test]
    fn dims_round_trip_their_wire_names() {
        for d in Dim::ALL {
            assert_eq!(Dim::parse(d.as_str()), Some(d));
        }
        assert_eq!(Dim::parse("nope"), None);
        assert_eq!(H3Res::parse("8").map(H3Res::number), Some(8));
    }
}
