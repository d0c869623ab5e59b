//! Typed index expressions for `index`, `set_value` and the cnn index ops.
//!
//! The original evaluated NumPy subscript strings (`"[1:, ::2, -1]"`) as Python on providers,
//! which let any requester run code there. Here a subscript is the typed [`IndexExpr`]; a string
//! is turned into one by the small grammar below and is never evaluated:
//!
//! ```text
//! subscript := '[' items? ']' | items
//! items     := item (',' item)* ','?
//! item      := '...' | 'None' | 'newaxis' | slice | int | list
//! slice     := int? ':' int? (':' int?)?
//! list      := '[' (list | int | bool) (',' (list | int | bool))* ','? ']'   (an int array or bool mask)
//! ```
//!
//! An outer pair of brackets is the subscript itself, so `"[0, 2]"` is `a[0, 2]`; an index
//! array needs its own brackets: `"[[0, 2]]"` is `a[[0, 2]]`.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// One element of a subscript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexItem {
    /// A single position (negative counts from the end); drops the axis.
    Int(i64),
    /// `start:stop:step`, each optional, NumPy semantics (step may be negative, not zero).
    Slice {
        /// First position (default: start or end, by the step's sign).
        #[serde(default)]
        start: Option<i64>,
        /// One past the last position.
        #[serde(default)]
        stop: Option<i64>,
        /// Stride (default 1).
        #[serde(default)]
        step: Option<i64>,
    },
    /// `...`: as many full slices as needed.
    Ellipsis,
    /// `None` / `np.newaxis`: inserts an axis of length 1.
    NewAxis,
    /// An integer index array (advanced indexing), any shape.
    Array {
        /// Shape of the index array.
        shape: Vec<usize>,
        /// Row-major positions.
        values: Vec<i64>,
    },
    /// A boolean mask over as many axes as it has dimensions.
    Mask {
        /// Shape of the mask.
        shape: Vec<usize>,
        /// Row-major flags.
        values: Vec<bool>,
    },
}

impl IndexItem {
    /// The full slice `:`.
    pub fn full() -> IndexItem {
        IndexItem::Slice { start: None, stop: None, step: None }
    }

    /// The slice `start:stop`.
    pub fn range(start: i64, stop: i64) -> IndexItem {
        IndexItem::Slice { start: Some(start), stop: Some(stop), step: None }
    }
}

/// A whole subscript: the items between the brackets of `a[...]`.
///
/// JSON: a list of items, or a string that is parsed with the grammar in the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(transparent)]
pub struct IndexExpr(pub Vec<IndexItem>);

impl<'de> Deserialize<'de> for IndexExpr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<IndexExpr, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Items(Vec<IndexItem>),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Repr::Items(items) => Ok(IndexExpr(items)),
        }
    }
}

/// A subscript string that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse index {input:?} at byte {position}: {reason}")]
pub struct IndexParseError {
    /// The whole input.
    pub input: String,
    /// Byte offset of the problem.
    pub position: usize,
    /// What was expected.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Int(i64),
    Bool(bool),
    Colon,
    Comma,
    Open,
    Close,
    Ellipsis,
    NewAxis,
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<(usize, Token)>,
    pos: usize,
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, IndexParseError> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |position: usize, reason: &str| IndexParseError {
        input: input.to_string(),
        position,
        reason: reason.to_string(),
    };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b':' => {
                tokens.push((start, Token::Colon));
                i += 1;
            }
            b',' => {
                tokens.push((start, Token::Comma));
                i += 1;
            }
            b'[' => {
                tokens.push((start, Token::Open));
                i += 1;
            }
            b']' => {
                tokens.push((start, Token::Close));
                i += 1;
            }
            b'.' => {
                if input[i..].starts_with("...") {
                    tokens.push((start, Token::Ellipsis));
                    i += 3;
                } else {
                    return Err(err(i, "expected `...`"));
                }
            }
            b'-' | b'+' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                    i += 1;
                }
                let text: String = input[start..i].chars().filter(|&c| c != '_').collect();
                let value = text.parse::<i64>().map_err(|_| err(start, "expected an integer that fits in 64 bits"))?;
                tokens.push((start, Token::Int(value)));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                    i += 1;
                }
                let token = match &input[start..i] {
                    "None" | "newaxis" | "np.newaxis" | "numpy.newaxis" => Token::NewAxis,
                    "True" | "true" => Token::Bool(true),
                    "False" | "false" => Token::Bool(false),
                    "Ellipsis" => Token::Ellipsis,
                    _ => return Err(err(start, "unknown name (only None, newaxis, True, False, Ellipsis)")),
                };
                tokens.push((start, token));
            }
            _ => return Err(err(start, "unexpected character")),
        }
    }
    Ok(tokens)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.input.len(), |(p, _)| *p)
    }

    fn error(&self, reason: &str) -> IndexParseError {
        IndexParseError { input: self.input.to_string(), position: self.offset(), reason: reason.to_string() }
    }

    fn items(&mut self, closing: bool) -> Result<Vec<IndexItem>, IndexParseError> {
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None if !closing => return Ok(items),
                Some(Token::Close) if closing => return Ok(items),
                _ => {}
            }
            items.push(self.item()?);
            match self.peek() {
                Some(Token::Comma) => self.pos += 1,
                None if !closing => return Ok(items),
                Some(Token::Close) if closing => return Ok(items),
                _ => return Err(self.error("expected `,` or the end of the subscript")),
            }
        }
    }

    fn optional_int(&mut self) -> Option<i64> {
        if let Some(Token::Int(v)) = self.peek() {
            let v = *v;
            self.pos += 1;
            Some(v)
        } else {
            None
        }
    }

    fn item(&mut self) -> Result<IndexItem, IndexParseError> {
        match self.peek() {
            Some(Token::Ellipsis) => {
                self.pos += 1;
                Ok(IndexItem::Ellipsis)
            }
            Some(Token::NewAxis) => {
                self.pos += 1;
                Ok(IndexItem::NewAxis)
            }
            Some(Token::Open) => self.list(),
            Some(Token::Int(_) | Token::Colon) => {
                let start = self.optional_int();
                if self.peek() != Some(&Token::Colon) {
                    return Ok(IndexItem::Int(start.expect("peeked an int or a colon")));
                }
                self.pos += 1;
                let stop = self.optional_int();
                let mut step = None;
                if self.peek() == Some(&Token::Colon) {
                    self.pos += 1;
                    step = self.optional_int();
                    if step == Some(0) {
                        return Err(self.error("slice step cannot be zero"));
                    }
                }
                Ok(IndexItem::Slice { start, stop, step })
            }
            Some(Token::Bool(_)) => Err(self.error("a bare bool is not an index; use a mask like [True, False]")),
            _ => Err(self.error("expected an index item")),
        }
    }

    fn list(&mut self) -> Result<IndexItem, IndexParseError> {
        // Parse a nested list into shape + flat leaves, checking it is rectangular.
        enum Leaf {
            Int(i64),
            Bool(bool),
        }
        fn nested(p: &mut Parser<'_>, depth: usize, leaves: &mut Vec<Leaf>) -> Result<Vec<usize>, IndexParseError> {
            if depth > 32 {
                return Err(p.error("index list nested too deeply"));
            }
            p.pos += 1; // the `[`
            let mut count = 0;
            let mut inner: Option<Vec<usize>> = None;
            loop {
                match p.peek() {
                    Some(Token::Close) => {
                        p.pos += 1;
                        break;
                    }
                    Some(Token::Open) => {
                        let shape = nested(p, depth + 1, leaves)?;
                        if inner.as_ref().is_some_and(|s| *s != shape) {
                            return Err(p.error("index list is not rectangular"));
                        }
                        if inner.is_none() && count > 0 {
                            return Err(p.error("index list mixes lists and numbers"));
                        }
                        inner = Some(shape);
                    }
                    Some(Token::Int(v)) => {
                        if inner.is_some() {
                            return Err(p.error("index list mixes lists and numbers"));
                        }
                        leaves.push(Leaf::Int(*v));
                        p.pos += 1;
                    }
                    Some(Token::Bool(b)) => {
                        if inner.is_some() {
                            return Err(p.error("index list mixes lists and numbers"));
                        }
                        leaves.push(Leaf::Bool(*b));
                        p.pos += 1;
                    }
                    _ => return Err(p.error("expected an integer, a bool, `[` or `]` in an index list")),
                }
                count += 1;
                match p.peek() {
                    Some(Token::Comma) => p.pos += 1,
                    Some(Token::Close) => {}
                    _ => return Err(p.error("expected `,` or `]` in an index list")),
                }
            }
            let mut shape = vec![count];
            if let Some(inner) = inner {
                shape.extend(inner);
            }
            Ok(shape)
        }
        let mut leaves = Vec::new();
        let shape = nested(self, 0, &mut leaves)?;
        let bools = leaves.iter().filter(|l| matches!(l, Leaf::Bool(_))).count();
        if bools == 0 {
            let values = leaves
                .into_iter()
                .map(|l| match l {
                    Leaf::Int(v) => v,
                    Leaf::Bool(_) => unreachable!("no bools counted"),
                })
                .collect();
            Ok(IndexItem::Array { shape, values })
        } else if bools == leaves.len() {
            let values = leaves.into_iter().map(|l| matches!(l, Leaf::Bool(true))).collect();
            Ok(IndexItem::Mask { shape, values })
        } else {
            Err(self.error("index list mixes integers and bools"))
        }
    }
}

impl FromStr for IndexExpr {
    type Err = IndexParseError;

    fn from_str(input: &str) -> Result<IndexExpr, IndexParseError> {
        let tokens = tokenize(input)?;
        // The outer brackets are the subscript's own when the first `[` closes at the very end.
        let wrapped = matches!(tokens.first(), Some((_, Token::Open))) && {
            let mut depth = 0i32;
            let mut close_at = None;
            for (i, (_, t)) in tokens.iter().enumerate() {
                match t {
                    Token::Open => depth += 1,
                    Token::Close => {
                        depth -= 1;
                        if depth == 0 {
                            close_at = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            close_at == Some(tokens.len() - 1)
        };
        let mut parser = Parser { input, tokens, pos: 0 };
        let items = if wrapped {
            parser.pos = 1;
            let items = parser.items(true)?;
            parser.pos += 1;
            items
        } else {
            parser.items(false)?
        };
        if parser.pos != parser.tokens.len() {
            return Err(parser.error("unexpected trailing input"));
        }
        Ok(IndexExpr(items))
    }
}

/// Writes an index array or mask as the grammar's nested lists, so that what is printed
/// parses back to the same expression (a leaf missing from `values` prints as `?`).
fn nested_list(f: &mut fmt::Formatter<'_>, shape: &[usize], leaves: &mut dyn Iterator<Item = String>) -> fmt::Result {
    let Some((&len, inner)) = shape.split_first() else {
        return f.write_str(&leaves.next().unwrap_or_else(|| "?".into()));
    };
    f.write_str("[")?;
    for i in 0..len {
        if i > 0 {
            f.write_str(", ")?;
        }
        if inner.is_empty() {
            f.write_str(&leaves.next().unwrap_or_else(|| "?".into()))?;
        } else {
            nested_list(f, inner, leaves)?;
        }
    }
    f.write_str("]")
}

/// The subscript in the grammar above: it parses back to the same expression.
impl fmt::Display for IndexExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn opt(v: Option<i64>) -> String {
            v.map(|v| v.to_string()).unwrap_or_default()
        }
        f.write_str("[")?;
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match item {
                IndexItem::Int(v) => write!(f, "{v}")?,
                IndexItem::Slice { start, stop, step } => {
                    write!(f, "{}:{}", opt(*start), opt(*stop))?;
                    if let Some(step) = step {
                        write!(f, ":{step}")?;
                    }
                }
                IndexItem::Ellipsis => f.write_str("...")?,
                IndexItem::NewAxis => f.write_str("None")?,
                IndexItem::Array { shape, values } => nested_list(f, shape, &mut values.iter().map(i64::to_string))?,
                IndexItem::Mask { shape, values } => {
                    let mut words = values.iter().map(|&b| if b { "True" } else { "False" }.to_string());
                    nested_list(f, shape, &mut words)?
                }
            }
        }
        f.write_str("]")
    }
}
