//! A stream's columns as a Delta schema, and the one schema change a table takes on its own:
//! new nullable columns. Anything else (a column's type changed, a required column added or
//! dropped) would make files the table cannot read, so it stops the run instead.

use arrow_schema::Schema;
use deltalake_core::kernel::engine::arrow_conversion::TryFromArrow;
use deltalake_core::kernel::{ArrayType, DataType, MapType, StructField, StructType};

/// The Delta columns of a stream's Parquet files (the same type table as `format: parquet`).
pub fn to_delta(arrow: &Schema) -> Result<StructType, String> {
    // The error's first line: the kernel appends a backtrace when RUST_BACKTRACE is set.
    StructType::try_from_arrow(arrow).map_err(|e| {
        let e = e.to_string();
        format!("its columns make no table schema: {}", e.lines().next().unwrap_or_default())
    })
}

/// `table` holding `new`'s values too: `Some` when both have the same shape (types equal but
/// for the nullability of nested fields, array items and map values), with each of those
/// nullable where either is; `None` when the types differ. `nested`: an object may also gain
/// nullable fields (Iceberg names nested fields by id, so a table takes them; a Delta table's
/// nested fields are refused as a changed type, as its readers match them by position).
fn widen(table: &DataType, new: &DataType, nested: bool) -> Option<DataType> {
    match (table, new) {
        (DataType::Struct(t), DataType::Struct(n)) if nested => {
            let mut fields = Vec::new();
            for a in t.fields() {
                match n.field(a.name()) {
                    Some(b) => {
                        let ty = widen(a.data_type(), b.data_type(), nested)?;
                        fields.push(StructField::new(a.name(), ty, a.is_nullable() || b.is_nullable()));
                    }
                    None if a.is_nullable() => fields.push(a.clone()),
                    None => return None,
                }
            }
            for b in n.fields().filter(|b| t.field(b.name()).is_none()) {
                fields.push(StructField::new(b.name(), b.data_type().clone(), true));
            }
            StructType::try_new(fields).ok().map(|s| DataType::Struct(Box::new(s)))
        }
        (DataType::Struct(t), DataType::Struct(n)) => {
            if t.fields().len() != n.fields().len() {
                return None;
            }
            let fields = t.fields().zip(n.fields()).map(|(a, b)| {
                (a.name() == b.name()).then_some(())?;
                let ty = widen(a.data_type(), b.data_type(), nested)?;
                Some(StructField::new(a.name(), ty, a.is_nullable() || b.is_nullable()))
            });
            let fields: Option<Vec<StructField>> = fields.collect();
            StructType::try_new(fields?).ok().map(|s| DataType::Struct(Box::new(s)))
        }
        (DataType::Array(t), DataType::Array(n)) => {
            let item = widen(t.element_type(), n.element_type(), nested)?;
            Some(DataType::Array(Box::new(ArrayType::new(item, t.contains_null() || n.contains_null()))))
        }
        (DataType::Map(t), DataType::Map(n)) => {
            let key = widen(t.key_type(), n.key_type(), nested)?;
            let value = widen(t.value_type(), n.value_type(), nested)?;
            Some(DataType::Map(Box::new(MapType::new(key, value, t.value_contains_null() || n.value_contains_null()))))
        }
        (t, n) => (t == n).then(|| t.clone()),
    }
}

/// The table's schema after a stream's new SCHEMA: `None` when it is unchanged, the evolved
/// schema when the stream only added nullable columns (or made a column nullable), and an
/// error naming the column otherwise.
pub fn evolve(table: &StructType, stream: &StructType) -> Result<Option<StructType>, String> {
    evolve_with(table, stream, false)
}

/// [`evolve`], where `nested` objects may also gain nullable fields (Iceberg tables).
pub fn evolve_with(table: &StructType, stream: &StructType, nested: bool) -> Result<Option<StructType>, String> {
    let mut changed = false;
    let mut fields: Vec<StructField> = Vec::new();
    for column in table.fields() {
        let widened = stream.field(column.name()).and_then(|new| widen(column.data_type(), new.data_type(), nested));
        match stream.field(column.name()) {
            // The same shape, where the stream allows nulls inside (a nested field or an array's
            // items) that the table did not: the table takes them.
            Some(new) if widened.as_ref().is_some_and(|w| w != column.data_type()) => {
                changed = true;
                let nullable = column.is_nullable() || new.is_nullable();
                fields.push(StructField::new(column.name(), widened.expect("checked"), nullable));
            }
            Some(new) if widened.is_none() => {
                return Err(format!(
                    "column {:?} changed type from {} to {}; a table keeps its columns' types (`incompatible_schema: new_table` writes the new shape to a new table)",
                    column.name(),
                    column.data_type(),
                    new.data_type()
                ));
            }
            Some(new) if new.is_nullable() && !column.is_nullable() => {
                changed = true;
                fields.push(StructField::new(column.name(), column.data_type().clone(), true));
            }
            Some(_) => fields.push(column.clone()),
            None if column.is_nullable() => fields.push(column.clone()),
            None => {
                return Err(format!(
                    "the stream's schema no longer has the required column {:?}; files without it would break the table",
                    column.name()
                ));
            }
        }
    }
    for new in stream.fields().filter(|f| table.field(f.name()).is_none()) {
        if !new.is_nullable() {
            return Err(format!(
                "the stream added the required column {:?}; the table's existing rows have no value for it (only nullable columns can be added)",
                new.name()
            ));
        }
        changed = true;
        fields.push(new.clone());
    }
    if !changed {
        return Ok(None);
    }
    StructType::try_new(fields).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake_core::kernel::{DataType, PrimitiveType};

    fn schema(fields: &[(&str, PrimitiveType, bool)]) -> StructType {
        StructType::try_new(
            fields.iter().map(|(n, t, null)| StructField::new(*n, DataType::Primitive(t.clone()), *null)),
        )
        .unwrap()
    }

    #[test]
    fn nullable_columns_are_added_and_nothing_else_changes_silently() {
        use PrimitiveType::{Long, String};
        let table = schema(&[("id", Long, false), ("name", String, true)]);
        assert_eq!(evolve(&table, &table).unwrap(), None);
        let added = schema(&[("id", Long, false), ("name", String, true), ("email", String, true)]);
        let evolved = evolve(&table, &added).unwrap().expect("a new nullable column evolves the table");
        assert_eq!(evolved.fields().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["id", "name", "email"]);
        // A dropped nullable column stays in the table (older rows keep their values).
        assert_eq!(evolve(&table, &schema(&[("id", Long, false)])).unwrap(), None);
        let retyped = evolve(&table, &schema(&[("id", String, false), ("name", String, true)])).unwrap_err();
        assert!(retyped.contains("\"id\" changed type"), "{retyped}");
        let required = evolve(&table, &schema(&[("id", Long, false), ("name", String, true), ("x", Long, false)]));
        assert!(required.unwrap_err().contains("required column \"x\""));
        assert!(evolve(&table, &schema(&[("name", String, true)])).unwrap_err().contains("no longer has"));
    }

    /// A nested field or array item that becomes nullable widens the table (it was refused
    /// as "struct<p: long> changed to struct<p: long>"); one that becomes required keeps it.
    #[test]
    fn nested_values_may_become_nullable() {
        let nested = |null: bool| {
            let inner = StructType::try_new([StructField::new("p", DataType::LONG, null)]).unwrap();
            let list = ArrayType::new(DataType::LONG, null);
            StructType::try_new([
                StructField::new("o", DataType::Struct(Box::new(inner)), true),
                StructField::new("l", DataType::Array(Box::new(list)), true),
            ])
            .unwrap()
        };
        let widened = evolve(&nested(false), &nested(true)).unwrap().expect("widened");
        assert_eq!(widened, nested(true));
        assert_eq!(evolve(&nested(true), &nested(false)).unwrap(), None);
        let other = StructType::try_new([StructField::new("o", DataType::STRING, true)]).unwrap();
        assert!(evolve(&nested(false), &other).unwrap_err().contains("changed type"));
    }
}
