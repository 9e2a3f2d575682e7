//! A typed row's values: what a value that does not fit its column is ([`Problem`]), what the
//! `unparseable_values` policy does with it ([`Outcome`]), and the walk over a record's
//! top-level columns both typed formats share ([`Rows`]).

use super::{Field, METADATA_COLUMNS};
use crate::json::{Dropped, FieldIndex, members};

/// What an array element of a list column must be when it is itself an array.
pub const NOT_NESTED: &str = "an element of a one-dimensional array (a list column's elements cannot be arrays; \
     `nested_as_json: true` writes Postgres array columns, of any dimension, as JSON text)";

/// A value that does not fit its column: what, where, and what was expected.
#[derive(Debug)]
pub struct Problem {
    pub path: String,
    pub value: String,
    pub expected: &'static str,
}

impl Problem {
    pub fn new(path: &str, raw: &str, expected: &'static str) -> Problem {
        let mut value: String = raw.chars().take(80).collect();
        if value.len() < raw.len() {
            value.push_str("...");
        }
        Problem { path: path.to_string(), value, expected }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}`: {} is not {}", self.path, self.value, self.expected)
    }
}

/// What to do with a value that does not fit its column (`unparseable_values`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unparseable {
    Fail,
    Null,
}

/// What happened to the values of one record.
pub struct Outcome {
    pub policy: Unparseable,
    /// Values written as null, and the first of them.
    pub nulled: u64,
    pub first: Option<String>,
    /// Numbers a float column rounds, per field (the file's running counts, lent to each
    /// record so counting allocates only at a field's first lossy value).
    pub lossy: Lossy,
}

/// Per field: numbers a float column rounded, and the first one as the tap wrote it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lossy(pub Vec<(String, u64, String)>);

impl Lossy {
    pub fn note(&mut self, path: &str, raw: &str) {
        match self.0.iter_mut().find(|(p, _, _)| p == path) {
            Some((_, n, _)) => *n += 1,
            None => self.0.push((path.to_string(), 1, raw.chars().take(80).collect())),
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n, _)| n).sum()
    }
}

impl Outcome {
    pub fn new(policy: Unparseable) -> Outcome {
        Outcome { policy, nulled: 0, first: None, lossy: Lossy::default() }
    }

    /// A value does not fit: an error, or (policy `null`, nullable column) a counted null. A
    /// MySQL zero date in a nullable date column is always a counted null: it names no day.
    pub fn refuse(&mut self, problem: Problem, nullable: bool) -> Result<(), Problem> {
        let zero_date = problem.expected.starts_with("a date") && crate::json::zero_date(&problem.value);
        if (self.policy == Unparseable::Null || zero_date) && nullable {
            self.nulled += 1;
            if self.first.is_none() {
                self.first = Some(problem.to_string());
            }
            Ok(())
        } else {
            Err(problem)
        }
    }
}

/// The top level of a typed file's records, shared by Parquet and Avro: finds each column's
/// raw value (or its `_sdc_*` metadata value), applies the `unparseable_values` policy and
/// keeps its count.
pub struct Rows {
    index: FieldIndex,
    slots: Vec<Option<(usize, usize)>>,
    /// Columns filled from the `_sdc_*` metadata: (column, metadata index).
    metadata: Vec<(usize, usize)>,
    policy: Unparseable,
    /// Values written as null under `unparseable_values: null`, and the first one's message.
    pub nulled: u64,
    pub first_nulled: Option<String>,
    /// Top-level properties outside the schema: typed columns have no place for them.
    pub dropped: Dropped,
    /// Numbers float columns rounded, per field.
    pub lossy: Lossy,
}

impl Rows {
    pub fn new(fields: &[Field], policy: Unparseable) -> Rows {
        let metadata = fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| METADATA_COLUMNS.iter().position(|m| *m == f.name).map(|m| (i, m)))
            .collect();
        Rows {
            index: FieldIndex::new(fields.iter().map(|f| f.name.as_str())),
            slots: vec![None; fields.len()],
            metadata,
            policy,
            nulled: 0,
            first_nulled: None,
            dropped: Dropped::default(),
            lossy: Lossy::default(),
        }
    }

    /// Calls `column(i, raw, outcome)` for every column of `record`, in order: `raw` is the
    /// value's JSON text, the metadata value for an `_sdc_*` column the record lacks, or `None`.
    pub fn each<'r>(
        &mut self,
        record: &'r str,
        metadata: Option<&'r [String; 6]>,
        mut column: impl FnMut(usize, Option<&'r str>, &mut Outcome) -> Result<(), Problem>,
    ) -> Result<(), String> {
        members(record, &self.index, &mut self.slots, &mut self.dropped).map_err(|e| e.to_string())?;
        let mut outcome = Outcome::new(self.policy);
        outcome.lossy = std::mem::take(&mut self.lossy);
        for (i, slot) in self.slots.iter().enumerate() {
            let raw = match slot {
                Some((start, len)) => Some(&record[*start..*start + *len]),
                None => metadata.and_then(|m| self.metadata.iter().find(|(c, _)| *c == i).map(|(_, k)| m[*k].as_str())),
            };
            if let Err(p) = column(i, raw, &mut outcome) {
                self.lossy = outcome.lossy;
                return Err(p.to_string());
            }
        }
        self.lossy = outcome.lossy;
        self.nulled += outcome.nulled;
        if self.first_nulled.is_none() {
            self.first_nulled = outcome.first;
        }
        Ok(())
    }
}

/// A null (or absent) value where the schema requires one.
pub fn required(path: &str, raw: Option<&str>) -> Problem {
    Problem::new(path, raw.unwrap_or("a missing value"), "allowed: the schema requires a value")
}
