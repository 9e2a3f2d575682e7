//! Object keys: a key template is parsed once at start-up ([`template`]), from the macro
//! vocabulary ([`macros`]); each file's key is rendered once ([`render`]), every value in it
//! escaped by one reversible rule ([`escape`]); the run's [`registry`] numbers `{part}` per
//! rendered key and refuses a key twice, and hands storage an [`ObjectKey`], the only key type
//! a store accepts.

mod escape;
mod macros;
mod object_key;
mod registry;
mod render;
mod template;
#[cfg(test)]
mod tests;

pub use escape::{
    MAX_SEGMENT_BYTES, NULL_VALUE, fit_segments, fnv1a, push_escaped, push_escaped_ascii, push_null, unescape_ascii,
};
pub use macros::{FieldPath, JOB_VARIABLES, MACROS, MacroSpec, MacroStyle, RECORD_MACRO_DOC, is_builtin};
pub use object_key::{KeyError, ObjectKey, check_key};
pub use registry::KeyRegistry;
pub use render::{FileContext, KeyShape, PART_MARK, RenderedKey, RunContext};
pub use template::{KeyTemplate, ParseOptions, TemplateError, Uniqueness, ValueEscaping};
