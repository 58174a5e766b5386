//! The compound lookup grid: which compounds' discs touch each cell of the district.

use super::Compound;
use super::geo::{self, BoundingBox};

/// Cell size in degrees (about 1 km), small enough that a cell holds a handful of compounds.
const GRID_DEG: f64 = 0.01;

/// A uniform grid over the district listing the compounds whose disc touches each cell.
#[derive(Debug, Clone)]
pub(crate) struct CompoundGrid {
    origin: (f64, f64),
    cols: usize,
    rows: usize,
    cells: Vec<Vec<u32>>,
}

impl CompoundGrid {
    pub(crate) fn new(bbox: &BoundingBox, compounds: &[Compound]) -> CompoundGrid {
        // Truncation is intended: the extent is a few dozen cells.
        let cols = ((bbox.max_lon - bbox.min_lon) / GRID_DEG).ceil().max(0.0) as usize + 1;
        let rows = ((bbox.max_lat - bbox.min_lat) / GRID_DEG).ceil().max(0.0) as usize + 1;
        let mut grid = CompoundGrid {
            origin: (bbox.min_lat, bbox.min_lon),
            cols,
            rows,
            cells: vec![Vec::new(); cols * rows],
        };
        for (i, c) in compounds.iter().enumerate() {
            let (north, east) = geo::offset(c.lat, c.lon, c.radius_m, c.radius_m);
            let (south, west) = geo::offset(c.lat, c.lon, -c.radius_m, -c.radius_m);
            let (r0, c0) = grid.cell(south, west);
            let (r1, c1) = grid.cell(north, east);
            for r in r0..=r1 {
                for col in c0..=c1 {
                    grid.cells[r * cols + col].push(u32::try_from(i).unwrap_or(u32::MAX));
                }
            }
        }
        grid
    }

    /// Cell of a point, clamped to the grid.
    fn cell(&self, lat: f64, lon: f64) -> (usize, usize) {
        let r = ((lat - self.origin.0) / GRID_DEG).floor().max(0.0) as usize;
        let c = ((lon - self.origin.1) / GRID_DEG).floor().max(0.0) as usize;
        (r.min(self.rows - 1), c.min(self.cols - 1))
    }

    pub(crate) fn candidates(&self, lat: f64, lon: f64) -> &[u32] {
        let (r, c) = self.cell(lat, lon);
        &self.cells[r * self.cols + c]
    }
}
