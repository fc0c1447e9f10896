//! Reserved-seating maps: sections of rows of numbered seats, seat ids of the form
//! `"{section}-{row}-{n}"`, and the best-available search used when a client asks for a
//! quantity on a seated event.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Index of a seat in the flattened map (sections, then rows, then seat numbers).
pub type SeatIdx = u32;

/// The seat map as clients send and receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeatMapSpec {
    /// Section names unique; at most 100,000 seats in all; every seat id
    /// (`<section>-<row>-<number>`) unambiguous.
    #[schema(min_items = 1)]
    pub sections: Vec<SectionSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SectionSpec {
    /// 1 to 64 characters, not only blanks, no control characters.
    #[schema(
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// Row labels unique within the section.
    #[schema(min_items = 1)]
    pub rows: Vec<RowSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RowSpec {
    /// 1 to 64 characters, not only blanks, no control characters.
    #[schema(
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub label: String,
    /// Number of seats in the row, numbered from 1.
    #[schema(minimum = 1, maximum = 2000)]
    pub seats: u32,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub section: usize,
    pub label: String,
    /// Index of the row's seat number 1.
    pub start: SeatIdx,
    pub len: u32,
}

/// A validated seat map.
#[derive(Debug, Clone)]
pub struct SeatMap {
    spec: SeatMapSpec,
    rows: Vec<Row>,
    /// Row of each seat, by seat index.
    seat_row: Vec<u32>,
    by_id: HashMap<String, SeatIdx>,
}

pub const MAX_SEATS: u32 = 100_000;
pub const MAX_ROW_SEATS: u32 = 2_000;
const MAX_NAME: usize = 64;

impl SeatMap {
    pub fn parse(spec: SeatMapSpec) -> Result<Self, String> {
        if spec.sections.is_empty() {
            return Err("must have at least one section".into());
        }
        let mut rows = Vec::new();
        let mut seat_row = Vec::new();
        let mut by_id = HashMap::new();
        let mut next: u32 = 0;
        for (si, section) in spec.sections.iter().enumerate() {
            check_name(&section.name, "section name")?;
            if spec.sections[..si].iter().any(|s| s.name == section.name) {
                return Err(format!("section {:?} appears twice", section.name));
            }
            if section.rows.is_empty() {
                return Err(format!("section {:?} has no rows", section.name));
            }
            for (ri, row) in section.rows.iter().enumerate() {
                check_name(&row.label, "row label")?;
                if section.rows[..ri].iter().any(|r| r.label == row.label) {
                    return Err(format!("row {:?} appears twice in section {:?}", row.label, section.name));
                }
                if row.seats == 0 || row.seats > MAX_ROW_SEATS {
                    return Err(format!("row seats must be between 1 and {MAX_ROW_SEATS}"));
                }
                if next + row.seats > MAX_SEATS {
                    return Err(format!("a seat map holds at most {MAX_SEATS} seats"));
                }
                let row_idx = rows.len() as u32;
                for n in 1..=row.seats {
                    let id = format!("{}-{}-{}", section.name, row.label, n);
                    if by_id.insert(id.clone(), next + n - 1).is_some() {
                        return Err(format!("seat id {id:?} is ambiguous"));
                    }
                    seat_row.push(row_idx);
                }
                rows.push(Row { section: si, label: row.label.clone(), start: next, len: row.seats });
                next += row.seats;
            }
        }
        Ok(Self { spec, rows, seat_row, by_id })
    }

    pub fn capacity(&self) -> u32 {
        self.seat_row.len() as u32
    }

    pub fn spec(&self) -> &SeatMapSpec {
        &self.spec
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn row_of(&self, seat: SeatIdx) -> usize {
        self.seat_row[seat as usize] as usize
    }

    pub fn section_name(&self, section: usize) -> &str {
        &self.spec.sections[section].name
    }

    pub fn seat_index(&self, id: &str) -> Option<SeatIdx> {
        self.by_id.get(id).copied()
    }

    pub fn seat_id(&self, seat: SeatIdx) -> String {
        let row = &self.rows[self.row_of(seat)];
        format!("{}-{}-{}", self.section_name(row.section), row.label, seat - row.start + 1)
    }
}

fn check_name(name: &str, what: &str) -> Result<(), String> {
    // Counted in characters, as the document's maxLength counts.
    if name.trim().is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(format!("{what} must be 1 to {MAX_NAME} printable characters"));
    }
    Ok(())
}

/// Best `quantity` free seats: the first row (in map order, front first) that has that many
/// adjacent free seats, taking the run nearest the row's centre; failing that, the fewest rows
/// possible, front first, centre-out within each row. `None` if fewer seats are free.
pub fn best_available(
    map: &SeatMap,
    is_free: impl Fn(SeatIdx) -> bool,
    row_free: &[u32],
    quantity: u32,
) -> Option<Vec<SeatIdx>> {
    if quantity == 0 || row_free.iter().map(|&f| f as u64).sum::<u64>() < quantity as u64 {
        return None;
    }
    for (ri, row) in map.rows().iter().enumerate() {
        if row_free[ri] < quantity {
            continue;
        }
        if let Some(start) = centred_run(row, &is_free, quantity) {
            return Some((start..start + quantity).collect());
        }
    }
    // No row has a long enough run: split, filling rows front to back, centre seats first.
    let mut chosen = Vec::with_capacity(quantity as usize);
    for (ri, row) in map.rows().iter().enumerate() {
        if row_free[ri] == 0 {
            continue;
        }
        let mut free: Vec<SeatIdx> = (row.start..row.start + row.len).filter(|&s| is_free(s)).collect();
        let centre2 = 2 * row.start as i64 + row.len as i64 - 1; // twice the centre, avoids halves
        free.sort_by_key(|&s| ((2 * s as i64) - centre2).abs());
        for s in free {
            chosen.push(s);
            if chosen.len() == quantity as usize {
                chosen.sort_unstable();
                return Some(chosen);
            }
        }
    }
    None
}

/// Start of the run of `quantity` free seats in `row` whose middle is nearest the row's middle.
fn centred_run(row: &Row, is_free: &impl Fn(SeatIdx) -> bool, quantity: u32) -> Option<SeatIdx> {
    let centre2 = 2 * row.start as i64 + row.len as i64 - 1;
    let mut best: Option<(i64, SeatIdx)> = None;
    let mut run = 0u32;
    for s in row.start..row.start + row.len {
        if is_free(s) {
            run += 1;
            if run >= quantity {
                let start = s + 1 - quantity;
                let mid2 = 2 * start as i64 + quantity as i64 - 1;
                let dist = (mid2 - centre2).abs();
                if best.is_none_or(|(d, _)| dist < d) {
                    best = Some((dist, start));
                }
            }
        } else {
            run = 0;
        }
    }
    best.map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn map(rows: &[(&str, &str, u32)]) -> SeatMap {
        let mut sections: Vec<SectionSpec> = Vec::new();
        for (sec, label, seats) in rows {
            let row = RowSpec { label: (*label).into(), seats: *seats };
            match sections.iter_mut().find(|s| s.name == *sec) {
                Some(s) => s.rows.push(row),
                None => sections.push(SectionSpec { name: (*sec).into(), rows: vec![row] }),
            }
        }
        SeatMap::parse(SeatMapSpec { sections }).unwrap()
    }

    #[test]
    fn ids_round_trip() {
        let m = map(&[("Stalls", "A", 3), ("Stalls", "B", 2), ("Circle", "A", 4)]);
        assert_eq!(m.capacity(), 9);
        for s in 0..9 {
            assert_eq!(m.seat_index(&m.seat_id(s)), Some(s));
        }
        assert_eq!(m.seat_id(4), "Stalls-B-2");
        assert_eq!(m.seat_index("Circle-A-1"), Some(5));
        assert_eq!(m.seat_index("Circle-A-5"), None);
    }

    #[test]
    fn invalid_maps_are_refused() {
        let bad = |v: serde_json::Value| SeatMap::parse(serde_json::from_value(v).unwrap()).is_err();
        assert!(bad(serde_json::json!({"sections": []})));
        assert!(bad(serde_json::json!({"sections": [{"name": "A", "rows": []}]})));
        assert!(bad(serde_json::json!({"sections": [{"name": "A", "rows": [{"label": "1", "seats": 0}]}]})));
        assert!(bad(serde_json::json!({"sections": [{"name": "", "rows": [{"label": "1", "seats": 2}]}]})));
        assert!(bad(serde_json::json!({"sections": [
            {"name": "A", "rows": [{"label": "1", "seats": 2}]},
            {"name": "A", "rows": [{"label": "2", "seats": 2}]}]})));
        // "A-B" row "C" and "A" row "B-C" would both name seat "A-B-C-1".
        assert!(bad(serde_json::json!({"sections": [
            {"name": "A-B", "rows": [{"label": "C", "seats": 1}]},
            {"name": "A", "rows": [{"label": "B-C", "seats": 1}]}]})));
    }

    #[test]
    fn best_available_prefers_a_centred_run_in_the_front_row() {
        let m = map(&[("S", "A", 10), ("S", "B", 10)]);
        let free = [true; 20];
        let got = best_available(&m, |s| free[s as usize], &[10, 10], 4).unwrap();
        assert_eq!(got, vec![3, 4, 5, 6]);
    }

    #[test]
    fn best_available_skips_rows_without_a_run_then_splits() {
        let m = map(&[("S", "A", 4), ("S", "B", 4)]);
        // Row A: seats 1 and 3 free (no run of 2); row B: 2,3 free.
        let mut free = vec![false; 8];
        free[0] = true;
        free[2] = true;
        free[5] = true;
        free[6] = true;
        let f = free.clone();
        assert_eq!(best_available(&m, |s| f[s as usize], &[2, 2], 2).unwrap(), vec![5, 6]);
        // Three seats: no row has a run of three, so split front first.
        let got = best_available(&m, |s| f[s as usize], &[2, 2], 3).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.contains(&0) && got.contains(&2));
        assert_eq!(best_available(&m, |s| f[s as usize], &[2, 2], 5), None);
    }
}
