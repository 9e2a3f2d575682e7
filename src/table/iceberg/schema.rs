//! An Iceberg schema (the table metadata's JSON, field ids and all) as the column model the
//! table layer shares with Delta, and back: the round logic plans and evolves columns once, in
//! one model, and only this file knows Iceberg's type names and ids. A table's existing fields
//! are never rewritten from the model (their ids, docs and other engines' attributes stay as
//! they are): new columns are added with new ids, and a required column the files leave empty
//! is made optional, the two changes the Iceberg spec allows without rewriting data.

use deltalake_core::kernel::{ArrayType, DataType, MapType, PrimitiveType, StructField, StructType};
use serde_json::{Value, json};

/// The column model of an Iceberg schema's `fields`. Types target-s3 never writes (time, uuid,
/// fixed, variant, ...) become `binary`, which no stream column has: a stream column of that
/// name is refused as a changed type rather than taken as the same.
pub fn to_columns(fields: &[Value]) -> Result<StructType, String> {
    let fields: Result<Vec<StructField>, String> = fields
        .iter()
        .map(|f| {
            let name = f["name"].as_str().ok_or("a schema field has no name")?;
            let required = f["required"].as_bool().unwrap_or(false);
            Ok(StructField::new(name, to_type(&f["type"])?, !required))
        })
        .collect();
    StructType::try_new(fields?).map_err(|e| e.to_string())
}

fn to_type(ty: &Value) -> Result<DataType, String> {
    if let Some(name) = ty.as_str() {
        return Ok(match name {
            "boolean" => DataType::BOOLEAN,
            "int" => DataType::INTEGER,
            "long" => DataType::LONG,
            "float" => DataType::FLOAT,
            "double" => DataType::DOUBLE,
            "date" => DataType::DATE,
            "timestamptz" => DataType::TIMESTAMP,
            "timestamp" => DataType::TIMESTAMP_NTZ,
            "string" => DataType::STRING,
            _ => match decimal(name) {
                Some((p, s)) => DataType::decimal(p, s).map_err(|e| e.to_string())?,
                None => DataType::BINARY,
            },
        });
    }
    match ty["type"].as_str() {
        Some("struct") => Ok(DataType::Struct(Box::new(to_columns(ty["fields"].as_array().map_or(&[][..], |f| f))?))),
        Some("list") => {
            let required = ty["element-required"].as_bool().unwrap_or(false);
            Ok(DataType::Array(Box::new(ArrayType::new(to_type(&ty["element"])?, !required))))
        }
        Some("map") => {
            let required = ty["value-required"].as_bool().unwrap_or(false);
            Ok(DataType::Map(Box::new(MapType::new(to_type(&ty["key"])?, to_type(&ty["value"])?, !required))))
        }
        _ => Err(format!("unknown type {ty}")),
    }
}

/// `decimal(P, S)`'s precision and scale.
fn decimal(name: &str) -> Option<(u8, u8)> {
    let inner = name.strip_prefix("decimal(")?.strip_suffix(')')?;
    let (p, s) = inner.split_once(',')?;
    Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
}

/// Hands out new field ids above the table's `last-column-id`.
pub struct Ids {
    pub last: i64,
}

impl Ids {
    fn next(&mut self) -> i64 {
        self.last += 1;
        self.last
    }
}

/// The Iceberg type of a column-model type, nested fields with new ids. Every field optional:
/// a stream's later records may leave any column out.
fn from_type(ty: &DataType, ids: &mut Ids) -> Result<Value, String> {
    Ok(match ty {
        DataType::Primitive(p) => Value::from(match p {
            PrimitiveType::Boolean => "boolean".to_string(),
            PrimitiveType::Integer | PrimitiveType::Short | PrimitiveType::Byte => "int".to_string(),
            PrimitiveType::Long => "long".to_string(),
            PrimitiveType::Float => "float".to_string(),
            PrimitiveType::Double => "double".to_string(),
            PrimitiveType::Date => "date".to_string(),
            PrimitiveType::Timestamp => "timestamptz".to_string(),
            PrimitiveType::TimestampNtz => "timestamp".to_string(),
            PrimitiveType::String => "string".to_string(),
            PrimitiveType::Binary => "binary".to_string(),
            PrimitiveType::Decimal(d) => format!("decimal({}, {})", d.precision(), d.scale()),
            other => return Err(format!("the type {other} has no Iceberg type")),
        }),
        DataType::Struct(s) => json!({"type": "struct", "fields": new_fields(s, ids)?}),
        DataType::Array(a) => {
            let id = ids.next();
            json!({"type": "list", "element-id": id, "element": from_type(a.element_type(), ids)?, "element-required": false})
        }
        DataType::Map(m) => {
            let (key_id, value_id) = (ids.next(), ids.next());
            json!({
                "type": "map",
                "key-id": key_id,
                "key": from_type(m.key_type(), ids)?,
                "value-id": value_id,
                "value": from_type(m.value_type(), ids)?,
                "value-required": false,
            })
        }
        other => return Err(format!("the type {other} has no Iceberg type")),
    })
}

/// `columns` as new Iceberg fields: ids for a level first, then for what each field holds (the
/// order Iceberg's own writers assign them in).
pub fn new_fields(columns: &StructType, ids: &mut Ids) -> Result<Vec<Value>, String> {
    let own: Vec<i64> = columns.fields().map(|_| ids.next()).collect();
    columns
        .fields()
        .zip(own)
        .map(|(f, id)| {
            Ok(json!({"id": id, "name": f.name(), "required": false, "type": from_type(f.data_type(), ids)?}))
        })
        .collect()
}

/// The table's `fields` holding `columns` (the planned columns after the round, a superset of
/// the table's): new columns appended with new ids, at the top level and inside objects (also
/// objects in lists and maps); a required field the columns make nullable made optional.
/// `None` when nothing changes.
pub fn evolve(fields: &[Value], columns: &StructType, ids: &mut Ids) -> Result<Option<Vec<Value>>, String> {
    let mut out = fields.to_vec();
    Ok(merge(&mut out, columns, ids)?.then_some(out))
}

/// One struct level of [`evolve`]: true when it changed.
fn merge(fields: &mut Vec<Value>, columns: &StructType, ids: &mut Ids) -> Result<bool, String> {
    let mut changed = false;
    for field in fields.iter_mut() {
        let Some(column) = field["name"].as_str().and_then(|n| columns.field(n)) else { continue };
        if column.is_nullable() && field["required"] == true {
            field["required"] = Value::from(false);
            changed = true;
        }
        changed |= merge_type(&mut field["type"], column.data_type(), ids)?;
    }
    let added: Vec<StructField> =
        columns.fields().filter(|c| !fields.iter().any(|f| f["name"] == c.name().as_str())).cloned().collect();
    if !added.is_empty() {
        let added = StructType::try_new(added).map_err(|e| e.to_string())?;
        fields.extend(new_fields(&added, ids)?);
        changed = true;
    }
    Ok(changed)
}

fn merge_type(ty: &mut Value, column: &DataType, ids: &mut Ids) -> Result<bool, String> {
    Ok(match column {
        DataType::Struct(s) => match ty["fields"].as_array_mut() {
            Some(fields) => merge(fields, s, ids)?,
            None => false,
        },
        DataType::Array(a) => {
            let relaxed = a.contains_null() && ty["element-required"] == true;
            if relaxed {
                ty["element-required"] = Value::from(false);
            }
            merge_type(&mut ty["element"], a.element_type(), ids)? | relaxed
        }
        DataType::Map(m) => {
            let relaxed = m.value_contains_null() && ty["value-required"] == true;
            if relaxed {
                ty["value-required"] = Value::from(false);
            }
            merge_type(&mut ty["value"], m.value_type(), ids)? | relaxed
        }
        _ => false,
    })
}

/// The table property `schema.name-mapping.default`: which field id a column of a data file
/// without ids is (files other tools added, e.g. pyiceberg's `add_files`; target-s3's own files
/// carry ids). List elements are named as Arrow and Parquet name them. `existing`: the table's
/// mapping so far, whose names stay aliases of their ids (a renamed column's old name still
/// finds the files written under it), unless a sibling field now has that name.
pub fn name_mapping(fields: &[Value], existing: Option<&str>) -> Value {
    let mut aliases: std::collections::HashMap<i64, Vec<Value>> = std::collections::HashMap::new();
    fn collect(entries: &Value, aliases: &mut std::collections::HashMap<i64, Vec<Value>>) {
        for entry in entries.as_array().into_iter().flatten() {
            if let Some(id) = entry["field-id"].as_i64() {
                aliases.entry(id).or_default().extend(entry["names"].as_array().into_iter().flatten().cloned());
            }
            collect(&entry["fields"], aliases);
        }
    }
    if let Some(existing) = existing.and_then(|e| serde_json::from_str::<Value>(e).ok()) {
        collect(&existing, &mut aliases);
    }
    level(fields, &aliases)
}

/// One struct level of the mapping: each field's name, then its aliases no sibling now has.
fn level(fields: &[Value], aliases: &std::collections::HashMap<i64, Vec<Value>>) -> Value {
    let taken: Vec<&Value> = fields.iter().map(|f| &f["name"]).collect();
    Value::Array(
        fields
            .iter()
            .map(|f| {
                let mut names = vec![f["name"].clone()];
                for alias in f["id"].as_i64().and_then(|id| aliases.get(&id)).into_iter().flatten() {
                    if !names.contains(alias) && !taken.contains(&alias) {
                        names.push(alias.clone());
                    }
                }
                mapped(&f["id"], names, &f["type"], aliases)
            })
            .collect(),
    )
}

fn mapped(id: &Value, names: Vec<Value>, ty: &Value, aliases: &std::collections::HashMap<i64, Vec<Value>>) -> Value {
    let mut entry = json!({"field-id": id, "names": names});
    let nested = match ty["type"].as_str() {
        Some("struct") => level(ty["fields"].as_array().map_or(&[][..], |f| f), aliases),
        Some("list") => {
            json!([mapped(&ty["element-id"], vec!["element".into(), "item".into()], &ty["element"], aliases)])
        }
        Some("map") => json!([
            mapped(&ty["key-id"], vec!["key".into()], &ty["key"], aliases),
            mapped(&ty["value-id"], vec!["value".into()], &ty["value"], aliases),
        ]),
        _ => json!([]),
    };
    if nested.as_array().is_some_and(|n| !n.is_empty()) {
        entry["fields"] = nested;
    }
    entry
}

/// Every field id in `fields` (at any depth) with the field's name (`element`, `key` and `value`
/// for what lists and maps hold).
pub fn ids(fields: &[Value]) -> Vec<(i64, String)> {
    fn of_type(ty: &Value, out: &mut Vec<(i64, String)>) {
        match ty["type"].as_str() {
            Some("struct") => out.extend(ids(ty["fields"].as_array().map_or(&[][..], |f| f))),
            Some("list") => {
                out.extend(ty["element-id"].as_i64().map(|id| (id, "element".to_string())));
                of_type(&ty["element"], out);
            }
            Some("map") => {
                out.extend(ty["key-id"].as_i64().map(|id| (id, "key".to_string())));
                out.extend(ty["value-id"].as_i64().map(|id| (id, "value".to_string())));
                of_type(&ty["key"], out);
                of_type(&ty["value"], out);
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for field in fields {
        if let Some(id) = field["id"].as_i64() {
            out.push((id, field["name"].as_str().unwrap_or_default().to_string()));
        }
        of_type(&field["type"], &mut out);
    }
    out
}

/// The required fields (at any depth of structs) of `fields`, by id and name.
pub fn required(fields: &[Value]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for f in fields {
        if f["required"] == true {
            out.push((f["id"].as_i64().unwrap_or_default(), f["name"].as_str().unwrap_or_default().to_string()));
        }
        if f["type"]["type"] == "struct" {
            out.extend(required(f["type"]["fields"].as_array().map_or(&[][..], |n| n)));
        }
    }
    out
}

/// The highest field id in `fields` (a table whose `last-column-id` is lower than its own ids
/// is not trusted with new ones).
pub fn max_id(fields: &[Value]) -> i64 {
    fn of_type(ty: &Value) -> i64 {
        match ty["type"].as_str() {
            Some("struct") => max_id(ty["fields"].as_array().map_or(&[][..], |f| f)),
            Some("list") => ty["element-id"].as_i64().unwrap_or(0).max(of_type(&ty["element"])),
            Some("map") => ty["key-id"]
                .as_i64()
                .unwrap_or(0)
                .max(ty["value-id"].as_i64().unwrap_or(0))
                .max(of_type(&ty["key"]))
                .max(of_type(&ty["value"])),
            _ => 0,
        }
    }
    fields.iter().map(|f| f["id"].as_i64().unwrap_or(0).max(of_type(&f["type"]))).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_gain_fields_with_new_ids_also_inside_lists() {
        let object = |fields: &[&str]| {
            DataType::Struct(Box::new(
                StructType::try_new(fields.iter().map(|f| StructField::new(*f, DataType::STRING, true))).unwrap(),
            ))
        };
        let table = StructType::try_new([
            StructField::new("a", object(&["x"]), true),
            StructField::new("l", DataType::Array(Box::new(ArrayType::new(object(&["x"]), true))), true),
        ])
        .unwrap();
        let mut ids = Ids { last: 0 };
        let fields = new_fields(&table, &mut ids).unwrap();
        let grown = StructType::try_new([
            StructField::new("a", object(&["x", "y"]), true),
            StructField::new("l", DataType::Array(Box::new(ArrayType::new(object(&["x", "z"]), true))), true),
        ])
        .unwrap();
        let evolved = evolve(&fields, &grown, &mut ids).unwrap().unwrap();
        assert_eq!(evolved[0]["type"]["fields"][1], json!({"id": 6, "name": "y", "required": false, "type": "string"}));
        assert_eq!(evolved[1]["type"]["element"]["fields"][1]["name"], "z");
        assert_eq!(evolved[0]["type"]["fields"][0], fields[0]["type"]["fields"][0], "old ids stay");
        assert_eq!(to_columns(&evolved).unwrap(), grown);
    }

    #[test]
    fn new_columns_get_new_ids_and_old_ones_keep_theirs() {
        let table = json!([
            {"id": 1, "name": "id", "required": true, "type": "long"},
            {"id": 2, "name": "tags", "required": false, "type": {"type": "list", "element-id": 3, "element": "string", "element-required": false}},
        ]);
        let fields = table.as_array().unwrap();
        let columns = StructType::try_new([
            StructField::new("id", DataType::LONG, true),
            StructField::new("tags", DataType::Array(Box::new(ArrayType::new(DataType::STRING, true))), true),
            StructField::new("amount", DataType::decimal(38, 2).unwrap(), true),
        ])
        .unwrap();
        assert_eq!(to_columns(fields).unwrap().fields().count(), 2);
        let mut ids = Ids { last: max_id(fields) };
        let evolved = evolve(fields, &columns, &mut ids).unwrap().unwrap();
        assert_eq!(evolved[0], json!({"id": 1, "name": "id", "required": false, "type": "long"}));
        assert_eq!(evolved[2], json!({"id": 4, "name": "amount", "required": false, "type": "decimal(38, 2)"}));
        assert_eq!(evolve(&evolved, &columns, &mut ids).unwrap(), None);
        let mapping = name_mapping(
            &evolved,
            Some(r#"[{"field-id": 1, "names": ["id", "key"]}, {"field-id": 2, "names": ["tags", "id"]}]"#),
        );
        assert_eq!(mapping[0]["names"], json!(["id", "key"]));
        assert_eq!(mapping[1]["names"], json!(["tags"]), "a name another field has now is no alias");
        assert_eq!(mapping[1]["fields"][0]["field-id"], 3);
        assert_eq!(to_columns(&evolved).unwrap(), columns);
    }
}
