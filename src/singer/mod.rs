//! Singer input: the [`reader`] thread hands over blocks of whole lines, [`message`] decodes one
//! line into a message that borrows from it, and [`batch`] reads BATCH files on their own thread
//! into blocks of lines like the input's.

pub mod batch;
mod message;
mod reader;

pub use message::{BatchEncoding, DecodeError, Message, decode};
pub use reader::{Block, spawn_reader};
