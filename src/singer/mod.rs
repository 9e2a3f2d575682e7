//! Singer input: the [`reader`] thread hands over blocks of whole lines, [`message`] decodes one
//! line into a message that borrows from it, and [`batch`] reads BATCH files on their own thread
//! into blocks of lines like the input's.

pub mod batch;
mod message;
mod reader;

pub use message::{BatchEncoding, DecodeError, Located, Message, decode};
pub use reader::{Block, spawn_reader};

/// Makes room for `additional` more bytes in a line buffer without ever holding much more than
/// a line's cap: doubling while lines are ordinary, and for a line past [`JUMP`] one step to
/// `ceiling` (the cap plus a read block). Doubling all the way would hold the old buffer and
/// one twice its size at once: 768 MiB for a line at the 256 MiB cap.
fn grow(buf: &mut Vec<u8>, additional: usize, ceiling: usize) {
    let needed = buf.len() + additional;
    if needed <= buf.capacity() {
        return;
    }
    let target = if needed > JUMP { ceiling.max(needed) } else { buf.capacity().saturating_mul(2).max(needed) };
    buf.reserve_exact(target - buf.len());
}

/// Past this, a line buffer grows straight to its ceiling (see [`grow`]).
const JUMP: usize = 8 << 20;
