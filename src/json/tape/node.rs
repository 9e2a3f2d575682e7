//! The validator's side: the tape as jsonschema's instance representation.

use std::borrow::Cow;

use jsonschema::JsonType;
use jsonschema::json::{Array, Json, Node, NodeIdentity, Object};
use serde_json::{Number, Value};

use super::{Doc, Elements, Members, Slot, Span};

/// The tape as jsonschema's instance representation.
pub struct TapeJson;

/// One value of a parsed record.
#[derive(Clone, Copy)]
pub struct TapeNode<'a> {
    pub(super) doc: &'a Doc<'a>,
    pub(super) at: u32,
}

/// An object or array value of a parsed record.
#[derive(Clone, Copy)]
pub struct Container<'a> {
    doc: &'a Doc<'a>,
    at: u32,
}

/// A string on its own, for `propertyNames`.
#[derive(Default)]
pub struct NameBuffer {
    slots: Vec<Slot>,
    text: String,
}

impl Json for TapeJson {
    type Node<'a> = TapeNode<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = NameBuffer;

    // A lookup scans the members in order, so a pass over the members pays off early.
    const KEYS_PER_LOOKUP: usize = 8;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>(buffer: &mut NameBuffer, string: &str, f: impl FnOnce(TapeNode<'_>) -> T) -> T {
        buffer.text.clear();
        buffer.text.push_str(string);
        buffer.slots.clear();
        buffer.slots.push(Slot::Text(Span { at: 0, len: string.len() as u32, in_arena: false }));
        let doc = Doc { slots: &buffer.slots, arena: "", text: &buffer.text, whole_floats: false };
        f(doc.root())
    }
}

impl<'a> Node<'a, TapeJson> for TapeNode<'a> {
    type Object = Container<'a>;
    type Array = Container<'a>;
    type Number = Number;

    fn as_object(&self) -> Option<Container<'a>> {
        matches!(self.doc.slots[self.at as usize], Slot::Object { .. })
            .then_some(Container { doc: self.doc, at: self.at })
    }

    fn as_array(&self) -> Option<Container<'a>> {
        matches!(self.doc.slots[self.at as usize], Slot::Array { .. })
            .then_some(Container { doc: self.doc, at: self.at })
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self.doc.slots[self.at as usize] {
            Slot::Text(span) => Some(Cow::Borrowed(self.doc.str(span))),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<Number> {
        self.doc.slots[self.at as usize].number()
    }

    fn is_number(&self) -> bool {
        matches!(self.doc.slots[self.at as usize], Slot::PosInt(_) | Slot::NegInt(_) | Slot::Float(_))
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.doc.slots[self.at as usize] {
            Slot::Bool(b) => Some(b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.doc.slots[self.at as usize], Slot::Null)
    }

    fn json_type(&self) -> JsonType {
        match self.doc.slots[self.at as usize] {
            Slot::Null => JsonType::Null,
            Slot::Bool(_) => JsonType::Boolean,
            Slot::PosInt(_) | Slot::NegInt(_) | Slot::Float(_) => JsonType::Number,
            Slot::Text(_) | Slot::Key(_) => JsonType::String,
            Slot::Array { .. } => JsonType::Array,
            Slot::Object { .. } => JsonType::Object,
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(self.doc.value(self.at))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(self.doc.slots.as_ptr() as usize, self.at))
    }
}

impl Container<'_> {
    /// Whether an object has a member named `name`.
    pub fn has_member(&self, name: &str) -> bool {
        Object::members(self).any(|(member, _)| member == name)
    }

    fn len(&self) -> usize {
        match self.doc.slots[self.at as usize] {
            Slot::Array { len, .. } | Slot::Object { len, .. } => len as usize,
            _ => 0,
        }
    }
}

impl<'a> Object<'a, TapeJson> for Container<'a> {
    type Node = TapeNode<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        Container::len(self)
    }

    fn get(&self, key: &Box<str>) -> Option<TapeNode<'a>> {
        self.members().find(|(name, _)| *name == &**key).map(|(_, node)| node)
    }

    fn members(&self) -> Members<'a> {
        self.doc.members(self.at)
    }
}

impl<'a> Array<'a, TapeJson> for Container<'a> {
    type Node = TapeNode<'a>;
    type ElementsIter = Elements<'a>;

    fn len(&self) -> usize {
        Container::len(self)
    }

    fn elements(&self) -> Elements<'a> {
        self.doc.elements(self.at)
    }
}
