//! Avro's binary encoding of one record, written straight from the record's JSON text into the
//! block being filled. No value tree: apache-avro's `Value` records looked each field up by
//! name in a hash map per record and cost the decode thread more than the rest of the record's
//! way (issue "Every core busy"). Every decision (null, does it fit) is taken before a column's
//! bytes are written, and a record that fails is cut off the block again by the caller.

use crate::schema::typed::{self, Field, FieldIndex, Outcome, Problem, Type};

/// Avro's `long` (and `int`): zig-zag, then 7 bits per byte, low first.
pub fn long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push(z as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Avro's `bytes` and `string`: the length, then the bytes.
pub fn bytes(out: &mut Vec<u8>, data: &[u8]) {
    long(out, data.len() as i64);
    out.extend_from_slice(data);
}

/// A union's branch: null is branch 0 of every nullable column (see `field_type`).
const NULL_BRANCH: u8 = 0;
/// Branch 1, zig-zag encoded.
const VALUE_BRANCH: u8 = 2;

/// One column of a stream's Avro schema, and how its values are written.
pub struct Column {
    path: String,
    nullable: bool,
    expected: &'static str,
    kind: Kind,
}

enum Kind {
    /// A column of one value: the typed column's own type (never `Struct` or `List`).
    Scalar(Type),
    Struct {
        children: Vec<Column>,
        index: FieldIndex,
        slots: Vec<Option<(usize, usize)>>,
    },
    List {
        item: Box<Column>,
        elements: Vec<(usize, usize)>,
    },
}

impl Column {
    pub fn new(field: &Field, path: String) -> Column {
        let kind = match &field.ty {
            Type::Struct(fields) => Kind::Struct {
                children: fields.iter().map(|f| Column::new(f, format!("{path}.{}", f.name))).collect(),
                index: FieldIndex::new(fields.iter().map(|f| f.name.as_str())),
                slots: vec![None; fields.len()],
            },
            Type::List(item) => {
                Kind::List { item: Box::new(Column::new(item, format!("{path}[]"))), elements: Vec::new() }
            }
            scalar => Kind::Scalar(scalar.clone()),
        };
        Column { path, nullable: field.nullable, expected: field.ty.expected(), kind }
    }

    /// Writes the value whose JSON text is `raw` (`None`: absent). A value that does not fit
    /// is written as null when `unparseable_values` allows it, else the record fails.
    pub fn write(&mut self, out: &mut Vec<u8>, raw: Option<&str>, outcome: &mut Outcome) -> Result<(), Problem> {
        let raw = match raw {
            None | Some("null") if self.nullable => {
                out.push(NULL_BRANCH);
                return Ok(());
            }
            None | Some("null") => return Err(typed::required(&self.path, raw)),
            Some(raw) => raw,
        };
        let mark = out.len();
        if self.nullable {
            out.push(VALUE_BRANCH);
        }
        if !self.fill(out, raw, outcome)? {
            out.truncate(mark);
            outcome.refuse(Problem::new(&self.path, raw, self.expected), self.nullable)?;
            out.push(NULL_BRANCH); // refused unless nullable
        }
        Ok(())
    }

    /// Writes the non-null value; false (and nothing written) when it does not fit the column.
    fn fill(&mut self, out: &mut Vec<u8>, raw: &str, outcome: &mut Outcome) -> Result<bool, Problem> {
        /// Writes `value` with `write` when there is one.
        fn put<T>(out: &mut Vec<u8>, value: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) -> bool {
            value.map(|v| write(out, v)).is_some()
        }
        Ok(match &mut self.kind {
            Kind::Scalar(Type::Int) => put(out, typed::int(raw), long),
            Kind::Scalar(Type::Float) => put(out, typed::float_exact(raw), |out, (v, exact)| {
                if !exact {
                    outcome.lossy.note(&self.path, raw);
                }
                out.extend_from_slice(&v.to_le_bytes());
            }),
            // Sixteen bytes, big-endian two's complement: what apache-avro wrote before.
            Kind::Scalar(Type::Decimal { scale }) => {
                put(out, typed::decimal(raw, *scale), |out, v| bytes(out, &v.to_be_bytes()))
            }
            Kind::Scalar(Type::Bool) => put(out, typed::boolean(raw), |out, v| out.push(v as u8)),
            Kind::Scalar(Type::Timestamp) => put(out, typed::timestamp(raw), long),
            Kind::Scalar(Type::Date) => put(out, typed::date(raw), |out, v| long(out, v.into())),
            Kind::Scalar(Type::Text) => put(out, Some(typed::text(raw)), |out, text| bytes(out, text.as_bytes())),
            Kind::Scalar(Type::Json) => put(out, Some(raw), |out, raw| bytes(out, raw.as_bytes())),
            Kind::Scalar(Type::Numeric) => put(out, typed::numeric(raw), |out, text| bytes(out, text.as_bytes())),
            Kind::Scalar(Type::Struct(_) | Type::List(_)) => unreachable!("built as Kind::Struct and Kind::List"),
            Kind::Struct { children, index, slots } => {
                if typed::members(raw, index, slots, &mut crate::json::Dropped::default()).is_err() {
                    return Ok(false);
                }
                for (child, slot) in children.iter_mut().zip(slots.iter()) {
                    child.write(out, slot.map(|(s, l)| &raw[s..s + l]), outcome)?;
                }
                true
            }
            Kind::List { item, elements } => {
                if typed::elements(raw, elements).is_err() {
                    return Ok(false);
                }
                // One block of all the elements, then the empty block that ends an array.
                if !elements.is_empty() {
                    long(out, elements.len() as i64);
                }
                for &(s, l) in elements.iter() {
                    let element = &raw[s..s + l];
                    if element.starts_with('[') && !matches!(item.kind, Kind::List { .. } | Kind::Scalar(Type::Json)) {
                        // A multi-dimensional Postgres array in a one-dimensional column.
                        outcome.refuse(Problem::new(&item.path, element, typed::NOT_NESTED), item.nullable)?;
                        out.push(NULL_BRANCH);
                        continue;
                    }
                    item.write(out, Some(element), outcome)?;
                }
                long(out, 0);
                true
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding of `long` against apache-avro's own.
    #[test]
    fn longs_are_encoded_as_apache_avro_does() {
        use apache_avro::types::Value;
        for n in [0, 1, -1, 63, -64, 64, 8191, -8192, 1 << 40, i64::MAX, i64::MIN] {
            let mut ours = Vec::new();
            long(&mut ours, n);
            let writer =
                apache_avro::writer::datum::GenericDatumWriter::builder(&apache_avro::Schema::Long).build().unwrap();
            let theirs = writer.write_value_to_vec(Value::Long(n)).unwrap();
            assert_eq!(ours, theirs, "{n}");
        }
    }
}
