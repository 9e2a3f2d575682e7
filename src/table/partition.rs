//! `partition_by`: a table's partition columns. The pipeline already routes each record to a
//! file under `column=value` folders (the data key template, rendered and escaped as every key
//! value is), so a file holds one partition; here the folders are read back into the Delta
//! `partitionValues` of its `add` action, typed as Delta readers parse them.

use std::collections::HashMap;

use arrow_schema::{DataType as Arrow, Schema};
use deltalake_core::kernel::{DataType, StructField};

use crate::config::{Granularity, Partition};
use crate::keys::{NULL_VALUE, unescape_ascii};
use crate::schema::typed::{Field, Type};

/// How a partition column's values are written in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Boolean,
    Date,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "a text",
            Kind::Integer => "an integer",
            Kind::Boolean => "a boolean",
            Kind::Date => "a date",
        }
    }
}

/// The kind of a partition column's values in the log: a granularity's, or the field's own
/// (checked against its JSON Schema type at the SCHEMA line by [`check`]).
fn kind(partition: &Partition, file: &Schema) -> Result<Kind, String> {
    if let Some(g) = partition.granularity {
        return Ok(match g {
            Granularity::Year => Kind::Integer,
            Granularity::Day => Kind::Date,
            Granularity::Month | Granularity::Hour => Kind::Text,
        });
    }
    let field = file.field_with_name(&partition.field).map_err(|_| {
        format!("the stream has no top-level field {:?} to partition by (partition_by)", partition.field)
    })?;
    match field.data_type() {
        Arrow::Utf8 | Arrow::LargeUtf8 => Ok(Kind::Text),
        t if t.is_integer() => Ok(Kind::Integer),
        Arrow::Boolean => Ok(Kind::Boolean),
        other => Err(format!("partition_by {:?}: a {other} column cannot partition a table", partition.field)),
    }
}

/// Checks a stream's typed columns against `partition_by` (at its SCHEMA line): every field
/// there, of a type whose partition folders every reader parses back to the value (text,
/// integers, booleans; date-times and dates through a granularity, whose folders are written in
/// the column's own format), and no derived column clashing with a column of the stream.
pub fn check(partitions: &[Partition], columns: &[Field]) -> Result<(), String> {
    for p in partitions {
        let field = columns
            .iter()
            .find(|c| c.name == p.field)
            .ok_or_else(|| format!("the stream has no top-level field {:?} to partition by (partition_by)", p.field))?;
        match (p.granularity, &field.ty) {
            (None, Type::Text | Type::Int | Type::Bool) => {}
            (Some(_), Type::Timestamp | Type::Date) => {}
            (None, Type::Timestamp | Type::Date) => {
                return Err(format!(
                    "partition_by {:?}: a date-time or date field partitions through a granularity, e.g. \"{}:day\" (a `{}_day` date column)",
                    p.field, p.field, p.field
                ));
            }
            (Some(g), _) => {
                return Err(format!(
                    "partition_by \"{}:{g}\": a granularity needs a date-time or date field (`format: date-time` or `date`)",
                    p.field
                ));
            }
            (None, Type::Json) => {
                return Err(format!(
                    "partition_by {:?}: the field has no single type (its column holds JSON text), so its values cannot be partition values; give it one type",
                    p.field
                ));
            }
            (None, ty) => {
                let kind = match ty {
                    Type::Float => "a float",
                    Type::Decimal { .. } => "a decimal",
                    Type::Numeric => "an exact-number (text)",
                    Type::Struct(_) => "a nested object",
                    Type::List(_) => "an array",
                    _ => "this",
                };
                return Err(format!(
                    "partition_by {:?}: {kind} column cannot partition a table (text, integer, boolean, and date-times or dates with a granularity can)",
                    p.field
                ));
            }
        }
        // Delta column names are case-insensitive: `T_DAY` is `t_day`.
        if p.granularity.is_some() && columns.iter().any(|c| c.name.eq_ignore_ascii_case(&p.column)) {
            return Err(format!(
                "partition_by \"{}:{}\" adds the column {:?}, which the stream already has",
                p.field,
                p.granularity.map(|g| g.as_str()).unwrap_or_default(),
                p.column
            ));
        }
    }
    Ok(())
}

/// The type of a derived partition column.
pub fn derived_type(granularity: Granularity) -> DataType {
    match granularity {
        Granularity::Year => DataType::LONG,
        Granularity::Day => DataType::DATE,
        Granularity::Month | Granularity::Hour => DataType::STRING,
    }
}

/// The partition columns the files do not hold (those cut to a granularity), for the table's
/// schema.
pub fn derived_columns(partitions: &[Partition]) -> impl Iterator<Item = StructField> + '_ {
    partitions.iter().filter_map(|p| Some(StructField::new(p.column.clone(), derived_type(p.granularity?), true)))
}

/// A data file's key split into its table folder, its partition values and its path inside
/// the table (what its `add` action names).
#[derive(Debug)]
pub struct Located<'k> {
    pub folder: &'k str,
    pub path: &'k str,
    pub values: HashMap<String, Option<String>>,
}

/// `key` split into its table folder and the path below it (`partitions` folders and a name).
pub fn split(key: &str, partitions: usize) -> (&str, &str) {
    let mut cut = key.len();
    for _ in 0..=partitions {
        cut = key[..cut].rfind('/').unwrap_or(0);
    }
    if cut == 0 && !key.starts_with('/') { ("", key) } else { (&key[..cut], &key[cut + 1..]) }
}

/// Splits `key` (`folder/column=value/.../part-*.parquet`) and reads each value back (the
/// inverse of the key escaping: `%XX` decoded, Hive's null marker is null), in the form Delta
/// readers parse for the column's type.
pub fn locate<'k>(key: &'k str, partitions: &[Partition], file: &Schema) -> Result<Located<'k>, String> {
    let (folder, path) = split(key, partitions.len());
    let mut values = HashMap::with_capacity(partitions.len());
    for (p, segment) in partitions.iter().zip(path.split('/')) {
        let escaped = segment
            .strip_prefix(p.column.as_str())
            .and_then(|s| s.strip_prefix('='))
            .ok_or_else(|| format!("file {key:?} is not in a {}= folder", p.column))?;
        // Null is the marker as written; the marker's own text is written escaped.
        let value = match unescape_ascii(escaped) {
            _ if escaped == NULL_VALUE => None,
            Some(v) => {
                // Readers that take values from folder names (polars) must read what the log
                // says: the folder holds the value exactly as the log writes it.
                let kind = kind(p, file)?;
                match typed(kind, &v) {
                    Some(t) if t == v => Some(v),
                    _ => {
                        return Err(format!(
                            "partition column {:?}: {v:?} is not {} value as Delta writes it (with validate_records off, records can hold values of other types)",
                            p.column,
                            kind.name()
                        ));
                    }
                }
            }
            None => {
                return Err(format!(
                    "partition column {:?}: the value's folder `{}=...` is over {} bytes, too long for a folder name",
                    p.column,
                    p.column,
                    crate::keys::MAX_SEGMENT_BYTES
                ));
            }
        };
        values.insert(p.column.clone(), value);
    }
    Ok(Located { folder, path, values })
}

/// `text` as Delta's partition value text of a `kind` column: an integer without fraction,
/// exponent or leading zeros, `true`/`false`, a `YYYY-MM-DD` date.
fn typed(kind: Kind, text: &str) -> Option<String> {
    match kind {
        Kind::Text => Some(text.to_string()),
        Kind::Integer => text.parse::<i64>().ok().map(|n| n.to_string()),
        Kind::Boolean => matches!(text, "true" | "false").then(|| text.to_string()),
        Kind::Date => crate::json::parse_date_time(text).map(|t| t.format("%Y-%m-%d").to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::TimeUnit;

    fn partitions() -> Vec<Partition> {
        vec![
            Partition { field: "country".into(), column: "country".into(), granularity: None },
            Partition { field: "n".into(), column: "n".into(), granularity: None },
            Partition { field: "at".into(), column: "at_day".into(), granularity: Some(Granularity::Day) },
        ]
    }

    fn schema() -> Schema {
        Schema::new(vec![
            arrow_schema::Field::new("country", Arrow::Utf8, true),
            arrow_schema::Field::new("n", Arrow::Int64, true),
            arrow_schema::Field::new("at", Arrow::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        ])
    }

    fn columns() -> Vec<Field> {
        let f = |name: &str, ty: Type| Field { name: name.into(), ty, nullable: true };
        vec![
            f("country", Type::Text),
            f("n", Type::Int),
            f("at", Type::Timestamp),
            f("d", Type::Date),
            f("x", Type::Float),
            f("j", Type::Json),
        ]
    }

    #[test]
    fn keys_give_back_the_values_they_were_rendered_from() {
        let key = "pre/orders/country=a%2Fb%25%20%E6%9D%B1/n=-12/at_day=2024-01-05/part-1-u.parquet";
        let located = locate(key, &partitions(), &schema()).unwrap();
        assert_eq!(located.folder, "pre/orders");
        assert_eq!(located.path, "country=a%2Fb%25%20%E6%9D%B1/n=-12/at_day=2024-01-05/part-1-u.parquet");
        assert_eq!(located.values["country"].as_deref(), Some("a/b% 東"));
        assert_eq!(located.values["n"].as_deref(), Some("-12"));
        assert_eq!(located.values["at_day"].as_deref(), Some("2024-01-05"));
        let null = "t/country=__HIVE_DEFAULT_PARTITION__/n=7/at_day=__HIVE_DEFAULT_PARTITION__/p.parquet";
        let located = locate(null, &partitions(), &schema()).unwrap();
        assert_eq!((located.values["country"].clone(), located.values["at_day"].clone()), (None, None));
        // The escaped text of the null marker is a value, not null.
        let marker = "t/country=%5F%5FHIVE_DEFAULT_PARTITION__/n=7/at_day=2024-01-05/p.parquet";
        assert_eq!(locate(marker, &partitions(), &schema()).unwrap().values["country"].as_deref(), Some(NULL_VALUE));
        // A folder that does not read as the log's value (polars reads folders) is refused.
        for n in ["1.0", "01", "1e3", "x", "%5F%5FHIVE_DEFAULT_PARTITION__"] {
            let key = format!("t/country=a/n={n}/at_day=2024-01-05/p.parquet");
            assert!(locate(&key, &partitions(), &schema()).unwrap_err().contains("not an integer value"), "{n}");
        }
        let cut = format!("t/country={}~{}/n=7/at_day=2024-01-05/p.parquet", "a".repeat(222), "0".repeat(32));
        assert!(locate(&cut, &partitions(), &schema()).unwrap_err().contains("over 255 bytes"));
        assert!(locate("t/country=a%Zb/n=7/at_day=2024-01-05/p.parquet", &partitions(), &schema()).is_err());
        assert_eq!(locate("t/p.parquet", &[], &schema()).unwrap().folder, "t");
    }

    #[test]
    fn only_columns_readers_can_partition_by_are_accepted() {
        check(&partitions(), &columns()).unwrap();
        let p = |field: &str, g: Option<Granularity>| {
            let column = g.map_or(field.to_string(), |g| format!("{field}_{g}"));
            [Partition { field: field.into(), column, granularity: g }]
        };
        check(&p("d", Some(Granularity::Month)), &columns()).unwrap();
        assert!(check(&p("x", None), &columns()).unwrap_err().contains("cannot partition"));
        assert!(check(&p("j", None), &columns()).unwrap_err().contains("no single type"));
        assert!(check(&p("at", None), &columns()).unwrap_err().contains("\"at:day\""));
        assert!(check(&p("d", None), &columns()).unwrap_err().contains("\"d:day\""));
        assert!(check(&p("country", Some(Granularity::Day)), &columns()).unwrap_err().contains("needs a date-time"));
        assert!(check(&p("nope", None), &columns()).unwrap_err().contains("no top-level field \"nope\""));
        let mut clash = columns();
        clash.push(Field { name: "at_day".into(), ty: Type::Text, nullable: true });
        assert!(check(&partitions(), &clash).unwrap_err().contains("already has"));
    }
}
