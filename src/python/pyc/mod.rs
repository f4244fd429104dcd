//! Reproducible compiled Python (`.pyc`) files for bundles: PEP 552 source hashes, a canonical
//! form of the marshal body, and turning timestamp pycs into checked-hash pycs.
//!
//! A pyc is a 16-byte header (magic, flags word, then either mtime and source size or an 8-byte
//! source hash) followed by one object in CPython's `marshal` format. Two things make pycs of the
//! same source differ between builds, and this module removes both:
//!
//! - Timestamp pycs record the source's mtime. Bundles are ZIPs with fixed member times, so the
//!   recorded times are wrong after unzipping; checked-hash pycs ([`timestamp_to_checked_hash`])
//!   are validated by content instead.
//! - `marshal.dumps` sets `FLAG_REF` on every object whose reference count is above one when it
//!   is written, and that count depends on what else the compiling interpreter had loaded (an
//!   interned name shared with an imported module has a higher count). [`normalize`] keeps the
//!   flag only where a later `TYPE_REF` actually uses it, so the bytes depend on the code alone.
//!
//! Only the layouts CPython 3.11 to 3.14 write are understood; everything is parsed with bounds
//! checks and a depth limit, so malformed input is an error, never a panic.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

/// Length of every pyc header since Python 3.7 (PEP 552).
const HEADER_LEN: usize = 16;

/// `FLAG_REF` in marshal.c: the object gets the next reference index.
const FLAG_REF: u8 = 0x80;

/// `MAX_MARSHAL_STACK_DEPTH` in marshal.c (non-Windows); CPython refuses deeper data, and so do
/// we, which also bounds our own recursion.
const MAX_DEPTH: usize = 2000;

/// The flags word of a checked-hash pyc (bit 0: hash-based, bit 1: check the source).
const FLAGS_CHECKED_HASH: u32 = 0b11;

/// The CPython minor versions whose pyc layout this module understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PycVersion {
    /// CPython 3.11 (magic 3494–3495).
    Py311,
    /// CPython 3.12 (magic 3500–3531).
    Py312,
    /// CPython 3.13 (magic 3550–3571).
    Py313,
    /// CPython 3.14 (magic 3600–3627).
    Py314,
}

impl std::fmt::Display for PycVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PycVersion::Py311 => "3.11",
            PycVersion::Py312 => "3.12",
            PycVersion::Py313 => "3.13",
            PycVersion::Py314 => "3.14",
        })
    }
}

/// Why a pyc could not be normalised. Offsets count from the start of the file (header
/// included), so they can be checked with a hex dump.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PycError {
    /// Fewer bytes than the 16-byte header.
    #[error("pyc is {len} bytes long, shorter than the 16-byte header")]
    TooShort {
        /// The file's length.
        len: usize,
    },
    /// A magic number that is not one of the supported CPython versions.
    #[error(
        "unknown pyc magic number {} (bytes {bytes:02x?}); supported: CPython 3.11 (3494-3495), \
         3.12 (3500-3531), 3.13 (3550-3571), 3.14 (3600-3627)",
        u16::from_le_bytes([bytes[0], bytes[1]])
    )]
    UnknownMagic {
        /// The first four bytes of the file.
        bytes: [u8; 4],
    },
    /// The data ends inside an object.
    #[error("marshal data truncated: {needed} more byte(s) needed at byte {offset}")]
    Truncated {
        /// Where the missing bytes should start.
        offset: usize,
        /// How many bytes the object still needed there.
        needed: usize,
    },
    /// A type code that the pyc's CPython version never writes.
    #[error("unknown marshal type code {code:#04x} at byte {offset} for CPython {version}")]
    UnknownType {
        /// The type byte without `FLAG_REF`.
        code: u8,
        /// Where it is.
        offset: usize,
        /// The version told by the magic number.
        version: PycVersion,
    },
    /// A size field that is negative.
    #[error("negative size {size} at byte {offset}")]
    NegativeSize {
        /// Where the size field is.
        offset: usize,
        /// The value read.
        size: i32,
    },
    /// A `TYPE_REF` to an index that no earlier object has.
    #[error(
        "reference at byte {offset} to object {index}, but only {known} object(s) are numbered \
         before it"
    )]
    BadRef {
        /// Where the reference is.
        offset: usize,
        /// The index it names.
        index: u32,
        /// How many indices had been handed out at that point.
        known: usize,
    },
    /// A `TYPE_REF` to a code object, frozenset or slice that is still being read (CPython
    /// registers those only once complete, and refuses such data).
    #[error("reference at byte {offset} to object {index}, which is not complete yet")]
    RefToIncomplete {
        /// Where the reference is.
        offset: usize,
        /// The index it names.
        index: u32,
    },
    /// A NULL object where a value is required (only a dict's key position may hold one).
    #[error("NULL object at byte {offset} where a value is required")]
    UnexpectedNull {
        /// Where the NULL is.
        offset: usize,
    },
    /// Objects nested deeper than CPython's marshal allows.
    #[error("objects nested deeper than {limit} levels at byte {offset}")]
    TooDeep {
        /// Where the limit was crossed.
        offset: usize,
        /// The limit (marshal's `MAX_MARSHAL_STACK_DEPTH`).
        limit: usize,
    },
    /// A digit of a long integer outside 0..2^15, or a zero most significant digit.
    #[error("invalid long integer digit {digit:#06x} at byte {offset}")]
    BadLongDigit {
        /// Where the digit is.
        offset: usize,
        /// Its value.
        digit: u16,
    },
    /// Bytes after the single top-level object; CPython never writes them.
    #[error("{extra} unexpected byte(s) after the marshal object, from byte {offset}")]
    TrailingBytes {
        /// Where the object ended.
        offset: usize,
        /// How many bytes follow it.
        extra: usize,
    },
}

/// The 8 bytes a hash-based pyc's header carries for `source`: what CPython's
/// `_imp.source_hash(importlib._bootstrap_external._RAW_MAGIC_NUMBER, source)` returns.
///
/// CPython 3.11+ computes `_Py_KeyedHash(key, source)`, SipHash-1-3 with k0 = the key and k1 = 0,
/// and stores the 64-bit result little-endian. The key is the whole 4-byte magic (including
/// `\r\n`) read as a little-endian integer. Computing it here lets a bundle carry checked-hash
/// pycs without running the target's interpreter.
pub fn source_hash(magic: [u8; 4], source: &[u8]) -> [u8; 8] {
    let key = u64::from(u32::from_le_bytes(magic));
    let mut hasher = SipHasher13::new_with_keys(key, 0);
    hasher.write(source);
    hasher.finish().to_le_bytes()
}

/// The version a pyc's magic number belongs to, or `None`.
///
/// Only magics whose code objects are marshalled like the minor's final release are accepted:
/// earlier 3.11 alphas (below 3494) wrote separate location tables, and slices (`':'`) exist
/// from 3.14's 3608 on.
fn version_of(magic: [u8; 4]) -> Option<PycVersion> {
    if magic[2..4] != *b"\r\n" {
        return None;
    }
    match u16::from_le_bytes([magic[0], magic[1]]) {
        3494..=3495 => Some(PycVersion::Py311),
        3500..=3531 => Some(PycVersion::Py312),
        3550..=3571 => Some(PycVersion::Py313),
        3600..=3627 => Some(PycVersion::Py314),
        _ => None,
    }
}

/// The canonical form of a pyc: the header unchanged and the marshal body rewritten so that
/// `FLAG_REF` is set only on objects that a later `TYPE_REF` refers to, with every reference
/// renumbered to match.
///
/// Why: `marshal.dumps` flags every object whose reference count is above one at dump time, and
/// those counts depend on what else the compiling interpreter had loaded, so the same source
/// compiled in two processes can give different bytes. After this, the bytes depend only on the
/// code objects. The result loads to an equal object, and normalising it again changes nothing.
///
/// Errors: a header shorter than 16 bytes, a magic number outside CPython 3.11–3.14, and any
/// truncated, malformed or over-deep marshal data.
pub fn normalize(pyc: &[u8]) -> Result<Vec<u8>, PycError> {
    if pyc.len() < HEADER_LEN {
        return Err(PycError::TooShort { len: pyc.len() });
    }
    let magic = [pyc[0], pyc[1], pyc[2], pyc[3]];
    let version = version_of(magic).ok_or(PycError::UnknownMagic { bytes: magic })?;
    let slices = version == PycVersion::Py314 && u16::from_le_bytes([magic[0], magic[1]]) >= 3608;

    // Pass 1: parse into a flat token list, noting which old indices a TYPE_REF uses.
    let mut parser = Parser {
        data: pyc,
        pos: HEADER_LEN,
        version,
        slices,
        tokens: Vec::new(),
        complete: Vec::new(),
        referenced: Vec::new(),
    };
    parser.parse()?;
    if parser.pos != pyc.len() {
        return Err(PycError::TrailingBytes {
            offset: parser.pos,
            extra: pyc.len() - parser.pos,
        });
    }

    // Pass 2: write it back. Indices are handed out in the same (pre-order) sequence as the
    // reader numbers them, so a reference always names an index already mapped.
    let mut out = Vec::with_capacity(pyc.len());
    out.extend_from_slice(&pyc[..HEADER_LEN]);
    let mut new_index: Vec<Option<u32>> = vec![None; parser.referenced.len()];
    let mut next: u32 = 0;
    for token in &parser.tokens {
        match *token {
            Token::Raw { start, end } => out.extend_from_slice(&pyc[start..end]),
            Token::Type { code, index } => match index {
                Some(old) if parser.referenced[old as usize] => {
                    new_index[old as usize] = Some(next);
                    next += 1;
                    out.push(code | FLAG_REF);
                }
                _ => out.push(code),
            },
            Token::Ref { index } => {
                // Pass 1 only accepts references to indices handed out before them, and pass 2
                // visits tokens in the same order, so the mapping exists; `None` cannot happen.
                let mapped = new_index[index as usize].unwrap_or(u32::MAX);
                out.push(b'r');
                out.extend_from_slice(&mapped.to_le_bytes());
            }
        }
    }
    Ok(out)
}

/// A checked-hash pyc with the same marshal body as the timestamp pyc `pyc`, for `source`.
///
/// Why: bundles are ZIPs with fixed member times, so after unzipping every `.py` has the same
/// old mtime and an interpreter's shipped timestamp pycs are all stale; as checked-hash pycs
/// (flags word 3, bytes 8..16 = [`source_hash`]) they stay valid wherever they are unpacked.
///
/// Returns `None` when `pyc` is shorter than its header, is already hash-based (flags word not
/// 0), or records a source size other than `source.len()` modulo 2^32 — then the pyc was
/// probably not compiled from this source, and a fresh compile is needed instead.
pub fn timestamp_to_checked_hash(pyc: &[u8], source: &[u8]) -> Option<Vec<u8>> {
    let header = pyc.get(..HEADER_LEN)?;
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    if word(4) != 0 || word(12) != source.len() as u32 {
        return None;
    }
    let magic = [header[0], header[1], header[2], header[3]];
    let mut out = Vec::with_capacity(pyc.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&FLAGS_CHECKED_HASH.to_le_bytes());
    out.extend_from_slice(&source_hash(magic, source));
    out.extend_from_slice(&pyc[HEADER_LEN..]);
    Some(out)
}

/// One piece of the marshal body, in file order.
#[derive(Debug)]
enum Token {
    /// Bytes copied unchanged (payloads, lengths, code object integer fields).
    Raw { start: usize, end: usize },
    /// A type byte without `FLAG_REF`; `index` is the old reference index it was given, if it
    /// was flagged and its type takes one.
    Type { code: u8, index: Option<u32> },
    /// A `TYPE_REF` to an old index.
    Ref { index: u32 },
}

/// Pass 1 of [`normalize`].
struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    version: PycVersion,
    /// Whether `':'` (slice) is a valid type code (3.14 from magic 3608, marshal version 5).
    slices: bool,
    tokens: Vec<Token>,
    /// Per old index: whether a reference to it may be read now. Objects CPython registers only
    /// after their children (code, non-empty frozenset, slice) are incomplete until then.
    complete: Vec<bool>,
    /// Per old index: whether some `TYPE_REF` names it.
    referenced: Vec<bool>,
}

impl Parser<'_> {
    /// Consume `n` bytes as a raw token, or fail if the data ends first.
    fn raw(&mut self, n: usize) -> Result<&[u8], PycError> {
        let start = self.pos;
        let available = self.data.len() - start;
        if n > available {
            return Err(PycError::Truncated {
                offset: self.data.len(),
                needed: n - available,
            });
        }
        self.pos += n;
        self.tokens.push(Token::Raw {
            start,
            end: self.pos,
        });
        Ok(&self.data[start..self.pos])
    }

    /// A little-endian i32 (copied as raw bytes).
    fn raw_i32(&mut self) -> Result<i32, PycError> {
        let b = self.raw(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A size field: an i32 that must not be negative.
    fn raw_size(&mut self) -> Result<usize, PycError> {
        let offset = self.pos;
        let size = self.raw_i32()?;
        usize::try_from(size).map_err(|_| PycError::NegativeSize { offset, size })
    }

    /// A one-byte size field.
    fn raw_u8(&mut self) -> Result<usize, PycError> {
        Ok(usize::from(self.raw(1)?[0]))
    }

    /// Parse the single top-level object. The nesting is walked with an explicit work stack
    /// rather than recursion, so a 2000-deep object cannot overflow a small thread stack.
    fn parse(&mut self) -> Result<(), PycError> {
        let mut work = vec![Work::Object {
            depth: 0,
            dict_key: false,
        }];
        while let Some(item) = work.pop() {
            match item {
                Work::Raw(n) => {
                    self.raw(n)?;
                }
                Work::Complete(index) => self.complete[index as usize] = true,
                Work::Values { depth, remaining } => {
                    if remaining > 0 {
                        work.push(Work::Values {
                            depth,
                            remaining: remaining - 1,
                        });
                        work.push(Work::Object {
                            depth,
                            dict_key: false,
                        });
                    }
                }
                Work::Object { depth, dict_key } => self.object(depth, dict_key, &mut work)?,
            }
        }
        Ok(())
    }

    /// Read one object's type byte and what directly follows it; push its children on `work`
    /// (in reverse, as it is a stack). A NULL (`'0'`) is only accepted as a dict key, where it
    /// ends the dict; a non-NULL key schedules its value and the next key.
    fn object(
        &mut self,
        depth: usize,
        dict_key: bool,
        work: &mut Vec<Work>,
    ) -> Result<(), PycError> {
        let offset = self.pos;
        let Some(&byte) = self.data.get(offset) else {
            return Err(PycError::Truncated { offset, needed: 1 });
        };
        if depth >= MAX_DEPTH {
            return Err(PycError::TooDeep {
                offset,
                limit: MAX_DEPTH,
            });
        }
        self.pos += 1;
        let code = byte & !FLAG_REF;
        let flagged = byte & FLAG_REF != 0;

        if code == b'0' {
            if !dict_key {
                return Err(PycError::UnexpectedNull { offset });
            }
            self.tokens.push(Token::Type { code, index: None });
            return Ok(());
        }
        if dict_key {
            // This key's value, then the next key.
            work.push(Work::Object {
                depth,
                dict_key: true,
            });
            work.push(Work::Object {
                depth,
                dict_key: false,
            });
        }

        // Singletons and references never get an index (marshal.c ignores the flag on them),
        // so they are written back without it.
        match code {
            b'N' | b'F' | b'T' | b'S' | b'.' => {
                self.tokens.push(Token::Type { code, index: None });
                return Ok(());
            }
            b'r' => {
                // Read directly, not through `raw`: the index is rewritten, not copied.
                let available = self.data.len() - self.pos;
                let Some(b) = self.data.get(self.pos..self.pos + 4) else {
                    return Err(PycError::Truncated {
                        offset: self.data.len(),
                        needed: 4 - available,
                    });
                };
                let index = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                self.pos += 4;
                let known = self.complete.len();
                if index as usize >= known {
                    return Err(PycError::BadRef {
                        offset,
                        index,
                        known,
                    });
                }
                if !self.complete[index as usize] {
                    return Err(PycError::RefToIncomplete { offset, index });
                }
                self.referenced[index as usize] = true;
                self.tokens.push(Token::Ref { index });
                return Ok(());
            }
            _ => {}
        }

        // Every other type takes the next index when flagged, before its children (w_ref and
        // R_REF / r_ref_reserve number objects in pre-order).
        let index = if flagged {
            let index = self.complete.len() as u32;
            self.complete.push(true);
            self.referenced.push(false);
            Some(index)
        } else {
            None
        };
        self.tokens.push(Token::Type { code, index });
        let child = depth + 1;
        // Code objects, non-empty frozensets and slices are registered by CPython only once
        // read, so a reference to them from inside is invalid until `Work::Complete`.
        let defer = |parser: &mut Self, work: &mut Vec<Work>| {
            if let Some(i) = index {
                parser.complete[i as usize] = false;
                work.push(Work::Complete(i));
            }
        };
        match code {
            b'i' => {
                self.raw(4)?;
            }
            b'I' | b'g' => {
                self.raw(8)?;
            }
            b'y' => {
                self.raw(16)?;
            }
            b'f' | b'z' | b'Z' => {
                let n = self.raw_u8()?;
                self.raw(n)?;
            }
            b'x' => {
                for _ in 0..2 {
                    let n = self.raw_u8()?;
                    self.raw(n)?;
                }
            }
            b'l' => {
                let count_at = self.pos;
                let count = self.raw_i32()?;
                if count == i32::MIN {
                    return Err(PycError::NegativeSize {
                        offset: count_at,
                        size: count,
                    });
                }
                let digits = count.unsigned_abs() as usize;
                for i in 0..digits {
                    let at = self.pos;
                    let b = self.raw(2)?;
                    let digit = u16::from_le_bytes([b[0], b[1]]);
                    if digit >= 0x8000 || (i + 1 == digits && digit == 0) {
                        return Err(PycError::BadLongDigit { offset: at, digit });
                    }
                }
            }
            b's' | b't' | b'u' | b'a' | b'A' => {
                let n = self.raw_size()?;
                self.raw(n)?;
            }
            b')' => {
                let remaining = self.raw_u8()?;
                work.push(Work::Values {
                    depth: child,
                    remaining,
                });
            }
            b'(' | b'[' | b'<' => {
                let remaining = self.raw_size()?;
                work.push(Work::Values {
                    depth: child,
                    remaining,
                });
            }
            b'>' => {
                let remaining = self.raw_size()?;
                if remaining > 0 {
                    defer(self, work);
                    work.push(Work::Values {
                        depth: child,
                        remaining,
                    });
                }
            }
            b'{' => work.push(Work::Object {
                depth: child,
                dict_key: true,
            }),
            b':' if self.slices => {
                defer(self, work);
                work.push(Work::Values {
                    depth: child,
                    remaining: 3,
                });
            }
            b'c' => {
                defer(self, work);
                self.code_object(child, work);
            }
            _ => {
                return Err(PycError::UnknownType {
                    code,
                    offset,
                    version: self.version,
                })
            }
        }
        Ok(())
    }

    /// Schedule the fields of a code object after its type byte.
    ///
    /// CPython 3.11 (final), 3.12, 3.13 and 3.14 all marshal the same fields: argcount,
    /// posonlyargcount, kwonlyargcount, stacksize and flags as i32; code, consts, names,
    /// localsplusnames, localspluskinds, filename, name, qualname as objects; firstlineno as
    /// i32; linetable and exceptiontable as objects.
    fn code_object(&mut self, depth: usize, work: &mut Vec<Work>) {
        match self.version {
            PycVersion::Py311 | PycVersion::Py312 | PycVersion::Py313 | PycVersion::Py314 => {
                work.push(Work::Values {
                    depth,
                    remaining: 2,
                });
                work.push(Work::Raw(4));
                work.push(Work::Values {
                    depth,
                    remaining: 8,
                });
                work.push(Work::Raw(5 * 4));
            }
        }
    }
}

/// What pass 1 still has to read, innermost last.
enum Work {
    /// Bytes copied unchanged.
    Raw(usize),
    /// An object whose children have all been read: references to it are valid from now on.
    Complete(u32),
    /// `remaining` more non-NULL objects at `depth`.
    Values { depth: usize, remaining: usize },
    /// One object at `depth`; a dict key when `dict_key` (NULL allowed, ending the dict).
    Object { depth: usize, dict_key: bool },
}

#[cfg(test)]
mod tests;
