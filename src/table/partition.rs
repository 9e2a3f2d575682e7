//! `partition_by`: a table's partition columns. The pipeline already routes each record to a
//! file under `column=value` folders (the data key template, rendered and escaped as every key
//! value is), so a file holds one partition; here the folders are read back into the Delta
//! `partitionValues` of its `add` action, typed as Delta readers parse them.

use std::collections::HashMap;

use arrow_schema::{DataType as Arrow, Schema};
use deltalake_core::kernel::{DataType, StructField};

use crate::config::{Granularity, Partition};
use crate::keys::{NULL_VALUE, unescape_ascii};

/// How a partition column's values are written in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Boolean,
    Date,
}

/// The kind of a partition column: a granularity's, or the field's own column type. `None`:
/// the column cannot partition a table (floats, decimals, timestamps, nested values).
fn kind(partition: &Partition, file: &Schema) -> Result<Kind, String> {
    let field = file.field_with_name(&partition.field).map_err(|_| {
        format!("the stream has no top-level field {:?} to partition by (partition_by)", partition.field)
    })?;
    let data_type = field.data_type();
    match partition.granularity {
        Some(g) => match data_type {
            Arrow::Timestamp(..) | Arrow::Date32 | Arrow::Date64 | Arrow::Utf8 | Arrow::LargeUtf8 => Ok(match g {
                Granularity::Year => Kind::Integer,
                Granularity::Day => Kind::Date,
                Granularity::Month | Granularity::Hour => Kind::Text,
            }),
            other => Err(format!(
                "partition_by {:?}:{g}: the field is a {other} column; a granularity needs a date-time or date",
                partition.field
            )),
        },
        None => match data_type {
            Arrow::Utf8 | Arrow::LargeUtf8 => Ok(Kind::Text),
            t if t.is_integer() => Ok(Kind::Integer),
            Arrow::Boolean => Ok(Kind::Boolean),
            Arrow::Date32 | Arrow::Date64 => Ok(Kind::Date),
            Arrow::Timestamp(..) => Err(format!(
                "partition_by {:?}: a date-time field partitions by a granularity, e.g. \"{}:day\"",
                partition.field, partition.field
            )),
            other => Err(format!(
                "partition_by {:?}: a {other} column cannot partition a table (string, integer, boolean and date columns can)",
                partition.field
            )),
        },
    }
}

/// Checks a stream's columns against `partition_by` (at its SCHEMA line): every field there,
/// of a type that can partition, and no derived column clashing with a column of the stream.
pub fn check(partitions: &[Partition], file: &Schema) -> Result<(), String> {
    for p in partitions {
        kind(p, file)?;
        if p.granularity.is_some() && file.field_with_name(&p.column).is_ok() {
            return Err(format!(
                "partition_by {:?}:{} adds the column {:?}, which the stream already has",
                p.field,
                p.granularity.map(|g| g.as_str()).unwrap_or_default(),
                p.column
            ));
        }
    }
    Ok(())
}

/// The partition columns the files do not hold (those cut to a granularity), for the table's
/// schema.
pub fn derived_columns(partitions: &[Partition]) -> impl Iterator<Item = StructField> + '_ {
    partitions.iter().filter_map(|p| {
        let data_type = match p.granularity? {
            Granularity::Year => DataType::LONG,
            Granularity::Day => DataType::DATE,
            Granularity::Month | Granularity::Hour => DataType::STRING,
        };
        Some(StructField::new(p.column.clone(), data_type, true))
    })
}

/// A data file's key split into its table folder, its partition values and its path inside
/// the table (what its `add` action names).
#[derive(Debug)]
pub struct Located<'k> {
    pub folder: &'k str,
    pub path: &'k str,
    pub values: HashMap<String, Option<String>>,
}

/// Splits `key` (`folder/column=value/.../part-*.parquet`) and reads each value back (the
/// inverse of the key escaping: `%XX` decoded, Hive's null marker is null), in the form Delta
/// readers parse for the column's type.
pub fn locate<'k>(key: &'k str, partitions: &[Partition], file: &Schema) -> Result<Located<'k>, String> {
    let mut cut = key.len();
    for _ in 0..=partitions.len() {
        cut = key[..cut].rfind('/').unwrap_or(0);
    }
    let (folder, path) = if cut == 0 && !key.starts_with('/') { ("", key) } else { (&key[..cut], &key[cut + 1..]) };
    let mut values = HashMap::with_capacity(partitions.len());
    for (p, segment) in partitions.iter().zip(path.split('/')) {
        let escaped = segment
            .strip_prefix(p.column.as_str())
            .and_then(|s| s.strip_prefix('='))
            .ok_or_else(|| format!("file {key:?} is not in a {}= folder", p.column))?;
        // Null is the marker as written; the marker's own text is written escaped.
        let value = match unescape_ascii(escaped) {
            _ if escaped == NULL_VALUE => None,
            Some(v) => Some(
                typed(kind(p, file)?, &v)
                    .ok_or_else(|| format!("partition column {:?}: {v:?} is not a value of its type", p.column))?,
            ),
            None => {
                return Err(format!(
                    "partition column {:?}: a value this long cannot be a partition value (file {key:?})",
                    p.column
                ));
            }
        };
        values.insert(p.column.clone(), value);
    }
    Ok(Located { folder, path, values })
}

/// `text` as Delta's partition value text of a `kind` column: an integer without fraction or
/// exponent, `true`/`false`, a `YYYY-MM-DD` date.
fn typed(kind: Kind, text: &str) -> Option<String> {
    match kind {
        Kind::Text => Some(text.to_string()),
        Kind::Integer => match text.parse::<i64>() {
            Ok(n) => Some(n.to_string()),
            // `1.0` and `1e3` are integers to JSON Schema.
            Err(_) => text
                .parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| (f as i64).to_string()),
        },
        Kind::Boolean => matches!(text, "true" | "false").then(|| text.to_string()),
        Kind::Date => crate::json::parse_date_time(text).map(|t| t.format("%Y-%m-%d").to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{Field, TimeUnit};

    fn partitions() -> Vec<Partition> {
        vec![
            Partition { field: "country".into(), column: "country".into(), granularity: None },
            Partition { field: "n".into(), column: "n".into(), granularity: None },
            Partition { field: "at".into(), column: "at_day".into(), granularity: Some(Granularity::Day) },
        ]
    }

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("country", Arrow::Utf8, true),
            Field::new("n", Arrow::Int64, true),
            Field::new("at", Arrow::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("x", Arrow::Float64, true),
        ])
    }

    #[test]
    fn keys_give_back_the_values_they_were_rendered_from() {
        let key = "pre/orders/country=a%2Fb%25%20%E6%9D%B1/n=1.0/at_day=2024-01-05/part-1-u.parquet";
        let located = locate(key, &partitions(), &schema()).unwrap();
        assert_eq!(located.folder, "pre/orders");
        assert_eq!(located.path, "country=a%2Fb%25%20%E6%9D%B1/n=1.0/at_day=2024-01-05/part-1-u.parquet");
        assert_eq!(located.values["country"].as_deref(), Some("a/b% 東"));
        assert_eq!(located.values["n"].as_deref(), Some("1"));
        assert_eq!(located.values["at_day"].as_deref(), Some("2024-01-05"));
        let null = "t/country=__HIVE_DEFAULT_PARTITION__/n=%5F%5FHIVE_DEFAULT_PARTITION__/at_day=x/p.parquet";
        let e = locate(null, &partitions(), &schema()).unwrap_err();
        assert!(e.contains("\"n\""), "an integer column refuses text: {e}");
        let null = "t/country=__HIVE_DEFAULT_PARTITION__/n=7/at_day=__HIVE_DEFAULT_PARTITION__/p.parquet";
        let located = locate(null, &partitions(), &schema()).unwrap();
        assert_eq!((located.values["country"].clone(), located.values["at_day"].clone()), (None, None));
        // The escaped text of the null marker is a value, not null.
        let marker = "t/country=%5F%5FHIVE_DEFAULT_PARTITION__/n=7/at_day=2024-01-05/p.parquet";
        assert_eq!(locate(marker, &partitions(), &schema()).unwrap().values["country"].as_deref(), Some(NULL_VALUE));
        let cut = format!("t/country={}~{}/n=7/at_day=2024-01-05/p.parquet", "a".repeat(222), "0".repeat(32));
        assert!(locate(&cut, &partitions(), &schema()).unwrap_err().contains("this long"));
        assert!(locate("t/country=a%Zb/n=7/at_day=2024-01-05/p.parquet", &partitions(), &schema()).is_err());
        assert_eq!(locate("t/p.parquet", &[], &schema()).unwrap().folder, "t");
    }

    #[test]
    fn only_columns_readers_can_partition_by_are_accepted() {
        check(&partitions(), &schema()).unwrap();
        let float = [Partition { field: "x".into(), column: "x".into(), granularity: None }];
        assert!(check(&float, &schema()).unwrap_err().contains("cannot partition"));
        let at = [Partition { field: "at".into(), column: "at".into(), granularity: None }];
        assert!(check(&at, &schema()).unwrap_err().contains("\"at:day\""));
        let missing = [Partition { field: "nope".into(), column: "nope".into(), granularity: None }];
        assert!(check(&missing, &schema()).unwrap_err().contains("no top-level field \"nope\""));
        let mut clash = schema().fields().to_vec();
        clash.push(Arc::new(Field::new("at_day", Arrow::Utf8, true)));
        assert!(check(&partitions(), &Schema::new(clash)).unwrap_err().contains("already has"));
    }

    use std::sync::Arc;
}
