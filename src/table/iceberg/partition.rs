//! `partition_by` as an Iceberg partition spec: a plain field is an `identity` partition, a
//! date-time or date cut to a granularity is the `year`, `month`, `day` or `hour` transform of
//! the field itself (hidden partitioning: no extra column). The pipeline already puts each file
//! in one partition's folder; its folder values (the UTC year, `YYYY-MM`, date or `YYYY-MM-DDTHH`
//! of its records) become the typed partition tuple of its manifest entry and the bounds of the
//! manifest list's partition summaries.

use apache_avro::types::Value as Avro;
use serde_json::{Value, json};

use crate::config::{Granularity, Partition};

/// The first partition field id (Iceberg's convention).
const FIRST_ID: i64 = 1000;

/// One field of the table's current partition spec.
#[derive(Clone, Debug)]
pub struct SpecField {
    pub field_id: i64,
    pub name: String,
    /// The type of its values (`int`, `long`, `string`, `boolean`, `date`).
    pub result: &'static str,
}

/// A typed partition value.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub enum Datum {
    Int(i32),
    Long(i64),
    Text(String),
    Bool(bool),
}

impl Datum {
    fn avro(&self) -> Avro {
        match self {
            Datum::Int(n) => Avro::Int(*n),
            Datum::Long(n) => Avro::Long(*n),
            Datum::Text(s) => Avro::String(s.clone()),
            Datum::Bool(b) => Avro::Boolean(*b),
        }
    }

    /// Iceberg's single-value serialization (manifest bounds).
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Datum::Int(n) => n.to_le_bytes().to_vec(),
            Datum::Long(n) => n.to_le_bytes().to_vec(),
            Datum::Text(s) => s.as_bytes().to_vec(),
            Datum::Bool(b) => vec![u8::from(*b)],
        }
    }
}

/// The partition spec of a new table whose schema fields are `fields` (ids assigned).
pub fn new_spec(partitions: &[Partition], fields: &[Value]) -> Result<Value, String> {
    let mut spec = Vec::new();
    for (i, p) in partitions.iter().enumerate() {
        let source = fields
            .iter()
            .find(|f| f["name"] == p.field.as_str())
            .ok_or_else(|| format!("the table has no column {:?} to partition by", p.field))?;
        let transform = p.granularity.map_or("identity", Granularity::as_str);
        if p.granularity == Some(Granularity::Hour) && source["type"] == "date" {
            return Err(format!("partition_by \"{}:hour\": a date has no hour; use :day", p.field));
        }
        spec.push(json!({"source-id": source["id"], "field-id": FIRST_ID + i as i64, "name": p.column, "transform": transform}));
    }
    Ok(json!({"spec-id": 0, "fields": spec}))
}

/// The table's default partition spec, each field's value type worked out from its transform
/// and source column (in the current schema `fields`).
pub fn spec(metadata: &Value, fields: &[Value]) -> (i64, Vec<SpecField>, Value) {
    let id = metadata["default-spec-id"].as_i64().unwrap_or(0);
    let spec = metadata["partition-specs"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["spec-id"] == id))
        .map_or_else(|| json!([]), |s| s["fields"].clone());
    let parsed = spec
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let source = fields.iter().find(|c| c["id"] == f["source-id"]).map_or(&Value::Null, |c| &c["type"]);
            let result = match f["transform"].as_str().unwrap_or_default() {
                "year" | "month" | "hour" => "int",
                "day" => "date",
                _ => match source.as_str() {
                    Some("long") => "long",
                    Some("int") => "int",
                    Some("boolean") => "boolean",
                    Some("date") => "date",
                    _ => "string",
                },
            };
            SpecField {
                field_id: f["field-id"].as_i64().unwrap_or(0),
                name: f["name"].as_str().unwrap_or("").to_string(),
                result,
            }
        })
        .collect();
    (id, parsed, spec)
}

/// The Avro type of a manifest entry's partition tuple.
pub fn avro_record(spec: &[SpecField]) -> Value {
    let fields: Vec<Value> = spec
        .iter()
        .map(|f| {
            let ty = match f.result {
                "date" => json!({"type": "int", "logicalType": "date"}),
                other => json!(other),
            };
            json!({"name": f.name, "field-id": f.field_id, "type": ["null", ty], "default": null})
        })
        .collect();
    json!({"type": "record", "name": "r102", "fields": fields})
}

/// The partition tuple's Avro record for a file's folder values (in spec order).
pub fn avro_tuple(spec: &[SpecField], values: &[Option<Datum>]) -> Avro {
    Avro::Record(
        spec.iter()
            .zip(values)
            .map(|(f, v)| {
                let v = match v {
                    Some(d) => Avro::Union(1, Box::new(d.avro())),
                    None => Avro::Union(0, Box::new(Avro::Null)),
                };
                (f.name.clone(), v)
            })
            .collect(),
    )
}

/// The typed value of a file's partition folder `text` (as the key holds it: a granularity's
/// text, or the field's value) for the spec field `field` of transform `transform`.
pub fn datum(field: &SpecField, granularity: Option<Granularity>, text: Option<&str>) -> Result<Option<Datum>, String> {
    let Some(text) = text else { return Ok(None) };
    let bad = || format!("partition {:?}: {text:?} is no {} value", field.name, field.result);
    let date = |t: &str| chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
    let value = match (granularity, field.result) {
        (Some(Granularity::Year), _) => Datum::Int(text.parse::<i32>().map_err(|_| bad())? - 1970),
        (Some(Granularity::Month), _) => {
            let d = date(&format!("{text}-01")).ok_or_else(bad)?;
            Datum::Int(
                (d.format("%Y").to_string().parse::<i32>().map_err(|_| bad())? - 1970) * 12
                    + d.format("%m").to_string().parse::<i32>().map_err(|_| bad())?
                    - 1,
            )
        }
        (Some(Granularity::Hour), _) => {
            let (day, hour) = text.split_once('T').ok_or_else(bad)?;
            let days = (date(day).ok_or_else(bad)? - epoch).num_days();
            Datum::Int(i32::try_from(days * 24 + hour.parse::<i64>().map_err(|_| bad())?).map_err(|_| bad())?)
        }
        (_, "date") => Datum::Int(i32::try_from((date(text).ok_or_else(bad)? - epoch).num_days()).map_err(|_| bad())?),
        (None, "long") => Datum::Long(text.parse().map_err(|_| bad())?),
        (None, "int") => Datum::Int(text.parse().map_err(|_| bad())?),
        (None, "boolean") => Datum::Bool(text.parse().map_err(|_| bad())?),
        _ => Datum::Text(text.to_string()),
    };
    Ok(Some(value))
}

/// The manifest list's summary of one partition field over `values`: whether a null is among
/// them, and the lowest and highest value.
pub fn summary<'a>(values: impl Iterator<Item = &'a Option<Datum>>) -> Avro {
    let (mut nulls, mut low, mut high): (bool, Option<&Datum>, Option<&Datum>) = (false, None, None);
    for v in values {
        match v {
            None => nulls = true,
            Some(d) => {
                if low.is_none_or(|l| d < l) {
                    low = Some(d);
                }
                if high.is_none_or(|h| d > h) {
                    high = Some(d);
                }
            }
        }
    }
    let bound = |d: Option<&Datum>| match d {
        Some(d) => Avro::Union(1, Box::new(Avro::Bytes(d.bytes()))),
        None => Avro::Union(0, Box::new(Avro::Null)),
    };
    Avro::Record(vec![
        ("contains_null".into(), Avro::Boolean(nulls)),
        ("contains_nan".into(), Avro::Union(0, Box::new(Avro::Null))),
        ("lower_bound".into(), bound(low)),
        ("upper_bound".into(), bound(high)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(result: &'static str) -> SpecField {
        SpecField { field_id: 1000, name: "p".into(), result }
    }

    #[test]
    fn folder_values_become_iceberg_transform_values() {
        let int = field("int");
        assert_eq!(datum(&int, Some(Granularity::Year), Some("2024")).unwrap(), Some(Datum::Int(54)));
        assert_eq!(datum(&int, Some(Granularity::Month), Some("1970-02")).unwrap(), Some(Datum::Int(1)));
        assert_eq!(datum(&int, Some(Granularity::Hour), Some("1970-01-02T03")).unwrap(), Some(Datum::Int(27)));
        assert_eq!(datum(&field("date"), Some(Granularity::Day), Some("1970-01-11")).unwrap(), Some(Datum::Int(10)));
        assert_eq!(datum(&field("long"), None, Some("-7")).unwrap(), Some(Datum::Long(-7)));
        assert_eq!(datum(&field("string"), None, None).unwrap(), None);
        assert!(datum(&field("long"), None, Some("x")).is_err());
    }
}
