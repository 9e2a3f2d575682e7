//! Raw JSON, read where it lies: members of a record or a schema found in the tap's text without
//! a value tree (in document order, which `serde_json::Value` would not keep), and the scalar
//! parsers every step shares, so one value is read the same way for a key, a column and a
//! cursor.

mod depth;
mod exact;
mod members;
mod scalars;
mod strict;
mod tape;

pub use depth::{MAX_DEPTH, too_deep};
pub use exact::{Exact, survives_f64};
pub use members::{Dropped, FieldIndex, Key, elements, find_field, member, members, properties_of};
pub use scalars::{
    boolean, date, decimal, float, float_exact, int, numeric, parse_date_time, text, timestamp, zero_date,
};
pub use strict::parse_strict;
pub use tape::{Field, Tape, TapeJson, TapeNode};
